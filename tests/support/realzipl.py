"""Dump disks prepared by the real zipl: Debian's s390x zipl 2.16, run in a chroot.

The root is the s390x test root (s390-tools, libc6, zlib1g, libfuse2) plus a static qemu, so
no host file can stand in for an s390x one. zipl runs in a private mount namespace with its
own proc, sysfs, /dev and /tmp; `launcher()` writes the small script that sets that up, and
both `make_disk()` and the `dumpdisk prepare` tests run zipl through it.

Why a geometry helper: zipl asks the disk for its geometry (HDIO_GETGEO) and loop devices do
not answer (ENOTTY). zipl then runs its target helper for the partition's driver, here
/lib/s390-tools/zipl_helper.blkext with the partition's MAJ:MIN. Ours prints what a SCSI
disk would answer, read from sysfs. zipl runs it with popen(), so through /bin/sh: qemu-user
does not follow execve into s390x programs and this host has no binfmt entry for them, so the
root's /bin/sh is Debian's static *host* busybox, and the helper is a static host binary.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support import chroot, zgetdump, zipldisk
from tests.support.loopdev import LoopDevice

from zfcpdump_builder.core import debpkg

MIB = 1 << 20
ROOT_NAME = "test-s390x-zipl-root"
ZIPL_TAIL = 40 * MIB  # zipl keeps its own data (about 32 MiB) after the dump area
FILLER = (2048, 2048)  # partition 1: 1 MiB at 1 MiB; the dump partition is the second one
DUMP_START_SECTOR = 4096

HELPER_C = r"""
#include <stdio.h>
#include <string.h>

static int first_line(const char *path, char *out, int size) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    if (!fgets(out, size, f)) { fclose(f); return -1; }
    fclose(f);
    out[strcspn(out, "\n")] = 0;
    return 0;
}

int main(int argc, char **argv) {
    char path[256], start[64] = "0", base[64];
    if (argc < 2) return 1;
    snprintf(path, sizeof path, "/sys/dev/block/%s/start", argv[1]);
    if (first_line(path, start, sizeof start) == 0) {
        snprintf(path, sizeof path, "/sys/dev/block/%s/../dev", argv[1]);
        if (first_line(path, base, sizeof base) != 0) return 1;
    } else {
        snprintf(base, sizeof base, "%s", argv[1]);
    }
    printf("targetbase=%s\ntargettype=SCSI\ntargetblocksize=512\ntargetoffset=%s\n", base, start);
    return 0;
}
"""

LAUNCHER = r"""#!/bin/sh
# The real s390x zipl, run in {root} under its static qemu (tests/support/realzipl.py).
exec unshare -m --propagation private sh -eu -c '
root=$1; zdir=$2; shift 2
[ -z "$zdir" ] || mount --bind "$zdir" "$root/lib/s390-tools/zfcpdump"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount -t tmpfs tmpfs "$root/dev"
mount -t tmpfs tmpfs "$root/tmp"
mknod "$root/dev/null" c 1 3
for arg in "$@"; do
  [ -b "$arg" ] || continue
  numbers=$(stat -L -c "%t %T" "$arg")
  major=$((0x${{numbers% *}})); minor=$((0x${{numbers#* }}))
  mkdir -p "$root$(dirname "$arg")"
  mknod "$root$arg" b "$major" "$minor"
  parent=/sys/dev/block/$major:$minor/..
  if [ -f "$parent/dev" ]; then
    disk=$(cat "$parent/dev")
    mknod "$root/dev/$(basename "$(readlink -f "$parent")")" b "${{disk%:*}}" "${{disk#*:}}"
  fi
done
exec chroot "$root" /{qemu} /sbin/zipl "$@"
' zipl-launcher {root} "{zdir}" "$@"
"""


def _compile_helper(dest: Path) -> None:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no host C compiler for zipl's geometry helper")
    source = dest.with_suffix(".c")
    source.write_text(HELPER_C)
    subprocess.run([compiler, "-O2", "-static", "-o", str(dest), str(source)], check=True)
    source.unlink()


def _install_host_shell(dest: Path, base: Path) -> None:
    deb = debpkg.fetch_packages(["busybox-static"], chroot.host_arch(), base)[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.unlink(missing_ok=True)
    if not chroot.extract_member(deb, "bin/busybox", dest):
        raise FileNotFoundError(f"{deb.name} has no bin/busybox")
    dest.chmod(0o755)


def ensure_root(base: Path | None = None) -> Path:
    """The cached chroot for zipl: the zgetdump root, a static qemu, the helper, dummy pair."""
    base = base or zgetdump.cache_base()
    root = base / ROOT_NAME
    if (root / ".complete").exists():
        return root
    reason = chroot.available()
    if reason:
        pytest.skip(reason)
    try:
        source = zgetdump.ensure_root(base)
    except zgetdump.ZgetdumpUnavailable as exc:
        pytest.skip(f"no s390x root for zipl: {exc}")
    tmp = Path(tempfile.mkdtemp(prefix=ROOT_NAME + ".", dir=base))
    try:
        _populate(tmp / "root", source, base)
        if root.exists():
            shutil.rmtree(root)
        (tmp / "root").rename(root)
    finally:
        shutil.rmtree(tmp)
    return root


def _populate(work: Path, source: Path, base: Path) -> None:
    shutil.copytree(source, work, symlinks=True)
    chroot.install_qemu(work, chroot.qemu_static(base))
    for name in ("proc", "sys", "dev", "tmp"):
        (work / name).mkdir(exist_ok=True)
    _compile_helper(work / "lib/s390-tools/zipl_helper.blkext")
    _install_host_shell(work / "bin/sh", base)
    zdir = work / "lib/s390-tools/zfcpdump"
    zdir.mkdir(parents=True, exist_ok=True)
    # zipl sizes its data from the image, which must be larger than the 64 KiB load address
    (zdir / "zfcpdump-image").write_bytes(zipldisk.sentinel("stand-in dump kernel", MIB))
    (work / ".complete").write_text("zipl root\n")


def launcher(dest: Path, root: Path, zfcpdump_dir: Path | None = None) -> Path:
    """An executable *dest* that runs the real zipl in *root* with the caller's arguments.

    With *zfcpdump_dir*, zipl sees that directory as its /lib/s390-tools/zfcpdump (a bind
    mount in zipl's own mount namespace), so a test can give it the pair it installed.
    """
    dest.write_text(LAUNCHER.format(root=root, qemu=chroot.QEMU_IN_ROOT, zdir=zfcpdump_dir or ""))
    dest.chmod(0o755)
    return dest


def run_zipl(root: Path, args: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        script = launcher(Path(tmp) / "zipl", root)
        return subprocess.run(
            [str(script), *args], capture_output=True, text=True, timeout=timeout, check=False
        )


@dataclass
class RealZiplDisk(zipldisk.ZiplDisk):
    """A disk image zipl prepared; everything outside the dump area is fingerprinted.

    `check_sentinels()` reports the start of each region whose bytes changed: the MBR and
    everything before the dump partition, the rest of the partition after the dump area
    (zipl's own data) except the superblock's 72 bytes, and the end of the disk.
    """

    regions: list[tuple[int, int, str]] = field(default_factory=list)
    zipl_output: str = ""

    def _digest(self, offset: int, length: int) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            left = length
            while left:
                block = handle.read(min(left, 4 * MIB))
                if not block:
                    break
                digest.update(block)
                left -= len(block)
        return digest.hexdigest()

    def fingerprint(self) -> None:
        dump_end = self.part_start + self.dump_size
        spans = [
            (0, self.part_start),
            (dump_end, self.sb_offset - dump_end),
            (self.sb_offset + 72, self.disk_size - self.sb_offset - 72),
        ]
        self.regions = [(off, length, self._digest(off, length)) for off, length in spans]

    def check_sentinels(self) -> list[int]:
        return [off for off, length, digest in self.regions if self._digest(off, length) != digest]


def _partition(path: Path, dump_size: int) -> int:
    """A sparse image with a filler partition and the dump partition (p2); its size."""
    part_sectors = (dump_size + ZIPL_TAIL) // 512
    disk_size = (DUMP_START_SECTOR + part_sectors) * 512 + 2 * MIB
    with open(path, "wb") as handle:
        handle.truncate(disk_size)
    table = (
        f"label: dos\nstart={FILLER[0]},size={FILLER[1]},type=83\n"
        f"start={DUMP_START_SECTOR},size={part_sectors},type=83\n"
    )
    subprocess.run(["sfdisk", "-q", str(path)], input=table, text=True, check=True, capture_output=True)
    with open(path, "r+b") as handle:  # recognisable bytes zipl must not touch, nor the writer
        handle.seek(FILLER[0] * 512)
        handle.write(zipldisk.sentinel("filler-partition", 64 << 10))
        handle.seek(disk_size - 512)
        handle.write(zipldisk.sentinel("end-of-disk", 512))
    return disk_size


def make_disk(path: Path, dump_size: int, root: Path | None = None) -> RealZiplDisk:
    """A disk image at *path* whose p2 the real `zipl -d` prepared, with >= *dump_size* of dump area."""
    if shutil.which("sfdisk") is None:
        pytest.skip("sfdisk is not installed")
    root = root or ensure_root()
    disk_size = _partition(path, dump_size)
    loop = LoopDevice(path)
    try:
        part = loop.part(2)
        result = run_zipl(root, ["-V", "-n", "-d", str(part)])
    finally:
        loop.close()
    if result.returncode != 0:
        raise AssertionError(f"real zipl failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    with open(path, "rb") as handle:
        boot_info = handle.read(0x98)[0x70:]
    if boot_info[:4] != b"zIPL":
        raise AssertionError(f"zipl left no boot_info in the MBR:\n{result.stdout}")
    (sb_offset,) = struct.unpack(">Q", boot_info[8:16])
    disk = RealZiplDisk(path, 512, 2, 0, 0, 0, sb_offset, disk_size, zipl_output=result.stdout)
    sb = disk.superblock()
    if sb["magic"] != zipldisk.SB_MAGIC or sb["dump_size"] < dump_size:
        raise AssertionError(f"unexpected superblock from zipl: {sb}\n{result.stdout}")
    disk.part_start, disk.part_size, disk.dump_size = sb["part_start"], sb["part_size"], sb["dump_size"]
    disk.fingerprint()
    return disk
