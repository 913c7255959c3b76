"""Real write errors under the real writer: QEMU's blkdebug driver fails one write request of
the guest's virtio SCSI disk (werror=report), so the capture kernel's block layer reports an
I/O error to the writer. Each dump must fail visibly and leave no valid dump, a valid
superblock and the sentinels around the dump area intact; then the same disk, without the
fault, must take a complete dump.
"""

from __future__ import annotations

from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import realzipl, zipldisk

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]
SECTOR = 512
BODY = sc.DUMPED_MIB * zipldisk.MIB  # the vmcore, less its few KiB of headers


def rules(path: Path, sector: int, after_first_flush: bool = False) -> Path:
    """A bad sector: every write that covers *sector* gets EIO (blkdebug's rule format). It
    is persistent on purpose: with `once = "on"` the dump succeeded, as the failed request
    was evidently retried below the writer.

    *after_first_flush*: the sector goes bad only after the guest's first flush. The dump
    area's first page is written twice, the busy marker (then a flush) and, last, the header
    page; so this fails the header page only."""
    text = f'[inject-error]\nevent = "pwritev"\nerrno = "5"\nsector = "{sector}"\n'
    if after_first_flush:
        text = '[set-state]\nstate = "1"\nevent = "flush_to_disk"\nnew_state = "2"\n\n' + text
        text += 'state = "2"\n'
    path.write_text(text)
    return path


def fault_sector(disk: zipldisk.ZiplDisk, where: str) -> int:
    if where == "superblock":
        return disk.sb_offset // SECTOR
    if where == "header":
        return disk.dump_start // SECTOR
    fraction = float(where.rstrip("%")) / 100
    return (disk.dump_start + 4096 + int(fraction * BODY)) // SECTOR


@pytest.mark.parametrize("where", ["10%", "50%", "99%", "superblock", "header"])
def test_a_write_error_fails_the_dump_and_the_disk_takes_the_next_one(
    art: sc.Artifacts, first_rd: Path, e2e_dir: Path, zg_root: Path, where: str
) -> None:
    work = e2e_dir / f"fault-{where.rstrip('%')}"
    work.mkdir(exist_ok=True)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    sb_before = dc.read_superblock(disk.path)
    faulty = sc.kdump(
        art,
        first_rd,
        disk.path,
        work / "console-fault.log",
        expect=(sc.WRITER_START, sc.FAILED),
        failures=sc.FAILING_RUN,
        disk_faults=rules(work / "blkdebug.conf", fault_sector(disk, where), where == "header"),
    )
    failed = sc.failed_line(faulty)
    assert "rror" in failed, sc.writer_lines(faulty.console)  # an I/O error, said
    if where == "header":  # it failed at the end: the whole body was written first
        assert disk.written(disk.dump_start + 0x3000 + BODY - 4096), "the body was not written"
    # Marked busy, unless marking it busy was what failed: then the writer put zipl's state back.
    left = "empty" if where == "superblock" else "busy"
    assert sc.judged(disk, work, zg_root) == (left, False)
    assert dc.superblock_problems(disk.path, sb_before) == []
    assert disk.check_sentinels() == []

    again = sc.kdump(art, first_rd, disk.path, work / "console-again.log")
    again.check()
    assert sc.judged(disk, work, zg_root) == ("complete", True), (
        "the disk did not take a dump after the fault"
    )
    assert disk.check_sentinels() == []
