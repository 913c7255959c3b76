"""Disk images laid out as `zipl -d` prepares a SCSI dump disk (see the facts, section 4).

- DOS partition table (little-endian); the dump partition is NOT the first one: a filler
  primary partition comes first, and with `logical=True` the dump partition is the second
  logical partition inside an extended one;
- MBR: zIPL header, program-table pointer, boot_info at 0x70 with the superblock's byte offset;
- superblock (72 bytes, block aligned) in the partition tail, after the dump area;
- first 64 KiB of the partition zeroed; csum = 0x12345678 (checksum of 4096 zero bytes);
- sentinel bytes before the partition, after the dump area, around the superblock, in the
  MBR gap, in the filler partitions and at the end of the disk; `check_sentinels()` tells
  which changed.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

SB_MAGIC = 0x5A46435044554D50
MIB = 1 << 20


def sentinel(tag: str, length: int) -> bytes:
    unit = f"<{tag}>".encode()
    return (unit * (length // len(unit) + 1))[:length]


def ckm(data: bytes, seed: int = 0x12345678) -> int:
    """Reference CKSM checksum, word by word exactly as in the facts (slow, for tests)."""
    s = seed
    data = data + b"\0" * (-len(data) % 4)
    for i in range(0, len(data), 4):
        s += int.from_bytes(data[i : i + 4], "big")
        if s > 0xFFFFFFFF:
            s = (s & 0xFFFFFFFF) + 1
    return s


@dataclass
class ZiplDisk:
    path: Path
    block: int
    part_number: int
    part_start: int
    part_size: int
    dump_size: int
    sb_offset: int
    disk_size: int
    sentinels: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def dump_start(self) -> int:
        return self.part_start

    def read(self, offset: int, length: int) -> bytes:
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def written(self, offset: int) -> bool:
        """Something has written the (sparse) image at *offset*: it holds data there."""
        with open(self.path, "rb") as handle:
            try:
                return os.lseek(handle.fileno(), offset, os.SEEK_DATA) == offset
            except OSError:  # ENXIO: no data at or after offset
                return False

    def write(self, offset: int, data: bytes) -> None:
        with open(self.path, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)

    def superblock(self) -> dict[str, int]:
        names = (
            "magic",
            "version",
            "part_start",
            "part_size",
            "dump_offset",
            "dump_size",
            "csum_offset",
            "csum_size",
            "csum",
        )
        return dict(zip(names, struct.unpack(">9Q", self.read(self.sb_offset, 72)), strict=True))

    def set_superblock(self, **fields: int) -> None:
        sb = self.superblock()
        sb.update(fields)
        self.write(self.sb_offset, struct.pack(">9Q", *sb.values()))

    def csum_matches(self) -> bool:
        sb = self.superblock()
        return ckm(self.read(sb["part_start"] + sb["csum_offset"], sb["csum_size"])) == sb["csum"]

    def check_sentinels(self) -> list[int]:
        """Offsets of the sentinels that changed (empty: all intact)."""
        return [off for off, data in self.sentinels if self.read(off, len(data)) != data]

    def partition_image(self, out: Path) -> Path:
        """Copy the dump partition to *out* (sparse): what `zgetdump -i` wants."""
        copy_sparse(self.path, self.part_start, self.part_size, out)
        return out


def copy_sparse(src: Path, start: int, length: int, out: Path) -> None:
    with open(src, "rb") as fin, open(out, "wb") as fout:
        fout.truncate(length)
        pos = start
        while pos < start + length:
            try:
                data_at = os.lseek(fin.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break
            if data_at >= start + length:
                break
            hole = min(os.lseek(fin.fileno(), data_at, os.SEEK_HOLE), start + length)
            fin.seek(data_at)
            fout.seek(data_at - start)
            while data_at < hole:
                chunk = fin.read(min(8 * MIB, hole - data_at))
                fout.write(chunk)
                data_at += len(chunk)
            pos = hole


def _entry(ptype: int, lba: int, count: int) -> bytes:
    return struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", ptype, b"\xfe\xff\xff", lba, count)


def _table(entries: list[bytes]) -> bytes:
    return b"".join(entries).ljust(64, b"\0") + b"\x55\xaa"


def _mbr(block: int, sb_offset: int, prog_block: int) -> bytes:
    head = b"zIPL" + struct.pack(">I", 1) + b"\0" * 8
    head += struct.pack(">QHH4x", prog_block, block, 1) + b"\0" * 0x50
    head += b"zIPL" + bytes([1, 1, 2, 1]) + struct.pack(">Q", sb_offset) + b"\0" * 24
    assert len(head) == 0x98
    return head


class _Builder:
    def __init__(self, path: Path, block: int) -> None:
        self.path, self.block = path, block
        self.sentinels: list[tuple[int, bytes]] = []
        self.handle = open(path, "r+b")  # noqa: SIM115 - closed in finish()

    def put(self, offset: int, data: bytes) -> None:
        self.handle.seek(offset)
        self.handle.write(data)

    def guard(self, offset: int, length: int, tag: str) -> None:
        data = sentinel(tag, length)
        self.put(offset, data)
        self.sentinels.append((offset, data))


def make_disk(
    path: Path,
    dump_size: int,
    *,
    tail: int = 32 * MIB,
    logical: bool = False,
    block: int = 512,
    start_sector: int | None = None,
) -> ZiplDisk:
    """Create a zipl-prepared SCSI dump disk image at *path* (sparse)."""
    b = block
    filler = (2048, 2048)  # 1 MiB at 1 MiB: partition 1 (or the first logical one)
    start = start_sector or (4096 + (8 if logical else 0))
    part_size = dump_size + tail
    part_end = start * b + part_size
    disk_size = part_end + 2 * MIB
    with open(path, "wb") as handle:
        handle.truncate(disk_size)
    bld = _Builder(path, b)
    number = _write_tables(bld, logical, filler, start, part_size // b, disk_size // b)
    sb_offset = start * b + dump_size + (tail // 2) // b * b
    prog_block = (start * b + dump_size + b * 8) // b
    bld.put(0, _mbr(b, sb_offset, prog_block))
    _write_guards(bld, filler, start * b, dump_size, sb_offset, prog_block, disk_size)
    bld.put(start * b, b"\0" * (64 << 10))
    bld.put(
        sb_offset, struct.pack(">9Q", SB_MAGIC, 1, start * b, part_size, 0, dump_size, 0, 4096, 0x12345678)
    )
    bld.handle.close()
    return ZiplDisk(
        Path(path), b, number, start * b, part_size, dump_size, sb_offset, disk_size, bld.sentinels
    )


def _write_tables(
    bld: _Builder, logical: bool, filler: tuple[int, int], start: int, count: int, total: int
) -> int:
    b = bld.block
    if not logical:
        bld.put(0x1BE, _table([_entry(0x83, *filler), _entry(0x83, start, count)]))
        return 2
    ext = 1024  # extended partition at 512 KiB, EBRs inside it
    ebr2 = start - 8
    bld.put(0x1BE, _table([_entry(0x83, 8, 1000 - 8), _entry(0x05, ext, total - ext - 8)]))
    bld.put(
        ext * b + 0x1BE,
        _table([_entry(0x83, filler[0] - ext, filler[1]), _entry(0x05, ebr2 - ext, count + 8)]),
    )
    bld.put(ebr2 * b + 0x1BE, _table([_entry(0x83, 8, count)]))
    return 6


def _write_program_table(bld: _Builder, prog_block: int) -> None:
    """zipl's program table (entry 0: magic) pointing at a dump component (type 1)."""
    b = bld.block
    table = (b"zIPL" + b"\0" * 12 + struct.pack(">QHH4x", prog_block + 1, b, 1)).ljust(b, b"\0")
    component = (b"zIPL" + bytes([1]) + b"\0" * 27).ljust(b, sentinel("component", 1))
    for offset, data in ((prog_block * b, table), ((prog_block + 1) * b, component)):
        bld.put(offset, data)
        bld.sentinels.append((offset, data))


def _write_guards(
    bld: _Builder,
    filler: tuple[int, int],
    part_start: int,
    dump_size: int,
    sb_offset: int,
    prog_block: int,
    disk_size: int,
) -> None:
    b = bld.block
    bld.guard(0x98, 0x1B8 - 0x98, "mbr-gap")
    bld.guard(filler[0] * b, 64 << 10, "filler-partition")
    bld.guard(part_start - b, b, "before-partition")
    bld.guard(part_start + dump_size, 8 * b, "after-dump-area")
    _write_program_table(bld, prog_block)
    bld.guard(sb_offset - b, b, "before-superblock")
    bld.guard(sb_offset + 72, b - 72, "superblock-block-rest")
    bld.guard(sb_offset + b, b, "after-superblock")
    bld.guard(disk_size - b, b, "end-of-disk")
