"""The floor of any user space: a capture rd that holds only a static busybox, whose /init
copies /proc/vmcore to the dump partition with dd. Bisected like the writer's rd, its floor
is what the Python writer's price is measured against (bench/memory_floor.py --baseline).

It is a benchmark fixture, never a dump tool: dd writes the raw vmcore over the partition
without zfcpdump's header, so zgetdump cannot judge it. A run passes when dd exits 0 and the
crashed kernel's token is on the partition (bench/memory_floor.py judges it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.support import crashside  # noqa: E402

from zfcpdump_builder.core import debpkg  # noqa: E402
from zfcpdump_builder.core.store import default_cache_dir  # noqa: E402

START = "BASELINE-START"
DONE = "BASELINE-DONE rc=0"
DUMP_DEVICE = "/dev/sda2"  # the capture kernel's only disk: the dump partition of tests/support/zipldisk
INIT = f"""#!/bin/busybox sh
/bin/busybox mkdir -p /proc /dev
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo "{START}"
n=0
while [ ! -b {DUMP_DEVICE} ] && [ $n -lt 200 ]; do /bin/busybox sleep 0.1; n=$((n + 1)); done
/bin/busybox dd if=/proc/vmcore of={DUMP_DEVICE} bs=64k conv=fsync
echo "BASELINE-DONE rc=$?"
/bin/busybox poweroff -f
"""


def baseline_rd(out: Path, cache_dir: Path | None = None) -> Path:
    """A cpio with /init (the script above), /bin/busybox (Debian's busybox-static) and /dev."""
    debs = debpkg.fetch_packages(["busybox-static"], crashside.ARCH, cache_dir or default_cache_dir())
    with tempfile.TemporaryDirectory(prefix="baseline-") as tmp:
        debpkg.unpack_package(debs[0], Path(tmp))
        busybox = (Path(tmp) / "bin/busybox").read_bytes()
    Entry = crashside.Entry
    entries = [
        Entry("bin", "dir"),
        Entry("dev", "dir"),
        Entry("proc", "dir"),
        Entry("dev/console", "chr", 0o600, rdev=(5, 1)),
        Entry("bin/busybox", "file", 0o755, busybox),
        Entry("init", "file", 0o755, INIT.encode()),
    ]
    return crashside.write_rd(entries, out, "xz")
