"""Writer throughput vs dd, and the writer's peak private RSS.

Copies a synthetic sparse s390x vmcore (reads cost a memory copy, like /proc/vmcore) into the
dump area of a zipl-layout disk image, alternating the methods run by run (A B C D A B C D):

- `dd bs=64K` and `dd bs=4M` (conv=notrunc,fsync: the data is on the medium when dd ends);
- the writer, through the production entry point `zfcpdump_writer.main:main(["--root", ...])`
  in a child `python -I -S -B`: O_DIRECT, windowed buffered I/O, O_DIRECT without verify (all
  with chunk_kib = auto, sized from this host's /proc/meminfo), and O_DIRECT with the 256 KiB
  chunk that auto picks in a 32 MiB dump environment.
  It fsyncs before it exits, and its run includes the verify re-read.

The child's private RSS (Private_Clean + Private_Dirty from /proc/PID/smaps_rollup) is sampled
every 10 ms; the system's Dirty + Writeback peak is sampled too (page cache pressure).

    python bench/writer_throughput.py [--size MiB] [--runs N] [--workdir DIR] [--smoke] [--json]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for entry in (REPO / "src", REPO):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

from tests.support import vmcore, zipldisk  # noqa: E402

from zfcpdump_writer.copier import auto_chunk_kib, mem_available_kib  # noqa: E402
from zfcpdump_writer.layout import checksum  # noqa: E402

MIB = 1 << 20
HSA = 32 * MIB
METHODS = (
    "dd_64k",
    "dd_4m",
    "writer_direct",
    "writer_buffered",
    "writer_direct_noverify",
    "writer_direct_256k",  # the chunk chunk_kib = auto picks in a 32 MiB dump environment
)
CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from zfcpdump_writer.main import main; "
    "sys.exit(main(sys.argv[2:]))"
)


def _kib(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Peak private RSS of *pid* and peak system Dirty+Writeback while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.private_kib, self.dirty_kib, self.hwm_kib = pid, 0, 0, 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with open(f"/proc/{self.pid}/smaps_rollup") as handle:
                    text = handle.read()
                private = _kib(text, "Private_Clean") + _kib(text, "Private_Dirty")
                self.private_kib = max(self.private_kib, private)
                with open(f"/proc/{self.pid}/status") as handle:
                    self.hwm_kib = max(self.hwm_kib, _kib(handle.read(), "VmHWM"))
            except OSError:
                pass
            with open("/proc/meminfo") as handle:
                mem = handle.read()
            self.dirty_kib = max(self.dirty_kib, _kib(mem, "Dirty") + _kib(mem, "Writeback"))
            self.stop.wait(0.01)


def prepare(size: int, workdir: Path) -> tuple[Path, zipldisk.ZiplDisk, vmcore.Vmcore]:
    root = workdir / "root"
    for sub in ("proc", "dev", "sys/kernel/debug/zcore", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    body = max(size - 8192, 4096) // 4096 * 4096
    core = vmcore.write_vmcore(root / "proc/vmcore", [(0, body)], cpus=2, tag_stride=MIB)
    disk = zipldisk.make_disk(root / "dev/sda", core.size + 64 * MIB, tail=4 * MIB)
    (root / "sys/kernel/debug/zcore/hsa").write_text(f"{min(HSA, body):x}\n")
    meminfo = root / "proc/meminfo"  # chunk_kib = auto sizes the buffers from this host's memory
    meminfo.unlink(missing_ok=True)
    meminfo.symlink_to("/proc/meminfo")
    return root, disk, core


def rearm(root: Path, disk: zipldisk.ZiplDisk) -> None:
    """Make the disk acceptable again (as zipl would): checksum of what is there now."""
    sb = disk.superblock()
    disk.set_superblock(csum=checksum(disk.read(sb["part_start"], sb["csum_size"])))
    (root / "sys/kernel/debug/zcore/hsa").write_text(f"{HSA:x}\n")
    for name in (".zfcpdump-actions",):
        (root / name).unlink(missing_ok=True)


def _command(method: str, root: Path, disk: zipldisk.ZiplDisk) -> list[str]:
    src, dst = root / "proc/vmcore", root / "dev/sda"
    if method.startswith("dd_"):
        bs = {"dd_64k": "64K", "dd_4m": "4M"}[method]
        return [
            "dd",
            f"if={src}",
            f"of={dst}",
            f"bs={bs}",
            f"seek={disk.dump_start}",
            "oflag=seek_bytes",
            "conv=notrunc,fsync",
            "status=none",
        ]
    io = method.split("_")[1]
    verify = "off" if method.endswith("_noverify") else "sample"
    chunk = "256" if method.endswith("_256k") else "auto"
    conf = root / f"bench-{method}.conf"
    conf.write_text(f"io = {io}\nverify = {verify}\nchunk_kib = {chunk}\nafter = poweroff\n")
    return [
        sys.executable,
        "-I",
        "-S",
        "-B",
        "-c",
        CHILD,
        str(REPO / "src"),
        "--root",
        str(root),
        "--config",
        str(conf),
    ]


def run_once(method: str, root: Path, disk: zipldisk.ZiplDisk) -> dict[str, float]:
    rearm(root, disk)
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(_command(method, root, disk), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid)
    sampler.start()
    _, status = os.waitpid(proc.pid, 0)
    seconds = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    out = proc.stdout.read().decode() + proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{method} failed: {out[-400:]}")
    return {
        "seconds": seconds,
        "private_kib": sampler.private_kib,
        "maxrss_kib": sampler.hwm_kib,
        "dirty_kib": sampler.dirty_kib,
    }


def summarize(size: int, samples: dict[str, list[dict[str, float]]]) -> dict[str, object]:
    res: dict[str, object] = {}
    for method, runs in samples.items():
        secs = [r["seconds"] for r in runs]
        res[method] = {
            "seconds": secs,
            "mb_s": size / MIB / statistics.median(secs),
            "peak_private_kib": max(r["private_kib"] for r in runs),
            "maxrss_kib": max(r["maxrss_kib"] for r in runs),
            "peak_dirty_writeback_kib": max(r["dirty_kib"] for r in runs),
        }
    return res


def run(size_bytes: int, runs: int, workdir: Path) -> dict[str, object]:
    """Benchmark; returns per-method MB/s, peak RSS and the ratios against dd."""
    workdir.mkdir(parents=True, exist_ok=True)
    root, disk, core = prepare(size_bytes, workdir)
    chunk_kib = auto_chunk_kib(mem_available_kib(Path("/proc/meminfo").read_text()))
    run_once("dd_4m", root, disk)  # warm-up: allocate the image's blocks
    samples: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    for _ in range(runs):
        for method in METHODS:
            samples[method].append(run_once(method, root, disk))
    results = summarize(core.size, samples)
    best = max(("writer_direct", "writer_buffered"), key=lambda m: results[m]["mb_s"])
    ratios = {
        f"{w}_vs_{d}": results[w]["mb_s"] / results[d]["mb_s"]
        for w in ("writer_direct", "writer_buffered")
        for d in ("dd_64k", "dd_4m")
    }
    ratios["verify_cost"] = 1 - results["writer_direct"]["mb_s"] / results["writer_direct_noverify"]["mb_s"]
    ok = disk.read(disk.dump_start, 4096) == core.path.read_bytes()[:4096] and disk.csum_matches()
    return {
        "size_bytes": core.size,
        "runs": runs,
        "auto_chunk_kib": chunk_kib,
        "results": results,
        "ratios": ratios,
        "best_writer_mode": best,
        "last_dump_valid": ok,
    }


def _report(res: dict[str, object]) -> str:
    lines = [f"{res['size_bytes'] / MIB:.0f} MiB x {res['runs']} run(s), alternating"]
    for method, r in res["results"].items():
        lines.append(
            f"  {method:16s} {r['mb_s']:8.1f} MB/s  private RSS {r['peak_private_kib'] / 1024:5.1f} MiB"
            f"  VmHWM {r['maxrss_kib'] / 1024:5.1f} MiB  peak Dirty+Writeback "
            f"{r['peak_dirty_writeback_kib'] / 1024:6.1f} MiB  times "
            + " ".join(f"{s:.2f}" for s in r["seconds"])
        )
    lines += [f"  {k}: {v:.2f}x" for k, v in res["ratios"].items()]
    lines.append(f"  best writer mode: {res['best_writer_mode']}; last dump valid: {res['last_dump_valid']}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    size, runs, workdir, as_json = 2048 * MIB, 3, Path("bench-work"), False
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--size":
            size = int(args.pop(0)) * MIB
        elif arg == "--runs":
            runs = int(args.pop(0))
        elif arg == "--workdir":
            workdir = Path(args.pop(0))
        elif arg == "--smoke":
            size, runs = 64 * MIB, 1
        elif arg == "--json":
            as_json = True
        else:
            print(__doc__)
            return 2
    res = run(size, runs, workdir)
    print(json.dumps(res, indent=2) if as_json else _report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
