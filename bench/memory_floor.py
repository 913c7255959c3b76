#!/usr/bin/env python3
"""The smallest capture-side memory at which the kdump dump still succeeds.

Bisects the crash region size (crashkernel=N M, which is all the capture kernel gets) between
16 and 64 MiB. The crashing kernel gets N + 64 MiB, so every run dumps the same 64 MiB.
A run succeeds when the console says "Dump successful", the guest powers off by itself and
`zgetdump -i` accepts the dump partition. Then it reports the MemAvailable low point at
32 MiB (and at the floor): from the writer's own console lines if it prints any, else from a
probe appended to the rd as a second cpio and started by rdinit= (the rd's bytes stay
unchanged): a 5 KB static sampler built with s390x-linux-gnu-gcc, or busybox without it. The
probe's own rootfs cost is reported beside its readings.

    python bench/memory_floor.py --out DIR            # build.py build output (qemu-test recipe)
    python bench/memory_floor.py --smoke              # build, then one run at 32 MiB only
    python bench/memory_floor.py --build              # build with build.py first

Everything lands in a work directory (--work, default: a temp dir); the console logs stay.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import dumpcheck as dc  # noqa: E402
import scenario as sc  # noqa: E402
from tests.support import crashside, zgetdump, zipldisk  # noqa: E402

EXTRA_RAM_MIB = 64  # RAM beyond the crash region, i.e. the dumped memory
DUMP_AREA = 72 * zipldisk.MIB
LOW_MIB, HIGH_MIB = 16, 64
PROBE_WRITE_BPS = 16 << 20  # a 4 s copy, so the sampler sees the copy's steady state


@dataclass
class Run:
    crash_mib: int
    ok: bool
    why: str
    seconds: float
    capture_kib: int | None
    mem_available_low_kib: int | None
    log: str


@dataclass
class Context:
    art: sc.Artifacts
    work: Path
    zg_root: Path
    token: str
    probe: bool = False
    probe_cost: int = 0
    baseline: bool = False  # art.rd is bench/baseline.py's busybox dd rd, judged by the token


def baseline_context(ctx: Context, cache_dir: Path | None = None) -> Context:
    """The same kernel with bench/baseline.py's busybox rd as the capture rd."""
    from bench import baseline

    work = ctx.work / "baseline"
    work.mkdir(parents=True, exist_ok=True)
    rd = baseline.baseline_rd(work / "baseline.rd", cache_dir)
    return Context(replace(ctx.art, rd=rd), work, ctx.zg_root, ctx.token, baseline=True)


def _first_rd(ctx: Context) -> Path:
    """The crash-side rd (cached per variant): plain, or with the MemAvailable probe."""
    name = "crashside-probe.rd" if ctx.probe else "crashside.rd"
    path = ctx.work / name
    if path.exists():
        return path
    if not ctx.probe:
        return sc.crash_rd(ctx.art, path, ctx.token)
    probed, ctx.probe_cost = crashside.probed_rd(ctx.art.rd, ctx.work / "probed.rd")
    append = f"{crashside.CAPTURE_APPEND} {crashside.PROBE_RDINIT}"
    return crashside.build_crashside_rd(ctx.art.image, probed, path, ctx.token, append=append)


def attempt(ctx: Context, crash_mib: int, write_bps: int | None = None) -> Run:
    """One kdump cycle with a crash region of *crash_mib* MiB (disk writes throttled if asked)."""
    tag = f"{crash_mib}M{'-probe' if ctx.probe else ''}"
    disk = zipldisk.make_disk(ctx.work / f"disk-{tag}.img", DUMP_AREA)
    log = ctx.work / f"console-{tag}.log"
    result = sc.kdump(
        ctx.art,
        _first_rd(ctx),
        disk.path,
        log,
        crash_mib=crash_mib,
        dumped_mib=EXTRA_RAM_MIB,
        expect=_expected(ctx),
        timeout=180,
        write_bps=write_bps,
    )
    why = "; ".join(result.problems()) or ("" if result.exited else "guest did not power off")
    if not why:
        part = disk.partition_image(ctx.work / f"part-{tag}.img")
        why = _judge(ctx, part)
        part.unlink()
    disk.path.unlink()
    return Run(
        crash_mib,
        not why,
        why.strip()[:300],
        result.duration,
        sc.capture_memory_kib(result.console),
        sc.mem_available_low_kib(result.console),
        str(log),
    )


def _expected(ctx: Context) -> tuple[str, str]:
    if ctx.baseline:
        from bench import baseline

        return baseline.START, baseline.DONE
    return sc.WRITER_START, sc.SUCCESS


def _judge(ctx: Context, part: Path) -> str:
    """Why the dump on *part* is not good ("" when it is)."""
    if ctx.baseline:
        return (
            ""
            if dc.contains(part, ctx.token.encode())
            else "the crashed kernel's token is not on the partition"
        )
    info = zgetdump.info(part, ctx.zg_root)
    return "" if info.returncode == 0 else "zgetdump -i: " + info.stderr.decode(errors="replace")


def bisect(
    check: Callable[[int], Run], low: int = LOW_MIB, high: int = HIGH_MIB
) -> tuple[int | None, list[Run]]:
    """Smallest size in [low, high] whose run succeeds, assuming success is monotonic."""
    runs = [check(high)]
    if not runs[-1].ok:
        return None, runs
    runs.append(check(low))
    if runs[-1].ok:
        return low, runs
    bad, good = low, high
    while good - bad > 1:
        mid = (bad + good) // 2
        runs.append(check(mid))
        bad, good = (bad, mid) if runs[-1].ok else (mid, good)
    return good, runs


def mem_available_at(ctx: Context, mib: int = 32) -> dict[str, object]:
    """The MemAvailable low point at *mib* MiB: the writer's own lines, else the probe's."""
    plain = attempt(ctx, mib)
    if plain.mem_available_low_kib is not None:
        return {"source": "writer console", "low_kib": plain.mem_available_low_kib, "run": asdict(plain)}
    ctx.probe = True
    probed = attempt(ctx, mib, PROBE_WRITE_BPS)
    ctx.probe = False
    return {
        "source": "probe (sampler in a second cpio, every 100 ms)",
        "low_kib": probed.mem_available_low_kib,
        "probe_rootfs_bytes": ctx.probe_cost,
        "low_kib_without_probe_estimate": (
            probed.mem_available_low_kib + ctx.probe_cost // 1024
            if probed.mem_available_low_kib is not None
            else None
        ),
        "run": asdict(probed),
        "plain_run": asdict(plain),
    }


WRITER_MEMORY = re.compile(r"zfcpdump: writer private memory: (\d+) kB")
RATE = re.compile(r"zfcpdump: (\d+) MB in [\d.]+ s \(([\d.]+) MB/s\)")


def writer_memory(ctx: Context, dumped_mib: int = 2048, crash_mib: int = 32) -> dict[str, object]:
    """One kdump of *dumped_mib* MiB: the writer's own peak anonymous memory (its console line),
    MemAvailable's low point and the rate, judged by zgetdump -i."""
    work = ctx.work / f"big-{dumped_mib}"
    work.mkdir(parents=True, exist_ok=True)
    disk = zipldisk.make_disk(work / "disk.img", (dumped_mib + 8) * zipldisk.MIB)
    result = sc.kdump(
        ctx.art,
        _first_rd(ctx),
        disk.path,
        work / "console.log",
        crash_mib=crash_mib,
        dumped_mib=dumped_mib,
        expect=(sc.WRITER_START, sc.SUCCESS),
        timeout=900,
    )
    why = "; ".join(result.problems())
    if not why:
        part = disk.partition_image(work / "part.img")
        why = _judge(ctx, part)
        part.unlink()
    disk.path.unlink()
    own = WRITER_MEMORY.search(result.console)
    rate = RATE.search(result.console)
    return {
        "dumped_mib": dumped_mib,
        "crash_mib": crash_mib,
        "ok": not why,
        "why": why[:300],
        "writer_anon_kib": int(own.group(1)) if own else None,
        "mb_s": float(rate.group(2)) if rate else None,
        "mem_available_low_kib": sc.mem_available_low_kib(result.console),
        "log": str(work / "console.log"),
    }


def run_bench(ctx: Context, smoke: bool, at_mib: int = 32) -> dict[str, object]:
    report: dict[str, object] = {
        "image": str(ctx.art.image),
        "rd": str(ctx.art.rd),
        "rd_bytes": ctx.art.rd.stat().st_size,
    }
    report[f"mem_available_at_{at_mib}MiB"] = mem_available_at(ctx, at_mib)
    if smoke:
        return report
    floor, runs = bisect(lambda mib: attempt(ctx, mib))
    report["floor_mib"] = floor
    report["runs"] = [asdict(r) for r in runs]
    if floor is not None and floor != at_mib:
        report[f"mem_available_at_floor_{floor}MiB"] = mem_available_at(ctx, floor)
    return report


def _artifacts(args: argparse.Namespace, work: Path) -> sc.Artifacts:
    if args.out and not args.build:
        return sc.artifacts_in(args.out)
    out = args.out or work / "out"
    return sc.build(sc.QEMU_TEST_RECIPE, out, work / "build.log")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="a build.py build output directory (qemu-test)")
    parser.add_argument("--build", action="store_true", help="run build.py build first")
    parser.add_argument("--smoke", action="store_true", help="one run at 32 MiB, no bisection")
    parser.add_argument("--work", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    parser.add_argument(
        "--at",
        type=int,
        default=32,
        metavar="MIB",
        help="crash region size for the MemAvailable reading (32)",
    )
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="memory-floor-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(_artifacts(args, work), work, zgetdump.ensure_root(), "BENCH-TOKEN-" + secrets.token_hex(8))
    report = run_bench(ctx, args.smoke, args.at)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if args.smoke or report.get("floor_mib") is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
