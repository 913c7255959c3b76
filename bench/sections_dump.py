"""Harness sections about the dump: writer throughput and memory, the dump-environment floor."""

from __future__ import annotations

import secrets
import shutil
from typing import Any

from bench.figures import MIB, NotMeasured, Options, figure, not_measured, target

DD_LABEL = {"dd_64k": "dd bs=64K", "dd_4m": "dd bs=4M"}


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
