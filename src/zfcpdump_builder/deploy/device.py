"""Preflight checks, and the ones on the dump device: a partition (plain or device-mapper),
not mounted, not swap, not held by dm/md/LVM, and exclusively openable."""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import BuildError, InstallError
from ..core.events import Reporter


@dataclass
class Check:
    """One preflight check: status is ok, warn or FAIL."""

    name: str
    status: str
    detail: str
    error: type[BuildError] = InstallError
    hint: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, hint: str | None = None, error: type[BuildError] = InstallError) -> Check:
    return Check(name, "FAIL", detail, error, hint)


@dataclass
class Device:
    """A block device and its sysfs directory."""

    path: Path
    rdev: int
    sysdir: Path

    @property
    def majmin(self) -> str:
        return f"{os.major(self.rdev)}:{os.minor(self.rdev)}"


@dataclass
class Sys:
    """Where the kernel's views live (overridable for tests)."""

    sysfs: Path = Path("/sys")
    mountinfo: Path = Path("/proc/self/mountinfo")
    swaps: Path = Path("/proc/swaps")


def open_device(name: str, sys_: Sys) -> Device | Check:
    path = Path(os.path.realpath(name))
    try:
        st = os.stat(path)
    except OSError as exc:
        return fail("block device", f"{name}: {exc.strerror}")
    if not stat.S_ISBLK(st.st_mode):
        return fail("block device", f"{name} is not a block device")
    sysdir = sys_.sysfs / "dev" / "block" / f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return Device(path, st.st_rdev, Path(os.path.realpath(sysdir)))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def whole_disk(dev: Device) -> str:
    """The /dev name of the disk holding partition *dev* (its sysfs parent)."""
    return f"/dev/{dev.sysdir.parent.name}"


def partition_check(dev: Device) -> Check:
    """A plain partition has sysfs `partition`; a multipath partition a dm uuid `partN-…`."""
    number = _read(dev.sysdir / "partition")
    if number:
        return ok("partition", f"{dev.path} is partition {number} of {whole_disk(dev)}")
    uuid = _read(dev.sysdir / "dm" / "uuid")
    if re.match(r"part\d+-", uuid):
        return ok("partition", f"{dev.path} is device-mapper partition {uuid.split('-', 1)[0]}")
    return fail(
        "partition",
        f"{dev.path} is a whole disk, not a partition",
        hint="zipl -d needs the dump PARTITION (e.g. /dev/sda1 or /dev/mapper/<WWID>-part1); "
        "create one with fdisk/sfdisk first",
    )


def mount_points(dev: Device, mountinfo: Path) -> list[str]:
    """Mount points of *dev* in mountinfo (by major:minor, and by source path)."""
    found = []
    for line in _read(mountinfo).splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        source = fields[fields.index("-") + 2] if "-" in fields else ""
        if fields[2] == dev.majmin or _same_device(source, dev.rdev):
            found.append(fields[4])
    return found


def _same_device(source: str, rdev: int) -> bool:
    if not source.startswith("/"):
        return False
    try:
        st = os.stat(source)
    except OSError:
        return False
    return stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev


def swap_check(dev: Device, swaps: Path) -> Check | None:
    for line in _read(swaps).splitlines()[1:]:
        name = line.split()[0] if line.split() else ""
        if _same_device(name, dev.rdev):
            return fail(
                "not swap",
                f"{dev.path} is an active swap area ({name})",
                hint=f"swapoff {name}, and remove it from /etc/fstab",
            )
    return None


def use_checks(dev: Device, sys_: Sys) -> list[Check]:
    """Not mounted, not swap, not held by device-mapper/md/LVM, and openable exclusively."""
    points = mount_points(dev, sys_.mountinfo)
    if points:
        return [
            fail(
                "not mounted",
                f"{dev.path} is mounted on {', '.join(points)}",
                hint=f"unmount it first (umount {points[0]}); zipl -d erases the partition",
            )
        ]
    swap = swap_check(dev, sys_.swaps)
    if swap is not None:
        return [swap]
    holders = sorted(p.name for p in (dev.sysdir / "holders").glob("*"))
    if holders:
        return [
            fail(
                "not in use",
                f"{dev.path} is held by {', '.join(holders)}",
                hint="use the device-mapper (multipath) partition instead, or release it",
            )
        ]
    return [ok("not mounted", "not in /proc/self/mountinfo or /proc/swaps, no holders"), _exclusive(dev)]


def _exclusive(dev: Device) -> Check:
    try:
        fd = os.open(dev.path, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return fail("not in use", f"{dev.path} is busy (an exclusive open failed): in use by the kernel")
        return Check("not in use", "warn", f"cannot open {dev.path} exclusively: {exc.strerror}")
    os.close(fd)
    return ok("not in use", "exclusive open succeeded")


def device_checks(name: str, sys_: Sys | None = None) -> list[Check]:
    """Every check on the dump device, stopping at the first that fails."""
    sys_ = sys_ or Sys()
    dev = open_device(name, sys_)
    if isinstance(dev, Check):
        return [dev]
    checks = [ok("block device", f"{dev.path} ({dev.majmin})"), partition_check(dev)]
    if checks[-1].failed:
        return checks
    return checks + use_checks(dev, sys_)


def report_checks(checks: list[Check], reporter: Reporter) -> None:
    reporter.table("preflight", ["check", "status", "detail"], [[c.name, c.status, c.detail] for c in checks])
    for check in checks:
        if check.status == "warn":
            reporter.warning(f"{check.name}: {check.detail}")


def raise_first_failure(checks: list[Check]) -> None:
    for check in checks:
        if check.failed:
            raise check.error(f"{check.name}: {check.detail}", hint=check.hint)


def disk_of(device: str) -> str:
    """The whole disk holding partition *device*, for the next-step hint (else DISK)."""
    dev = open_device(device, Sys())
    return whole_disk(dev) if isinstance(dev, Device) and _read(dev.sysdir / "partition") else "DISK"
