#!/usr/bin/env python3
"""The benchmark harness: every figure of docs/benchmarks.md, in one command.

    python bench/run.py [--smoke] [--runs N] [--only SECTION ...] [--out docs/benchmarks.md]
                        [--json docs/benchmarks.json] [--work DIR] [--keep] [--cache-dir DIR]
                        [--qemu-out DIR] [--writer-mib N]

Sections (in this order): kernel, writer, initramfs, memory, reproducibility, fuzz, faults,
placements.

- kernel: cold build ours vs plain make (paired A B A B, ratio per pair; target <= 1.03x),
  no-op rerun (<= 2 s), one-symbol rebuild, writer-only rebuild (<= 10 s)   [bench/kernel_build.py]
- writer: throughput on a >= 2 GiB synthetic vmcore vs dd bs=64K (>= 1.5x) and bs=4M (>= 0.95x),
  methods alternated run by run, ratio per round; peak private RSS (<= 8 MiB)   [bench/writer_throughput.py]
- initramfs: rd size per compression (xz <= 2.5 MB), composition, custom vs packaged
  interpreter, stage times   [bench/initramfs_sizes.py]
- memory: smallest crashkernel= size at which the QEMU kdump dump succeeds (bisect 16..64 MiB,
  target <= 24 MiB), MemAvailable low point at 32 MiB   [bench/memory_floor.py]
- reproducibility: two cold builds of the default recipe in different directories and caches;
  rd, image and manifest bit-identical?   [bench/reproducibility.py]
- fuzz: >= 100,000 structure-aware cases against dumpdisk inspect, the writer's layout and
  core readers and the recipe loader, seeded from a real dump; crashes found (target 0)   [bench/fuzz.py]
- faults: the suite's fault tests per class (blkdebug, power cuts, strace, bad disks, builder
  kills and full disks): cases tried and cases that lost data or crashed (target 0)   [bench/faults.py]
- placements: every placement x kernel line (external, builtin, initrd on 6.1; external on
  6.12): image and rd sizes, unpacked RAM, memory floor, cold and writer-only rebuild times,
  one run each   [bench/placements.py]

--smoke: tiny sizes, one run, no cold kernel builds, no memory bisection, the warm cache reused
(via links into private caches, so nothing is added to it). Its report is written to a temp
directory unless --out/--json are given: smoke numbers never land in docs/ by accident.
--only: run these sections; the others are carried over from the existing --json file (each
section keeps its own date and mode), or reported as not measured.

Every section yields figures (median, min, max over its runs; target; met) or an explicit
"not measured: reason"; a section that raises is reported as failed with the error.
Not a test, never run by CI; tests/bench/test_bench_smoke.py runs --smoke.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _entry in (REPO / "src", REPO):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))

from bench import report, reproducibility  # noqa: E402
from bench.faults import detail_faults, section_faults  # noqa: E402
from bench.figures import NotMeasured, Options  # noqa: E402
from bench.fuzz import detail_fuzz, section_fuzz  # noqa: E402
from bench.harness import machine  # noqa: E402
from bench.placements import detail_placements, section_placements  # noqa: E402
from bench.report import DETAILS  # noqa: E402
from bench.sections_build import section_initramfs, section_kernel, section_reproducibility  # noqa: E402
from bench.sections_dump import section_memory, section_writer  # noqa: E402

SECTIONS = ("kernel", "writer", "initramfs", "memory", "reproducibility", "fuzz", "faults", "placements")
TITLES = {
    "kernel": "Kernel build",
    "writer": "Writer throughput and memory",
    "initramfs": "Initramfs sizes",
    "memory": "Dump environment memory floor",
    "reproducibility": "Reproducibility",
    "fuzz": "Fuzzing from real seeds",
    "faults": "Faults",
    "placements": "Placements and kernel lines",
}
MIB = 1 << 20
SCHEMA = 1


RUNNERS: dict[str, Callable[[Options], dict[str, Any]]] = {
    "kernel": section_kernel,
    "writer": section_writer,
    "initramfs": section_initramfs,
    "memory": section_memory,
    "reproducibility": section_reproducibility,
    "fuzz": section_fuzz,
    "faults": section_faults,
    "placements": section_placements,
}
# These renderers live with their sections (report.py imports no section).
DETAILS.update(fuzz=detail_fuzz, faults=detail_faults, placements=detail_placements)


# --- driver -------------------------------------------------------------------------------


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def run_section(name: str, opts: Options, command: str = "") -> dict[str, Any]:
    started = time.monotonic()
    runs = 1 if name == "reproducibility" else opts.runs  # one comparison of two builds
    head = {
        "title": TITLES[name],
        "date": _now(),
        "mode": "smoke" if opts.smoke else "full",
        "runs": runs,
        "command": command,
        "revision": revision(),
        "machine": {**machine(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
    }
    print(f"[bench] {name}: running ({head['mode']}, {runs} run(s))", file=sys.stderr, flush=True)
    try:
        body = {"status": "measured", **RUNNERS[name](opts)}
    except NotMeasured as exc:
        body = {"status": "not measured", "reason": str(exc), "figures": []}
    except Exception as exc:  # noqa: BLE001 - reported, never hidden
        body = {
            "status": "failed",
            "reason": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-4000:],
            "figures": [],
        }
    body["seconds"] = round(time.monotonic() - started, 1)
    print(
        f"[bench] {name}: {body['status']} in {body['seconds']} s"
        + (f" — {body['reason']}" if body.get("reason") else ""),
        file=sys.stderr,
        flush=True,
    )
    return {**head, **body}


def revision() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else ""

    changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "--short", "HEAD") or "unknown", "changed_files": len(changed)}


def load_previous(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return doc.get("sections", {}) if doc.get("schema") == SCHEMA else {}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run, warm cache reused")
    parser.add_argument("--runs", type=int, help="runs (pairs) per figure (default 3; smoke 1)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SECTIONS,
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--out", type=Path, help="Markdown report (default docs/benchmarks.md; smoke: a temp dir)"
    )
    parser.add_argument(
        "--json", type=Path, help="raw runs (default docs/benchmarks.json; smoke: a temp dir)"
    )
    parser.add_argument("--work", type=Path, help="work directory (default: a new temp dir)")
    parser.add_argument(
        "--render",
        action="store_true",
        help="only re-render the Markdown report from --json (measures nothing)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help="the warm stage cache whose downloads are "
        "reused (default $ZFCPDUMP_TEST_CACHE, else the builder's default)",
    )
    parser.add_argument(
        "--qemu-out",
        type=Path,
        help="an existing `build.py build qemu-test` output "
        "for the memory section (default: build it, cached)",
    )
    parser.add_argument("--writer-mib", type=int, help="synthetic vmcore size (default 2049; smoke 64)")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:  # the report again from the raw runs, nothing measured
        json_path, out = args.json or REPO / "docs/benchmarks.json", args.out or REPO / "docs/benchmarks.md"
        out.write_text(report.render(json.loads(json_path.read_text())))
        print(f"[bench] rendered {out} from {json_path}", file=sys.stderr)
        return 0
    smoke = args.smoke
    work = args.work or Path(tempfile.mkdtemp(prefix="zfcpdump-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.work and any(work.iterdir()):
        work = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    default_dir = Path(tempfile.gettempdir()) / "zfcpdump-bench-smoke" if smoke else REPO / "docs"
    out = args.out or default_dir / "benchmarks.md"
    json_path = args.json or default_dir / "benchmarks.json"
    opts = Options(
        smoke=smoke,
        runs=args.runs or (1 if smoke else 3),
        work=work,
        cache=(args.cache_dir or reproducibility.warm_cache_dir()).resolve(),
        qemu_out=args.qemu_out,
        writer_bytes=(args.writer_mib or (64 if smoke else 2049)) * MIB,
    )
    selected = args.only or list(SECTIONS)
    previous = load_previous(json_path) if args.only else {}
    load_start = os.getloadavg()
    rev = revision()  # at the start: the tree the sections copy and build
    command = ("python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])).strip()
    sections: dict[str, Any] = {}
    try:
        for name in SECTIONS:
            if name in selected:
                sections[name] = run_section(name, opts, command)
            elif name in previous:
                sections[name] = {**previous[name], "carried_over": True}
            else:
                sections[name] = {
                    "title": TITLES[name],
                    "status": "not measured",
                    "figures": [],
                    "reason": "not selected in this run (--only) and no earlier result",
                }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    doc = {
        "schema": SCHEMA,
        "generated": _now(),
        "command": command,
        "mode": "smoke" if smoke else "full",
        "runs": opts.runs,
        "machine": {
            **machine(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        },
        "revision": rev,
        "sections": sections,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=1, sort_keys=False, default=str) + "\n")
    out.write_text(report.render(doc))
    print(f"[bench] wrote {out} and {json_path}", file=sys.stderr)
    failed = [n for n in selected if sections[n]["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
