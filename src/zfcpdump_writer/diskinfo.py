"""Host-side look at a zipl SCSI dump disk (device or image): layout, dump state, extraction.

Standard library only, shares the parsers with the writer. `inspect(path) -> dict` never raises
for a bad disk: it reports `error`; `extract(path, out)` raises DumpError unless the dump is
complete.
"""

from __future__ import annotations

import os

from .elfcore import PT_LOAD, PT_NOTE, is_elf, parse_header, parse_notes, segments
from .errors import DumpError, LayoutError
from .layout import (
    BUSY_MARKER,
    Superblock,
    check_superblock,
    checksum,
    cut_off_dump,
    dos_partitions,
    parse_mbr,
    read_superblock,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .elfcore import Reader, Segment

MAX_NOTES = 1 << 20
CUT_AFTER_HEADER = (
    "the checksum predates the dump header: the writer was cut off after the dump was whole, "
    "before its last superblock write (the next dump takes the area over)"
)
CHUNK = 1 << 20


class _Disk:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.size = os.lseek(self.fd, 0, os.SEEK_END)
        self.block = _block_size(path)

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        os.close(self.fd)


def _block_size(path: str) -> int:
    st = os.stat(path)
    if (st.st_mode & 0o170000) != 0o060000:  # not a block device
        return 512
    sysfs = f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}/queue/logical_block_size"
    try:
        with open(sysfs) as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 512


def _layout(disk: _Disk, out: dict[str, object]) -> Superblock:
    info = parse_mbr(disk.read(0, disk.block))
    sb = read_superblock(disk.read, info.sb_offset, disk.size)
    check_superblock(sb, info.sb_offset, disk.size, disk.block)
    out.update(
        sb_offset=info.sb_offset,
        part_start=sb.part_start,
        part_size=sb.part_size,
        dump_offset=sb.dump_offset,
        dump_start=sb.dump_start,
        dump_size=sb.dump_size,
        csum=sb.csum,
        csum_size=sb.csum_size,
        csum_ok=checksum(disk.read(sb.csum_start, sb.csum_size)) == sb.csum,
    )
    try:
        parts = dos_partitions(disk.read, disk.block)
        match = [p.number for p in parts if p.start == sb.part_start and p.size == sb.part_size]
        out["partition"] = match[0] if match else None
    except LayoutError:
        out["partition"] = None
    return sb


def _dump_state(disk: _Disk, sb: Superblock, out: dict[str, object]) -> None:
    base = sb.dump_start
    head = disk.read(base, 4096)
    if head.startswith(BUSY_MARKER):
        out["state"] = "busy"
    elif not head.strip(b"\0"):
        out["state"] = "empty"
    elif not is_elf(head):
        out["state"] = "unknown"
    else:
        _elf_state(disk, sb, head, out)


def _elf_state(disk: _Disk, sb: Superblock, head: bytes, out: dict[str, object]) -> None:
    def read(offset: int, length: int) -> bytes:
        return disk.read(base + offset, length)

    base = sb.dump_start
    try:
        phoff, phnum = parse_header(head, sb.dump_size)
        segs = list(segments(read, sb.dump_size, head))
    except DumpError as exc:
        out.update(state="invalid", error=str(exc))
        return
    loads = [s for s in segs if s.type == PT_LOAD]
    out["dump_bytes"] = max([phoff + phnum * 56] + [s.end for s in segs if s.type in (PT_LOAD, PT_NOTE)])
    out["memory_bytes"] = sum(s.filesz for s in loads)
    out["loads"] = [{"paddr": s.paddr, "size": s.filesz, "offset": s.offset} for s in loads]
    out["cpus"] = _count_cpus(read, segs)
    if out["csum_ok"]:
        out["state"] = "complete"
    elif cut_off_dump(sb, head):  # the header is written last: the dump itself is whole
        out.update(state="complete", note=CUT_AFTER_HEADER)
    else:
        out["state"] = "invalid"


def _count_cpus(read: Reader, segs: list[Segment]) -> int | None:
    count = 0
    for seg in segs:
        if seg.type == PT_NOTE and seg.filesz:
            try:
                notes = parse_notes(read(seg.offset, min(seg.filesz, MAX_NOTES)))
            except DumpError:
                return None
            count += sum(1 for n in notes if n.type == 1 and n.name == b"CORE")
    return count


def inspect(path: str) -> dict[str, object]:
    """Everything about the dump disk at *path*; `error` is set when it is not valid."""
    out: dict[str, object] = {"path": str(path), "error": None, "state": None}
    try:
        disk = _Disk(str(path))
    except OSError as exc:
        out["error"] = f"cannot open {path}: {exc.strerror}"
        return out
    try:
        out.update(disk_size=disk.size, block=disk.block)
        _dump_state(disk, _layout(disk, out), out)
    except DumpError as exc:
        out["error"] = str(exc)
    except OSError as exc:
        out["error"] = f"I/O error: {exc.strerror}"
    finally:
        disk.close()
    return out


def extract(path: str, out_path: str) -> int:
    """Copy the complete dump (an ELF core) to *out_path*, sparse; returns its size."""
    info = inspect(path)
    if info["error"] and info["state"] != "complete":
        raise DumpError(f"{path}: {info['error']}")
    if info["state"] != "complete":
        raise DumpError(f"{path}: no complete dump (state: {info['state']})")
    size, base = info["dump_bytes"], info["dump_start"]
    assert isinstance(size, int) and isinstance(base, int)  # a complete dump has both
    disk = _Disk(str(path))
    try:
        _copy_sparse(disk, base, size, out_path)
    finally:
        disk.close()
    return size


def _copy_sparse(disk: _Disk, base: int, size: int, out_path: str) -> None:
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        for pos in range(0, size, CHUNK):
            data = disk.read(base + pos, min(CHUNK, size - pos))
            if data.strip(b"\0"):
                os.pwrite(fd, data, pos)
        os.ftruncate(fd, size)
    finally:
        os.close(fd)
