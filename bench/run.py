#!/usr/bin/env python3
"""The benchmark harness: every figure of docs/benchmarks.md, in one command.

    python bench/run.py [--smoke] [--runs N] [--only SECTION ...] [--out docs/benchmarks.md]
                        [--json docs/benchmarks.json] [--work DIR] [--keep] [--cache-dir DIR]
                        [--qemu-out DIR] [--writer-mib N]

Sections (in this order): kernel, writer, initramfs, memory, reproducibility.

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
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _entry in (REPO / "src", REPO):
    if str(_entry) not in sys.path:
        sys.path.insert(0, str(_entry))

from bench import report, reproducibility  # noqa: E402
from bench.harness import machine  # noqa: E402

SECTIONS = ("kernel", "writer", "initramfs", "memory", "reproducibility")
TITLES = {
    "kernel": "Kernel build",
    "writer": "Writer throughput and memory",
    "initramfs": "Initramfs sizes",
    "memory": "Dump environment memory floor",
    "reproducibility": "Reproducibility",
}
MIB = 1 << 20
SCHEMA = 1
DEFAULT_VARIANT = "frozen:static"  # the default recipe's runtime: the writer frozen into /init
FULL_VARIANTS = ("frozen:static", "zip:custom", "zip:packaged", "files:packaged")
XZ_TARGET_BYTES = 1_300_000  # "1.3 MB" (issue 12)
UNPACKED_TARGET_MIB = 4.0
DD_LABEL = {"dd_64k": "dd bs=64K", "dd_4m": "dd bs=4M"}


@dataclass
class Options:
    smoke: bool
    runs: int
    work: Path
    cache: Path
    qemu_out: Path | None
    writer_bytes: int


class NotMeasured(Exception):
    """A section cannot run here; the message is the reason shown in the report."""


# --- figures ------------------------------------------------------------------------------


def target(op: str, value: float, text: str) -> dict[str, Any]:
    return {"op": op, "value": value, "text": text}


def _met(value: float, goal: dict[str, Any] | None) -> bool | None:
    if goal is None:
        return None
    return value <= goal["value"] if goal["op"] == "<=" else value >= goal["value"]


def figure(
    fid: str,
    label: str,
    unit: str,
    values: list[float] | float | str | bool,
    goal: dict[str, Any] | None = None,
    smoke: bool = False,
    note: str = "",
    pairs: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """One row of the table. *values*: the runs (median/min/max), or a single value or verdict.

    In smoke mode a numeric target is shown but not judged (tiny sizes, one run)."""
    fig: dict[str, Any] = {"id": fid, "label": label, "unit": unit, "target": goal, "note": note}
    if isinstance(values, list):
        fig.update(
            median=statistics.median(values),
            min=min(values),
            max=max(values),
            n=len(values),
            runs=list(values),
        )
        judged = fig["median"]
    else:
        fig.update(value=values, n=1)
        judged = values
    if pairs:
        fig["pairs"] = pairs
    if goal is None:
        fig["met"] = None
    elif isinstance(judged, bool | str):
        fig["met"] = judged == goal["value"]
    else:
        fig["met"] = None if smoke else _met(float(judged), goal)
    return fig


def not_measured(fid: str, label: str, reason: str, goal: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": fid,
        "label": label,
        "unit": "",
        "target": goal,
        "met": None,
        "not_measured": reason,
        "n": 0,
    }


# --- shared: a private cache that reuses the warm one -------------------------------------


def warm_stage_keys(cache: Path, work: Path) -> dict[str, str]:
    """Build the default recipe in the warm cache (cached: seconds); return its stage keys."""
    work.mkdir(parents=True, exist_ok=True)
    return reproducibility.warm_keys(cache, work)


def linked_cache(warm: Path, private: Path, keys: dict[str, str]) -> Path:
    """*private* with warm's debs/downloads and the default recipe's objects linked in."""
    reproducibility.seed_cache(warm, private, tuple(f"{s}-{k[:32]}" for s, k in keys.items()))
    return private


# --- (1) kernel build ---------------------------------------------------------------------


def section_kernel(opts: Options) -> dict[str, Any]:
    from bench import kernel_build

    cache = None
    if opts.smoke:
        keys = warm_stage_keys(opts.cache, opts.work / "warm")
        cache = linked_cache(opts.cache, opts.work / "kernel-cache", keys)
    raw = kernel_build.run(opts.runs, opts.smoke, cache=cache)
    smoke = opts.smoke
    figs = []
    if "cold_vs_make" in raw:
        pairs = raw["cold_vs_make"]
        figs.append(
            figure(
                "kernel.cold.ours", "cold build, ours (build.py build, ccache off)", "s", pairs["a"]["runs"]
            )
        )
        figs.append(
            figure(
                "kernel.cold.make",
                "cold build, plain make zfcpdump_defconfig bzImage",
                "s",
                pairs["b"]["runs"],
            )
        )
        figs.append(
            figure(
                "kernel.cold.ratio",
                "cold build ratio ours / plain make (per pair)",
                "×",
                pairs["ratio_a_over_b"]["runs"],
                target("<=", 1.03, "≤ 1.03×"),
                smoke,
                pairs={
                    "ours_s": pairs["a"]["runs"],
                    "make_s": pairs["b"]["runs"],
                    "ratio": pairs["ratio_a_over_b"]["runs"],
                },
            )
        )
    else:
        reason = "smoke mode skips the cold kernel builds"
        figs.append(
            not_measured(
                "kernel.cold.ratio",
                "cold build ratio ours / plain make",
                reason,
                target("<=", 1.03, "≤ 1.03×"),
            )
        )
    figs.append(
        figure(
            "kernel.noop",
            "no-op rerun (everything cached)",
            "s",
            raw["noop"]["runs"],
            target("<=", 2.0, "≤ 2 s"),
            smoke,
        )
    )
    if "one_symbol" in raw:
        figs.append(
            figure(
                "kernel.one_symbol",
                "one-symbol rebuild (PRINTK_TIME flipped, incremental)",
                "s",
                raw["one_symbol"]["runs"],
            )
        )
    else:
        figs.append(
            not_measured("kernel.one_symbol", "one-symbol rebuild", "smoke mode skips kernel compiles")
        )
    figs.append(
        figure(
            "kernel.writer_only",
            "writer-only rebuild (writer changed, kernel cached)",
            "s",
            raw["writer_only"]["runs"],
            target("<=", 10.0, "≤ 10 s"),
            smoke,
        )
    )
    notes = ["smoke: the warm cache's objects are linked into a private cache"] if smoke else []
    return {"raw": raw, "figures": figs, "notes": notes}


# --- (2) writer throughput ----------------------------------------------------------------


def _per_round(results: dict[str, Any], writer: str, dd: str) -> list[float]:
    """Throughput ratio writer/dd per round (same bytes: dd seconds / writer seconds)."""
    return [d / w for w, d in zip(results[writer]["seconds"], results[dd]["seconds"], strict=True)]


def section_writer(opts: Options) -> dict[str, Any]:
    from bench import writer_throughput

    workdir = opts.work / "writer"
    try:
        raw = writer_throughput.run(opts.writer_bytes, opts.runs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    smoke, res = opts.smoke, raw["results"]
    size_mib = raw["size_bytes"] / MIB
    mibs = {m: [size_mib / s for s in r["seconds"]] for m, r in res.items()}
    figs = [
        figure(
            "writer.direct.mib_s",
            "writer, production default (io=auto → O_DIRECT, verify=sample)",
            "MiB/s",
            mibs["writer_direct"],
        )
    ]
    for dd, goal in (("dd_64k", target(">=", 1.5, "≥ 1.5×")), ("dd_4m", target(">=", 0.95, "≥ 0.95×"))):
        ratios = _per_round(res, "writer_direct", dd)
        figs.append(
            figure(
                f"writer.direct.vs_{dd}",
                f"writer (O_DIRECT) / {DD_LABEL[dd]}",
                "×",
                ratios,
                goal,
                smoke,
                pairs={
                    "writer_s": res["writer_direct"]["seconds"],
                    f"{dd}_s": res[dd]["seconds"],
                    "ratio": ratios,
                },
            )
        )
    for dd in ("dd_64k", "dd_4m"):
        ratios = _per_round(res, "writer_buffered", dd)
        figs.append(
            figure(
                f"writer.buffered.vs_{dd}",
                f"writer (io=buffered) / {DD_LABEL[dd]}",
                "×",
                ratios,
                note="io=buffered, informative",
            )
        )
    for method, label in (
        ("dd_64k", "dd bs=64K"),
        ("dd_4m", "dd bs=4M"),
        ("writer_buffered", "writer, io=buffered"),
        ("writer_direct_noverify", "writer, O_DIRECT, verify=off"),
    ):
        figs.append(figure(f"writer.{method}.mib_s", label, "MiB/s", mibs[method]))
    small = _per_round(res, "writer_direct_256k", "dd_4m")
    figs.append(
        figure(
            "writer.direct_256k.vs_dd_4m",
            "writer (O_DIRECT, chunk_kib = 256, as in a 32 MiB dump) / dd bs=4M",
            "×",
            small,
            note="informative: the chunk auto picks when memory is scarce",
        )
    )
    for fid, methods, label, goal in (
        ("writer.private_rss", ("writer_direct_256k",), "chunk_kib = 256", target("<=", 8.0, "≤ 8 MiB")),
        ("writer.private_rss_auto", ("writer_direct", "writer_buffered"), "chunk_kib = auto here", None),
    ):
        rss = max(res[m]["peak_private_kib"] for m in methods) / 1024
        figs.append(
            figure(
                fid,
                f"writer peak private RSS ({label}, max over {opts.runs} run(s))",
                "MiB",
                rss,
                goal,
                smoke,
            )
        )
    figs.append(
        figure(
            "writer.verify_cost",
            "verify=sample cost (1 - direct / direct without verify)",
            "",
            raw["ratios"]["verify_cost"],
        )
    )
    figs.append(
        figure(
            "writer.dump_valid",
            "last dump valid (first block + superblock checksum)",
            "",
            "yes" if raw["last_dump_valid"] else "no",
            target("==", "yes", "yes"),
        )
    )
    notes = [
        f"synthetic vmcore {raw['size_bytes']} bytes ({size_mib:.0f} MiB), {opts.runs} round(s); "
        "each round runs dd 64K, dd 4M, writer direct, writer buffered, writer direct without "
        "verify, writer direct with 256 KiB chunks, in that order; chunk_kib = auto sizes the "
        "writer's buffers from this host's MemAvailable "
        f"({raw['auto_chunk_kib']} KiB at the start of the section)"
    ]
    return {"raw": raw, "figures": figs, "notes": notes}


# --- (3) initramfs sizes ------------------------------------------------------------------


def section_initramfs(opts: Options) -> dict[str, Any]:
    from bench import initramfs_sizes

    variants = (DEFAULT_VARIANT,) if opts.smoke else FULL_VARIANTS
    per_variant: dict[str, list[dict[str, Any]]] = {}
    for variant in variants:
        for i in range(opts.runs):
            work = opts.work / "initramfs" / f"{variant.replace(':', '-')}-{i}"
            work.mkdir(parents=True)
            try:
                per_variant.setdefault(variant, []).append(
                    initramfs_sizes.measure_layout(variant, opts.cache, work)
                )
            finally:
                shutil.rmtree(work, ignore_errors=True)
    figs: list[dict[str, Any]] = []
    notes: list[str] = []
    for variant, runs in per_variant.items():
        first = runs[0]
        unstable = [m for m in first["rd"] if len({r["rd"][m]["compressed"] for r in runs}) > 1]
        if unstable:
            notes.append(f"{variant}: compressed sizes differ between runs for {', '.join(unstable)}")
        default = variant == DEFAULT_VARIANT
        for method, rd in first["rd"].items():
            goal = target("<=", XZ_TARGET_BYTES / 1e6, "≤ 1.3 MB") if (method == "xz" and default) else None
            figs.append(
                figure(
                    f"initramfs.{variant}.{method}.mb",
                    f"zfcpdump.rd {method}, {variant}",
                    "MB",
                    rd["compressed"] / 1e6,
                    goal,
                    smoke=False,
                )
            )
        figs.append(
            figure(
                f"initramfs.{variant}.unpacked",
                f"unpacked RAM, {variant}",
                "MiB",
                first["rd"]["none"]["unpacked_ram"] / MIB,
                target("<=", UNPACKED_TARGET_MIB, "≤ 4.0 MiB") if default else None,
            )
        )
        figs.append(
            figure(
                f"initramfs.{variant}.runtime_cold",
                f"runtime stage cold, {variant}",
                "s",
                [r["runtime_cold_s"] for r in runs],
            )
        )
        figs.append(
            figure(
                f"initramfs.{variant}.rd_xz_cold",
                f"initramfs stage cold (xz), {variant}",
                "s",
                [r["rd"]["xz"]["cold_s"] for r in runs],
            )
        )
        figs.append(
            figure(
                f"initramfs.{variant}.auto", f"compression auto picks, {variant}", "", first["auto"]["choice"]
            )
        )
    for other in ("zip:custom", "zip:packaged"):
        if DEFAULT_VARIANT not in per_variant or other not in per_variant:
            continue
        ours, theirs = per_variant[DEFAULT_VARIANT][0], per_variant[other][0]
        name = other.split(":")[1]
        figs.append(
            figure(
                f"initramfs.static_vs_{name}.xz",
                f"xz rd, frozen static / {name} interpreter",
                "×",
                ours["rd"]["xz"]["compressed"] / theirs["rd"]["xz"]["compressed"],
            )
        )
        figs.append(
            figure(
                f"initramfs.static_vs_{name}.unpacked",
                f"unpacked RAM, frozen static / {name} interpreter",
                "×",
                ours["rd"]["none"]["unpacked_ram"] / theirs["rd"]["none"]["unpacked_ram"],
            )
        )
    if opts.smoke:
        notes.append(f"smoke mode builds only the default variant ({DEFAULT_VARIANT})")
    return {"raw": {"variants": per_variant}, "figures": figs, "notes": notes}


# --- (4) memory floor ---------------------------------------------------------------------


def _memory_module() -> Any:
    try:
        from bench import memory_floor
    except Exception as exc:  # noqa: BLE001 - under development elsewhere
        raise NotMeasured(f"bench/memory_floor.py cannot be imported ({type(exc).__name__}: {exc})") from exc
    missing = [n for n in ("Context", "run_bench", "mem_available_at") if not hasattr(memory_floor, n)]
    if missing:
        raise NotMeasured(f"bench/memory_floor.py has no {', '.join(missing)} (still under development)")
    return memory_floor


FLOOR_LABEL = "smallest working crashkernel= (bisect 16..64 MiB)"
CUSTOM_RECIPE = "extends: qemu-test.yaml\nruntime:\n  interpreter: custom\n"


def _floor_figure(fid: str, label: str, raw: dict[str, Any], goal: dict[str, Any] | None) -> dict[str, Any]:
    if raw.get("floor_mib") is None:
        fig = figure(fid, label, "MiB", "fails at 64 MiB", goal)
        fig["met"] = False if goal else None
        return fig
    return figure(fid, label, "MiB", raw["floor_mib"], goal)


def _lows(readings: list[dict[str, Any]]) -> list[float]:
    return [r["low_kib"] / 1024 for r in readings if r.get("low_kib") is not None]


def section_memory(opts: Options) -> dict[str, Any]:
    memory_floor = _memory_module()
    missing = [t for t in ("qemu-system-s390x", "qemu-s390x") if shutil.which(t) is None]
    if missing:
        raise NotMeasured(f"{', '.join(missing)} not installed (Debian: qemu-system-s390x, qemu-user)")
    sc, zgetdump = memory_floor.sc, memory_floor.zgetdump
    work = opts.work / "memory"
    for sub in ("static", "custom"):
        (work / sub).mkdir(parents=True)
    if opts.qemu_out:
        art = sc.artifacts_in(opts.qemu_out)
    else:
        art = sc.build(sc.QEMU_TEST_RECIPE, work / "out", work / "build.log", cache_dir=opts.cache)
    try:
        zg_root = zgetdump.ensure_root()
    except zgetdump.ZgetdumpUnavailable as exc:
        raise NotMeasured(f"zgetdump unavailable: {exc}") from exc
    token = "BENCH-TOKEN-" + secrets.token_hex(8)
    ctx = memory_floor.Context(art, work / "static", zg_root, token)
    raw: dict[str, Any] = {"static": memory_floor.run_bench(ctx, opts.smoke, 32)}
    readings = [raw["static"]["mem_available_at_32MiB"]]
    readings += [memory_floor.mem_available_at(ctx, 32) for _ in range(1, opts.runs)]
    raw["static"]["mem_available_at_32MiB_repeats"] = readings[1:]
    floor_goal = target("<=", 22, "≤ 22 MiB")
    figs = []
    if opts.smoke:
        figs.append(not_measured("memory.floor", FLOOR_LABEL, "smoke mode skips the bisection", floor_goal))
    else:
        figs.append(_floor_figure("memory.floor", f"{FLOOR_LABEL}, frozen static", raw["static"], floor_goal))
    figs.append(
        figure(
            "memory.memavailable_32",
            "MemAvailable low point at crashkernel=32M, frozen static",
            "MiB",
            _lows(readings) or "no reading",
            target(">=", 10, "≥ 10 MiB"),
        )
    )
    ok = [r["run"]["ok"] for r in readings if "run" in r]
    figs.append(
        figure(
            "memory.dump_ok_32",
            "dump at crashkernel=32M succeeds (zgetdump -i)",
            "",
            "yes" if ok and all(ok) else "no",
            target("==", "yes", "yes"),
        )
    )
    big = [memory_floor.writer_memory(ctx, 64 if opts.smoke else 2048) for _ in range(opts.runs)]
    raw["static"]["writer_memory"] = big
    size = "64 MiB" if opts.smoke else "2 GiB"
    anon = [b["writer_anon_kib"] / 1024 for b in big if b["writer_anon_kib"] is not None and b["ok"]]
    figs.append(
        figure(
            "memory.writer_anon",
            f"writer peak anonymous memory, {size} kdump, frozen static",
            "MiB",
            anon or "no reading",
            target("<=", 4, "≤ 4 MiB"),
        )
    )
    if not opts.smoke:
        figs += _memory_comparisons(memory_floor, opts, ctx, raw)
    return {
        "raw": raw,
        "figures": figs,
        "notes": [
            f"dumped memory {memory_floor.EXTRA_RAM_MIB} MiB in the bisection; console logs in the work dir",
            "bisections are one run per size (success assumed monotonic); the baseline rd is a busybox "
            "dd of /proc/vmcore (bench/baseline.py), judged by the crashed kernel's token on the partition",
        ],
    }


def _memory_comparisons(
    memory_floor: Any, opts: Options, ctx: Any, raw: dict[str, Any]
) -> list[dict[str, Any]]:
    """The custom interpreter's rd and the busybox baseline, on the same kernel."""
    sc, work = memory_floor.sc, ctx.work.parent
    recipe = work / "custom.yaml"
    recipe.write_text(CUSTOM_RECIPE)
    custom_art = sc.build(recipe, work / "out-custom", work / "build-custom.log", cache_dir=opts.cache)
    cctx = memory_floor.Context(custom_art, work / "custom", ctx.zg_root, ctx.token)
    raw["custom"] = memory_floor.run_bench(cctx, False, 32)
    raw["custom"]["writer_memory"] = [memory_floor.writer_memory(cctx, 2048)]
    bctx = memory_floor.baseline_context(ctx, opts.cache)
    floor, runs = memory_floor.bisect(lambda mib: memory_floor.attempt(bctx, mib))
    raw["baseline"] = {"floor_mib": floor, "runs": [r.__dict__ for r in runs]}
    figs = [
        _floor_figure("memory.floor_custom", f"{FLOOR_LABEL}, custom interpreter", raw["custom"], None),
        _floor_figure("memory.floor_baseline", f"{FLOOR_LABEL}, busybox dd baseline", raw["baseline"], None),
        figure(
            "memory.memavailable_32_custom",
            "MemAvailable low point at crashkernel=32M, custom interpreter",
            "MiB",
            _lows([raw["custom"]["mem_available_at_32MiB"]]) or "no reading",
        ),
    ]
    anon = raw["custom"]["writer_memory"][0]["writer_anon_kib"]
    figs.append(
        figure(
            "memory.writer_anon_custom",
            "writer peak anonymous memory, 2 GiB kdump, custom interpreter",
            "MiB",
            anon / 1024 if anon is not None else "no reading",
        )
    )
    if raw["static"].get("floor_mib") is not None and floor is not None:
        figs.append(
            figure(
                "memory.python_price",
                "Python's price: frozen static floor − busybox baseline floor",
                "MiB",
                raw["static"]["floor_mib"] - floor,
            )
        )
    return figs


# --- (5) reproducibility ------------------------------------------------------------------


def section_reproducibility(opts: Options) -> dict[str, Any]:
    raw = reproducibility.run(opts.smoke, opts.work / "repro", opts.cache)
    figs = []
    goal = target("==", "yes", "yes")
    for item in raw["files"]:
        verdict = "yes" if item["identical"] else "no"
        note = ""
        if not item["identical"]:
            note = f"first difference at offset {item['first_offset']} ({item['first_offset_hex']})"
        fig = figure(f"repro.{item['file']}", f"{item['file']} bit-identical", "", verdict, goal, note=note)
        if opts.smoke and item["file"] == "zfcpdump.image":
            fig["note"] = "smoke: kernel object shared, identical by construction"
            fig["met"] = None
        figs.append(fig)
    figs.append(
        figure(
            "repro.valid",
            "every expected stage ran cold in both builds",
            "",
            "yes" if raw["valid"] else "no",
            goal,
            note="; ".join(raw["problems"]),
        )
    )
    for build in raw["builds"]:
        figs.append(
            figure(
                f"repro.build_{build['dir'].rsplit('/', 1)[-1]}",
                f"build time, {Path(build['dir']).name}",
                "s",
                build["seconds"],
            )
        )
    notes = [
        "checkouts, output and cache directories all differ between the two builds "
        "(paths in the raw JSON); each build has its own empty CCACHE_DIR"
    ]
    if opts.smoke:
        notes.append(
            "smoke: source/kconfig/kernel objects are linked from the warm cache, so only "
            "runtime and initramfs run cold; this does not measure the kernel's reproducibility"
        )
    return {"raw": raw, "figures": figs, "notes": notes}


RUNNERS: dict[str, Callable[[Options], dict[str, Any]]] = {
    "kernel": section_kernel,
    "writer": section_writer,
    "initramfs": section_initramfs,
    "memory": section_memory,
    "reproducibility": section_reproducibility,
}


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
