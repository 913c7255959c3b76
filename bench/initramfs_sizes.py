#!/usr/bin/env python3
"""zfcpdump.rd sizes and stage times (a measurement, not a test).

    bench/initramfs_sizes.py [--json] [--cache-dir DIR] [--variants zip:packaged,zip:custom,files:packaged]

For each variant (bytecode layout : interpreter): the runtime stage cold (empty object store; downloaded packages are
reused from the cache dir) and warm (cache hit); then one rd per compression, cold and warm,
with compressed size, cpio size and unpacked RAM (page-rounded); and the composition of the
rd by category (interpreter, loader, libraries, extension modules, bytecode, writer).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from zfcpdump_builder.core.events import Reporter, make_reporter  # noqa: E402
from zfcpdump_builder.core.store import Store, default_cache_dir  # noqa: E402
from zfcpdump_builder.stages.initramfs import COMPRESSIONS, CONTENTS_JSON, InitramfsSpec, build_initramfs  # noqa: E402
from zfcpdump_builder.stages.runtime import RuntimeSpec, build_runtime  # noqa: E402

WRITER = ROOT / "src" / "zfcpdump_writer"
KERNEL_CONFIG = {s: "y" for s in ("BLK_DEV_INITRD", "BINFMT_SCRIPT", "RD_GZIP", "RD_XZ", "RD_ZSTD", "RD_LZ4")}
QUIET = Reporter(open("/dev/null", "w"))  # noqa: SIM115 - lives as long as the process


def timed(func, *args):  # noqa: ANN001, ANN201
    start = time.monotonic()
    out = func(*args)
    return out, time.monotonic() - start


def measure_layout(variant: str, cache_dir: Path, work: Path) -> dict:
    layout, _, interpreter = variant.partition(":")
    store = Store(work / f"store-{layout}-{interpreter}")
    # frozen:static: the bytecode is frozen into /init, whatever the (unused) layout says
    spec = RuntimeSpec(
        bytecode="zip" if layout == "frozen" else layout, interpreter=interpreter or "packaged"
    )
    runtime, cold = timed(build_runtime, spec, WRITER, store, QUIET, cache_dir)
    _, warm = timed(build_runtime, spec, WRITER, store, QUIET, cache_dir)
    result = {"layout": variant, "runtime_cold_s": round(cold, 2), "runtime_warm_s": round(warm, 3), "rd": {}}
    for method in COMPRESSIONS:
        rd_spec = InitramfsSpec(compression=method, source_date_epoch=1_700_000_000)
        rd, rd_cold = timed(build_initramfs, rd_spec, runtime, KERNEL_CONFIG, store, QUIET)
        _, rd_warm = timed(build_initramfs, rd_spec, runtime, KERNEL_CONFIG, store, QUIET)
        summary = json.loads((rd.path / CONTENTS_JSON).read_text())["summary"]
        result["rd"][method] = {
            "compressed": summary["compressed"],
            "cpio": summary["cpio"],
            "unpacked_ram": summary["unpacked"],
            "cold_s": round(rd_cold, 2),
            "warm_s": round(rd_warm, 3),
        }
        result["composition"] = summary["composition"]
    auto_spec = InitramfsSpec(compression="auto", source_date_epoch=1_700_000_000)
    rd, auto_cold = timed(build_initramfs, auto_spec, runtime, KERNEL_CONFIG, store, QUIET)
    summary = json.loads((rd.path / CONTENTS_JSON).read_text())["summary"]
    result["auto"] = {"choice": summary["compression"], "cold_s": round(auto_cold, 2)}
    return result


def report(results: list[dict], reporter: Reporter) -> None:
    for res in results:
        rows = [
            [
                m,
                r["compressed"],
                f"{r['compressed'] / 1e6:.2f}",
                r["cpio"],
                r["unpacked_ram"],
                r["cold_s"],
                r["warm_s"],
            ]
            for m, r in res["rd"].items()
        ]
        reporter.table(
            f"zfcpdump.rd, variant={res['layout']} (runtime stage: cold "
            f"{res['runtime_cold_s']} s, warm {res['runtime_warm_s']} s; auto -> "
            f"{res['auto']['choice']} in {res['auto']['cold_s']} s)",
            ["compression", "bytes", "MB", "cpio bytes", "unpacked RAM", "cold s", "warm s"],
            rows,
        )
        total = sum(res["composition"].values())
        reporter.table(
            f"composition, variant={res['layout']}",
            ["category", "bytes", "share"],
            [
                [c, b, f"{100 * b / total:.1f}%"]
                for c, b in sorted(res["composition"].items(), key=lambda kv: -kv[1])
            ],
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    parser.add_argument("--variants", default="zip:packaged,zip:custom,files:packaged")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rd-bench-") as tmp:
        results = [measure_layout(variant, args.cache_dir, Path(tmp)) for variant in args.variants.split(",")]
    if args.json:
        print(json.dumps(results, indent=1))
    else:
        report(results, make_reporter(False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
