"""Harness sections about building: the kernel build, the initramfs sizes, reproducibility."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench import reproducibility
from bench.figures import MIB, Options, figure, linked_cache, not_measured, target, warm_stage_keys

DEFAULT_VARIANT = "frozen:static"  # the default recipe's runtime: the writer frozen into /init
FULL_VARIANTS = ("frozen:static", "zip:custom", "zip:packaged", "files:packaged")
XZ_TARGET_BYTES = 1_300_000  # "1.3 MB" (issue 12)
UNPACKED_TARGET_MIB = 4.0


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
