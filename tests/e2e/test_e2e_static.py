"""A real kdump cycle in a crash region of 24 MiB, with the default rd (the writer frozen into
a static /init).

The qemu-test rd (one static binary and the config) dumps a crashed kernel from a
crashkernel=24M region, where the custom interpreter's rd ran out of memory (its floor was
28-30 MiB; the frozen rd's is 22, docs/benchmarks.md). zgetdump judges the partition, and the
crashed kernel's token must be in the dump.
"""

from __future__ import annotations

from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import realzipl, zgetdump

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]
CRASH_MIB = 24


def test_the_frozen_rd_dumps_from_a_24_mib_crash_region(
    art: sc.Artifacts, e2e_dir: Path, zg_root: Path, token: str, metrics: dict[str, object]
) -> None:
    work = e2e_dir / "kdump-static"
    work.mkdir(exist_ok=True)
    first_rd = sc.crash_rd(art, work / "crashside.rd", token)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    before = dc.read_superblock(disk.path)
    result = sc.kdump(
        art,
        first_rd,
        disk.path,
        work / "console.log",
        crash_mib=CRASH_MIB,
        expect=(sc.WRITER_START, sc.SUCCESS),
    )
    metrics[f"kdump static rd: MemAvailable low point at {CRASH_MIB} MiB (kB)"] = sc.mem_available_low_kib(
        result.console
    )
    assert result.passed, "; ".join(result.problems())
    assert sc.capture_memory_kib(result.console) <= CRASH_MIB * 1024
    part = disk.partition_image(work / "part.img")
    info = zgetdump.info(part, zg_root)
    assert info.returncode == 0, info.stderr.decode(errors="replace")
    elf = work / "dump.elf"
    converted = zgetdump.convert(part, elf, zg_root)
    assert converted.returncode == 0, converted.stderr.decode(errors="replace")
    assert dc.contains(elf, token.encode()), "the first kernel's /init token is not in the dump"
    assert disk.check_sentinels() == []
    assert dc.superblock_problems(disk.path, before) == []
