"""Power cuts: QEMU is SIGKILLed (the plug pulled) at five points of a real dump, chosen by
what the host sees in the disk image the guest writes: right after the busy marker, at 25 %,
50 % and 90 % of the copy, and in the gap between the header page and the last superblock
write. Write requests are throttled (QEMU's iops limit) so that the host can hit each gap.

Each cut before the header page must leave a dump that neither judge accepts (`dumpdisk
inspect` and `zgetdump -i`). A cut after it leaves a whole dump with a stale checksum: the
header is written last, after the data is synced, so zgetdump takes that dump, and inspect
must say the same. Every cut leaves zipl's data and all outside the dump area untouched, and
a disk that takes the next dump: a cut in one of the two superblock gaps leaves a checksum
mismatch that the writer recognises as its own (tests/writer/test_failures.py, host side).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import scenario as sc
from tests.support import realzipl, zipldisk

from zfcpdump_builder.deploy import dumpdisk
from zfcpdump_writer.diskinfo import CUT_AFTER_HEADER
from zfcpdump_writer.layout import BUSY_MARKER

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]
WRITE_IOPS = 25  # 40 ms between write requests: room for the host to look and kill
BODY = sc.DUMPED_MIB * zipldisk.MIB
HEADERS = 0x3000  # the vmcore's ELF header, program headers and notes come first


def starts_with(disk: zipldisk.ZiplDisk, data: bytes) -> Callable[[], bool]:
    return lambda: disk.read(disk.dump_start, len(data)) == data


def cut_point(disk: zipldisk.ZiplDisk, point: str) -> Callable[[], bool]:
    if point == "busy":
        return starts_with(disk, BUSY_MARKER)
    if point == "header":
        return starts_with(disk, b"\x7fELF")
    offset = disk.dump_start + HEADERS + int(float(point.rstrip("%")) / 100 * BODY)
    return lambda: disk.written(offset // 4096 * 4096)


@pytest.mark.parametrize("point", ["busy", "25%", "50%", "90%", "header"])
def test_a_power_cut_leaves_no_valid_dump_and_a_reusable_disk(
    art: sc.Artifacts, first_rd: Path, e2e_dir: Path, zg_root: Path, point: str
) -> None:
    work = e2e_dir / f"powercut-{point.rstrip('%')}"
    work.mkdir(exist_ok=True)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    assert not disk.written(disk.dump_start + HEADERS + BODY // 4), "zipl wrote into the dump body"
    cut = sc.kdump(
        art,
        first_rd,
        disk.path,
        work / "console-cut.log",
        expect=(sc.WRITER_START,),
        failures=sc.FAILING_RUN,
        kill_when=cut_point(disk, point),
        write_iops=WRITE_IOPS,
    )
    assert cut.killed, f"never reached {point}: {'; '.join(cut.problems())}; {sc.writer_lines(cut.console)}"
    assert not any(sc.SUCCESS in line for line in sc.writer_lines(cut.console)), "cut after the dump ended"
    state, valid = sc.judged(disk, work, zg_root)
    assert (state, valid) == (("complete", True) if point == "header" else ("busy", False))
    if point == "header":
        assert dumpdisk.inspect(disk.path).get("note") == CUT_AFTER_HEADER
    assert disk.check_sentinels() == []
    in_a_gap = not disk.csum_matches()  # the first page changed, its superblock write did not come
    assert in_a_gap == (point == "header") or point == "busy", "a mid-copy cut left a bad checksum"

    again = sc.kdump(art, first_rd, disk.path, work / "console-again.log")
    again.check()
    said = " ".join(sc.writer_lines(again.console))
    assert ("an earlier dump was cut off" in said) == in_a_gap, said
    assert sc.judged(disk, work, zg_root) == ("complete", True), "the disk did not take a dump after the cut"
    assert disk.check_sentinels() == []
