#!/usr/bin/env python3
"""Every placement x kernel line side by side (a measurement, not a test; one run each).

For each variant recipe (qemu-test and its placement / kernel-line variants):
- cold build: a private stage cache seeded only with the source, sysroot, CPython and runtime
  objects (so the figure is the kernel's cold compile, not CPython's), and ccache disabled;
- writer-only rebuild: a new module constant in the writer (private copy of the checkout), so
  its frozen bytecode changes, then the same build (builtin: the kernel relinks; the others:
  only /init and the rd);
- zfcpdump.image and zfcpdump.rd sizes, the unpacked RAM and the memory budget's total;
- the memory floor: the smallest crashkernel= size (bisect 16..48 MiB) at which the QEMU kdump
  dump succeeds and zgetdump -i accepts it (bench/memory_floor.py), unless --no-floor.

    python bench/placements.py [--work DIR] [--only LABEL ...] [--no-floor] [--json FILE]

Prints a markdown table (and writes --json) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import scenario as sc  # noqa: E402
from tests.support import crashside, zgetdump  # noqa: E402
from tests.support.buildcli import private_cache, shared_cache_dir  # noqa: E402

from bench import memory_floor  # noqa: E402
from bench.kernel_build import _run, build_cmd, checkout_copy  # noqa: E402

RAM0 = f"root=/dev/ram0 {crashside.CAPTURE_APPEND}"
# label -> (placement, kernel line, recipe, the capture kernel's command line)
VARIANTS = {
    "external/6.1": ("external", "6.1", "qemu-test", crashside.CAPTURE_APPEND),
    "builtin/6.1": ("builtin", "6.1", "qemu-test-builtin", crashside.CAPTURE_APPEND),
    "initrd/6.1": ("initrd", "6.1", "qemu-test-initrd", RAM0),
    "external/6.12": ("external", "6.12", "qemu-test-6.12", crashside.CAPTURE_APPEND),
}
SEEDED = ("source", "sysroot", "cpython", "runtime")  # reused: not what a kernel line costs
MIB = 1 << 20
FLOOR_HIGH_MIB = 48


def seeded_cache(work: Path) -> Path:
    cache = private_cache(work)
    (cache / "objects").mkdir(exist_ok=True)
    for kind in SEEDED:
        for obj in (shared_cache_dir() / "objects").glob(f"{kind}-*"):
            subprocess.run(["cp", "-al", str(obj), str(cache / "objects" / obj.name)], check=True)
    return cache


def writer_code_change(repo: Path, command: list[str]) -> float:
    """Seconds for the build after a change to the writer's code (a new module constant, so the
    frozen bytecode and thus /init change; a comment alone would leave them identical)."""
    target = repo / "src" / "zfcpdump_writer" / "__init__.py"
    original = target.read_text()
    target.write_text(original + f"\nBENCH_STAMP = {time.monotonic_ns()}\n")
    try:
        return _run(command)
    finally:
        target.write_text(original)


def measure(label: str, repo: Path, work: Path, floor: bool) -> dict[str, object]:
    placement, line, recipe, append = VARIANTS[label]
    where = work / label.replace("/", "-")
    where.mkdir(parents=True)
    cache = seeded_cache(where)
    out = where / "out"
    command = [*build_cmd(repo), str(repo / "recipes" / f"{recipe}.yaml"), "--cache-dir", str(cache)]
    command += ["--out", str(out)]
    cold = _run(command, env={"CCACHE_DISABLE": "1"})
    writer_only = writer_code_change(repo, command)
    art = sc.artifacts_in(out)
    budget = art.manifest["memory_budget"]
    row: dict[str, object] = {
        "placement": placement,
        "kernel": line,
        "image_bytes": art.image.stat().st_size,
        "rd_bytes": art.rd.stat().st_size if art.rd else 0,
        "unpacked_bytes": budget["initramfs, unpacked"],
        "budget_total_bytes": budget["total"],
        "cold_build_s": round(cold, 1),
        "writer_only_rebuild_s": round(writer_only, 1),
    }
    if floor:
        ctx = memory_floor.Context(
            art, where / "floor", zgetdump.ensure_root(), "BENCH-" + secrets.token_hex(8)
        )
        ctx.work.mkdir()
        sc.crash_rd(art, ctx.work / "crashside.rd", ctx.token, append=append)  # used by every attempt
        # 6.12 cannot reserve crashkernel=64M in its 128 MiB guest ("no suitable area found"),
        # so the bisection tops out at 48 MiB, well above the 32 MiB that counts
        found, runs = memory_floor.bisect(lambda mib: memory_floor.attempt(ctx, mib), high=FLOOR_HIGH_MIB)
        row["memory_floor_mib"] = found
        row["floor_runs"] = [(r.crash_mib, r.ok) for r in runs]
    shutil.rmtree(cache, ignore_errors=True)
    return row


def table_rows(rows: dict[str, dict[str, object]]) -> list[list[str]]:
    def mib(value: object) -> str:
        return f"{int(str(value)) / MIB:.2f}"

    out = []
    for row in rows.values():
        floor = row.get("memory_floor_mib")
        out.append(
            [
                str(row["placement"]),
                str(row["kernel"]),
                mib(row["image_bytes"]),
                mib(row["rd_bytes"]),
                mib(row["unpacked_bytes"]),
                mib(row["budget_total_bytes"]),
                f"{floor} MiB" if floor else "not measured",
                str(row["cold_build_s"]),
                str(row["writer_only_rebuild_s"]),
            ]
        )
    return out


HEADERS = [
    "placement",
    "kernel",
    "image MiB",
    "rd MiB",
    "unpacked MiB",
    "budget total MiB",
    "memory floor",
    "cold build s",
    "writer-only rebuild s",
]


def detail_placements(raw: dict[str, Any]) -> list[str]:
    from bench.report import table

    notes = [
        "",
        "One run per variant. Cold: empty stage cache except the source, sysroot, CPython and "
        "runtime objects, ccache disabled. Writer-only: a code change in the writer, then the "
        "same build (builtin relinks the kernel in its O= tree; the others rebuild only the rd). "
        "Memory floor: the smallest crashkernel= at which the QEMU kdump dump succeeds and "
        "zgetdump -i accepts it (bisect 16..48 MiB).",
    ]
    return [*table(HEADERS, table_rows(raw["rows"])), *notes]


def section_placements(opts: Any) -> dict[str, Any]:
    """bench/run.py's section: every variant, in full mode only (four cold kernel builds)."""
    from bench.figures import NotMeasured, figure, target

    if opts.smoke:
        raise NotMeasured("four cold kernel builds and bisections: full mode only")
    work = opts.work / "placements"
    work.mkdir(parents=True, exist_ok=True)
    repo = checkout_copy(work / "repo")
    rows = {label: measure(label, repo, work, True) for label in VARIANTS}
    figs = []
    for label, row in rows.items():
        floor = row.get("memory_floor_mib")
        figs.append(
            figure(
                f"placements.{label}.floor",
                f"{label}: memory floor",
                "MiB",
                float(str(floor)) if floor else f"did not complete at {FLOOR_HIGH_MIB} MiB",
                target("<=", 32, "<= 32 MiB"),
            )
        )
        figs.append(
            figure(
                f"placements.{label}.writer_only",
                f"{label}: writer-only rebuild",
                "s",
                float(str(row["writer_only_rebuild_s"])),
            )
        )
    return {"figures": figs, "raw": {"rows": rows}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    parser.add_argument("--no-floor", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-placements-"))
    repo = checkout_copy(work / "repo")
    rows = {}
    for label in args.only:
        rows[label] = measure(label, repo, work, not args.no_floor)
        print(f"{label}: {rows[label]}", flush=True)
    print("\n".join(detail_placements({"rows": rows})))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
