"""zipl SCSI dump disk layout: MBR + boot_info, dump superblock, checksum, DOS partitions.

All zipl fields are big-endian; the DOS partition table is little-endian. Pure functions over
bytes plus `read_layout(read, disk_size, block)`, which validates everything the writer needs
before it may write a single byte.
"""

from __future__ import annotations

from struct import Struct

from .elfcore import is_elf
from .errors import ChecksumError, LayoutError

CSUM_SEED = 0x12345678
SB_MAGIC = 0x5A46435044554D50  # "ZFCPDUMP"
SB_VERSION = 1
SB = Struct(">9Q")
SB_SIZE = SB.size  # 72
BUSY_MARKER = b"zfcpdump busy\0"
CUT_OFF_PAGE = 4096  # the first page of the dump area: busy marker, later the dump header
MAX_CSUM_SIZE = 1 << 20
BOOT_INFO = 0x70
BP_TYPE_DUMP = 1
DEV_TYPE_SCSI = 2
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
MAX_LOGICAL = 128
MASK32 = 0xFFFFFFFF

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    Reader = Callable[[int, int], bytes]


def checksum(data: bytes | bytearray | memoryview, seed: int = CSUM_SEED) -> int:
    """The seeded CKSM checksum: 32-bit ones'-complement sum of big-endian words."""
    data = bytes(data)
    if len(data) % 4:
        data += b"\0" * (4 - len(data) % 4)
    total = seed + sum(int.from_bytes(data[i : i + 4], "big") for i in range(0, len(data), 4))
    while total > MASK32:
        total = (total & MASK32) + (total >> 32)
    return total


class BootInfo:
    __slots__ = ("sb_offset",)

    def __init__(self, sb_offset: int) -> None:
        self.sb_offset = sb_offset


def parse_mbr(mbr: bytes) -> BootInfo:
    """Check the zIPL MBR and its boot_info; return the superblock's byte offset."""
    if len(mbr) < 0x98:
        raise LayoutError(f"MBR too short ({len(mbr)} bytes)")
    if mbr[0:4] != b"zIPL":
        raise LayoutError(f"no zIPL MBR (magic {mbr[0:4].hex()}): not a zipl dump disk")
    bi = mbr[BOOT_INFO : BOOT_INFO + 8]
    if bi[0:4] != b"zIPL":
        raise LayoutError(f"no boot_info in MBR (magic {bi[0:4].hex()})")
    if bi[4] != 1:
        raise LayoutError(f"unsupported boot_info version {bi[4]}")
    if bi[5] != BP_TYPE_DUMP:
        raise LayoutError(f"boot_info bp_type {bi[5]} is not dump ({BP_TYPE_DUMP}): not a dump disk")
    if bi[6] != DEV_TYPE_SCSI:
        raise LayoutError(f"boot_info dev_type {bi[6]} is not SCSI ({DEV_TYPE_SCSI})")
    return BootInfo(int.from_bytes(mbr[0x78:0x80], "big"))


class Superblock:
    """The 72-byte dump superblock (nine big-endian u64)."""

    __slots__ = (
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
    # Set by __init__ from the slot names; declared for the type checker.
    magic: int
    version: int
    part_start: int
    part_size: int
    dump_offset: int
    dump_size: int
    csum_offset: int
    csum_size: int
    csum: int

    def __init__(self, *fields: int) -> None:
        for name, value in zip(self.__slots__, fields, strict=True):
            setattr(self, name, value)

    def pack(self) -> bytes:
        return SB.pack(*(getattr(self, name) for name in self.__slots__))

    @property
    def dump_start(self) -> int:
        """Byte offset of the dump area from the start of the disk."""
        return self.part_start + self.dump_offset

    @property
    def csum_start(self) -> int:
        return self.part_start + self.csum_offset


def parse_superblock(raw: bytes) -> Superblock:
    if len(raw) < SB_SIZE:
        raise LayoutError(f"superblock too short ({len(raw)} bytes)")
    sb = Superblock(*SB.unpack_from(raw))
    if sb.magic != SB_MAGIC:
        raise LayoutError(f"bad dump superblock magic {sb.magic:#018x}: run zipl -d again")
    if sb.version != SB_VERSION:
        raise LayoutError(f"unsupported dump superblock version {sb.version}")
    return sb


def read_superblock(read: Reader, sb_offset: int, disk_size: int) -> Superblock:
    """The superblock boot_info points at; an offset off the disk is refused before any read
    (a huge one would not even fit the read call)."""
    if not 0 < sb_offset <= disk_size - SB_SIZE:
        raise LayoutError(f"boot_info: superblock offset {sb_offset} is outside the disk ({disk_size} bytes)")
    return parse_superblock(read(sb_offset, SB_SIZE))


def check_superblock(sb: Superblock, sb_offset: int, disk_size: int, block: int) -> None:
    """Reject a superblock whose areas leave the partition or overlap each other."""
    end = sb.part_start + sb.part_size
    if sb.part_start < block or sb.part_start % block or sb.part_size == 0:
        raise LayoutError(f"superblock: bad partition start {sb.part_start} / size {sb.part_size}")
    if end > disk_size:
        raise LayoutError(f"superblock: partition ends at {end}, beyond the disk ({disk_size} bytes)")
    if sb_offset % block or not sb.part_start <= sb_offset <= end - SB_SIZE:
        raise LayoutError(f"superblock at {sb_offset} is not block aligned inside the partition")
    if sb.dump_size == 0 or sb.dump_offset % block or sb.dump_offset + sb.dump_size > sb.part_size:
        raise LayoutError(f"superblock: dump area {sb.dump_offset}+{sb.dump_size} leaves the partition")
    if sb.dump_start < sb_offset + SB_SIZE and sb_offset < sb.dump_start + sb.dump_size:
        raise LayoutError("superblock: dump area overlaps the superblock")
    if not 0 < sb.csum_size <= MAX_CSUM_SIZE or sb.csum_offset + sb.csum_size > sb.part_size:
        raise LayoutError(f"superblock: bad checksum area {sb.csum_offset}+{sb.csum_size}")


class Partition:
    __slots__ = ("number", "start", "size")

    def __init__(self, number: int, start: int, size: int) -> None:
        self.number, self.start, self.size = number, start, size

    def __repr__(self) -> str:
        return f"Partition({self.number}, start={self.start}, size={self.size})"


def _entries(sector: bytes) -> list[tuple[int, int, int]]:
    """(type, lba, sectors) of the four slots of an MBR/EBR; empty slots skipped."""
    if sector[510:512] != b"\x55\xaa":
        raise LayoutError("no DOS partition table (missing 55 AA signature)")
    out = []
    for i in range(4):
        e = sector[0x1BE + 16 * i : 0x1CE + 16 * i]
        ptype = e[4]
        lba, count = int.from_bytes(e[8:12], "little"), int.from_bytes(e[12:16], "little")
        if ptype and count:
            out.append((ptype, lba, count))
    return out


def dos_partitions(read: Reader, block: int) -> list[Partition]:
    """Primary (1-4) and logical (5+) partitions of a DOS table; offsets in bytes."""
    parts: list[Partition] = []
    extended = None
    for number, (ptype, lba, count) in enumerate(_entries(read(0, block)), 1):
        if ptype in EXTENDED_TYPES:
            extended = lba
        else:
            parts.append(Partition(number, lba * block, count * block))
    if extended is not None:
        parts.extend(_logical_partitions(read, block, extended))
    return parts


def _logical_partitions(read: Reader, block: int, ext_lba: int) -> list[Partition]:
    parts: list[Partition] = []
    ebr = ext_lba
    seen: set[int] = set()
    while ebr not in seen and len(seen) < MAX_LOGICAL:
        seen.add(ebr)
        entries = _entries(read(ebr * block, block))
        nxt = None
        for ptype, lba, count in entries:
            if ptype in EXTENDED_TYPES:
                nxt = ext_lba + lba
            else:
                parts.append(Partition(5 + len(parts), (ebr + lba) * block, count * block))
        if nxt is None:
            break
        ebr = nxt
    return parts


def find_partition(parts: list[Partition], sb: Superblock) -> Partition:
    for part in parts:
        if part.start == sb.part_start and part.size == sb.part_size:
            return part
    raise LayoutError(
        f"no partition with start {sb.part_start} and size {sb.part_size} "
        "(the superblock's): disk repartitioned since zipl?"
    )


class Layout:
    """Everything validated about the dump disk."""

    __slots__ = ("sb", "sb_offset", "partition", "block", "disk_size", "cut_off")

    def __init__(
        self, sb: Superblock, sb_offset: int, partition: Partition, block: int, disk_size: int
    ) -> None:
        self.sb, self.sb_offset, self.partition = sb, sb_offset, partition
        self.block, self.disk_size = block, disk_size
        self.cut_off: str | None = None  # what a dump cut off before its superblock write left


def cut_off_dump(sb: Superblock, head: bytes) -> str | None:
    """Why the area is taken over though its checksum does not match, or None: a dump of
    ours was cut off (a power loss) between writing the first page and the superblock.

    A writer changes the checksummed page twice, each time followed by a superblock write:
    the busy marker, then the dump header. A cut in either gap leaves a mismatch that only
    the writer's own page explains; anything else is a disk changed since zipl.
    """
    if sb.csum_start != sb.dump_start or sb.csum_size > CUT_OFF_PAGE:
        return None
    found = "a busy marker" if head.startswith(BUSY_MARKER) else "a dump header" if is_elf(head) else None
    if found is None:
        return None
    return (
        f"the superblock's checksum does not match, but the dump area starts with {found}: "
        "an earlier dump was cut off before its last superblock write; taking the area over"
    )


def read_layout(
    read: Reader, disk_size: int, block: int, sysfs_parts: Callable[[], list[Partition]] | None = None
) -> Layout:
    """Read and validate MBR, boot_info, superblock, partition and checksum.

    *read(offset, length) -> bytes*; *sysfs_parts* is an optional callable returning
    partitions from sysfs, used when the DOS table does not list the dump partition.
    """
    if disk_size < 2 * block:
        raise LayoutError(f"disk too small ({disk_size} bytes)")
    info = parse_mbr(read(0, block))
    sb = read_superblock(read, info.sb_offset, disk_size)
    check_superblock(sb, info.sb_offset, disk_size, block)
    part = _match_partition(read, block, sb, sysfs_parts)
    layout = Layout(sb, info.sb_offset, part, block, disk_size)
    try:
        verify_checksum(read, sb)
    except ChecksumError:
        layout.cut_off = cut_off_dump(sb, read(sb.dump_start, CUT_OFF_PAGE))
        if layout.cut_off is None:
            raise
    return layout


def _match_partition(
    read: Reader, block: int, sb: Superblock, sysfs_parts: Callable[[], list[Partition]] | None
) -> Partition:
    try:
        return find_partition(dos_partitions(read, block), sb)
    except LayoutError:
        if sysfs_parts is None:
            raise
        return find_partition(sysfs_parts(), sb)


def verify_checksum(read: Reader, sb: Superblock) -> None:
    actual = checksum(read(sb.csum_start, sb.csum_size))
    if actual != sb.csum:
        raise ChecksumError(
            f"checksum mismatch (disk {actual:#010x}, superblock {sb.csum:#010x}): "
            "the dump partition changed since zipl; refusing to write"
        )
