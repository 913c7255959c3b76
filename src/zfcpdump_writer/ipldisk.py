"""Finding the dump disk: bring the IPL FCP device online through sysfs, then wait for its
SCSI disk (or the configured device) to appear.

Newer kernels attach the IPL device themselves, so a write that fails because the device is
already there is tolerated and shown at debug level 3.
"""

from __future__ import annotations

import os

from .errors import DumpError
from .layout import Partition

IPL = "/sys/firmware/ipl"
ZFCP = "/sys/bus/ccw/drivers/zfcp"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .system import System

    Say = Callable[[str, int], None]


def attach_ipl_device(sysm: System, say: Say) -> tuple[str, int, int] | None:
    """Bring the IPL FCP device online; (devno, wwpn, lun) or None without FCP IPL."""
    kind = (sysm.read_text_or(IPL + "/ipl_type") or "").strip()
    if kind not in ("fcp", "fcp_dump"):
        say(f"IPL type {kind or 'unknown'}: no FCP device to attach", 3)
        return None
    devno = (sysm.read_text_or(IPL + "/device") or "").strip()
    wwpn = (sysm.read_text_or(IPL + "/wwpn") or "").strip()
    lun = (sysm.read_text_or(IPL + "/lun") or "").strip()
    say(f"IPL device {devno} wwpn {wwpn} lun {lun}", 2)
    base = f"{ZFCP}/{devno}"
    _try_write(sysm, say, "/sys/module/zfcp/parameters/allow_lun_scan", "0")
    _try_write(sysm, say, base + "/online", "1")
    if sysm.exists(base + "/port_add"):
        _try_write(sysm, say, base + "/port_add", wwpn)
    _try_write(sysm, say, f"{base}/{wwpn}/unit_add", lun)
    return devno, _hex(wwpn), _hex(lun)


def _try_write(sysm: System, say: Say, path: str, value: str) -> None:
    if not sysm.exists(path):
        say(f"{path} absent, skipped", 3)
        return
    try:
        sysm.write_text(path, value)
    except OSError as exc:  # already attached / online: fine
        say(f"{path} <- {value}: {exc.strerror or exc} (tolerated)", 3)


def wait_for_disk(sysm: System, say: Say, wanted: str, timeout: float) -> str:
    """The dump disk: *wanted*, or the IPL FCP disk once it appears (DumpError after *timeout*)."""
    ipl = attach_ipl_device(sysm, say)
    deadline = sysm.monotonic() + timeout
    while True:
        dev = _pick_disk(sysm, wanted, ipl)
        if dev:
            say(f"dump disk {dev}", 2)
            return dev
        if sysm.monotonic() >= deadline:
            raise DumpError(f"dump disk did not appear within {timeout:.0f} s")
        sysm.sleep(0.25)


def _pick_disk(sysm: System, wanted: str, ipl: tuple[str, int, int] | None) -> str | None:
    if wanted != "auto":
        return wanted if sysm.exists(wanted) else None
    zfcp_seen = False
    for name in sysm.listdir("/sys/block"):
        hba_id, wwpn, lun = (
            sysm.read_text_or(f"/sys/block/{name}/device/{a}") for a in ("hba_id", "wwpn", "fcp_lun")
        )
        if hba_id is None or wwpn is None or lun is None:
            continue
        zfcp_seen = True
        if (
            ipl
            and hba_id.strip() == ipl[0]
            and _hex(wwpn) == ipl[1]
            and _hex(lun) == ipl[2]
            and sysm.exists("/dev/" + name)
        ):
            return "/dev/" + name
    if not zfcp_seen and sysm.exists("/dev/sda"):
        return "/dev/sda"
    return None


def _hex(text: str | None) -> int:
    try:
        return int((text or "").strip(), 16)
    except ValueError:
        return -1


def logical_block_size(sysm: System, dev: str) -> int:
    text = sysm.read_text_or(f"/sys/block/{os.path.basename(dev)}/queue/logical_block_size")
    return int(text) if text and text.strip().isdigit() and int(text) >= 512 else 512


def sysfs_partitions(sysm: System, dev: str) -> list[Partition]:
    """The kernel's partitions of *dev* (sysfs start and size, in bytes)."""
    name, parts = os.path.basename(dev), []
    for sub in sysm.listdir(f"/sys/block/{name}"):
        base = f"/sys/block/{name}/{sub}"
        # a missing attribute reads as "": not digits, so the entry is skipped
        vals = [sysm.read_text_or(f"{base}/{f}") or "" for f in ("partition", "start", "size")]
        if sub.startswith(name) and all(v.strip().isdigit() for v in vals):
            number, start, size = (int(v) for v in vals)
            parts.append(Partition(number, start * 512, size * 512))
    return parts
