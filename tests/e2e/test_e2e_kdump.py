"""Scenario a: a real kdump cycle under QEMU, judged on the host.

The qemu-test kernel boots with crashkernel=32M and the crash-side rd, loads itself as the
capture kernel with our UNMODIFIED zfcpdump.rd, and crashes. The writer runs in kdump mode
(/proc/vmcore, no HSA), writes the dump to partition 2 of a zipl-prepared disk and powers off.
Judges: the console; zgetdump -i; the ELF from `zgetdump PART`; gdb-multiarch; the sentinels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dumpcheck as dc
import pytest
import scenario as sc
from tests.support import realzipl, zgetdump, zipldisk

from zfcpdump_builder.deploy.qemu import BootResult

pytestmark = [pytest.mark.qemu, pytest.mark.kernel, pytest.mark.slow]


@dataclass
class KdumpRun:
    disk: zipldisk.ZiplDisk
    sb_before: dc.Superblock
    result: BootResult
    part: Path
    info: object
    elf: Path
    convert: object


@pytest.fixture(scope="module")
def run(
    art: sc.Artifacts, first_rd: Path, e2e_dir: Path, zg_root: Path, metrics: dict[str, object]
) -> KdumpRun:
    work = e2e_dir / "kdump"
    work.mkdir(exist_ok=True)
    disk = realzipl.make_disk(work / "disk.img", sc.DUMP_AREA)
    before = dc.read_superblock(disk.path)
    bps, interval = sc.progress_write_bps(art.rd, sc.DUMPED_MIB * zipldisk.MIB)
    metrics["kdump: disk write throttle (bytes/s; progress interval s)"] = f"{bps}; {interval:g}"
    result = sc.kdump(
        art, first_rd, disk.path, work / "console.log", expect=(sc.WRITER_START, sc.SUCCESS), write_bps=bps
    )
    part = disk.partition_image(work / "part.img")
    info = zgetdump.info(part, zg_root)
    elf = work / "dump.elf"
    converted = zgetdump.convert(part, elf, zg_root)
    _record(metrics, result)
    return KdumpRun(disk, before, result, part, info, elf, converted)


def _record(metrics: dict[str, object], result: BootResult) -> None:
    metrics["kdump: whole cycle (s)"] = result.duration
    for marker in (sc.WRITER_START, sc.SUCCESS):
        if marker in result.seen:
            metrics[f"kdump: {marker!r} at (s)"] = result.seen[marker]
    metrics["kdump: capture kernel memory (KiB)"] = sc.capture_memory_kib(result.console)
    low = sc.mem_available_low_kib(result.console)
    metrics["kdump: MemAvailable low point (kB)"] = (
        low if low is not None else "not measured (the writer prints no MemAvailable)"
    )
    metrics["kdump: progress lines"] = len(sc.progress_lines(result.console))


def _dumped(run: KdumpRun) -> KdumpRun:
    """The run, after checking there is a dump to judge (else say why there is none)."""
    assert run.result.passed, "no dump to judge: " + "; ".join(run.result.problems())
    assert run.convert.returncode == 0 and run.elf.stat().st_size > 0, (
        "zgetdump could not convert the dump: " + run.convert.stderr.decode(errors="replace")
    )
    return run


def test_console_shows_kdump_mode_progress_and_success(run: KdumpRun) -> None:
    lines = sc.kdump_success_lines(run.result)
    assert sc.progress_lines(run.result.console), f"no progress line on the console:\n{lines}"


def test_capture_side_has_at_most_32_mib(run: KdumpRun) -> None:
    kib = sc.capture_memory_kib(run.result.console)
    assert kib is not None, "the capture kernel's 'Memory:' line is missing"
    assert kib <= 32 * 1024


def test_writer_reports_its_memory_low_point(run: KdumpRun) -> None:
    low = sc.mem_available_low_kib(run.result.console)
    assert low is not None, "the writer printed no MemAvailable line"
    assert 0 < low < 32 * 1024, f"MemAvailable {low} kB cannot be right in a 32 MiB guest"


def test_zgetdump_accepts_the_partition(run: KdumpRun) -> None:
    assert run.info.returncode == 0, run.info.stderr.decode(errors="replace")
    assert run.convert.returncode == 0, run.convert.stderr.decode(errors="replace")
    assert run.elf.stat().st_size > 0


def test_vmcoreinfo_release_and_banner_match_the_first_kernel(run: KdumpRun, art: sc.Artifacts) -> None:
    _dumped(run)
    banner = sc.first_kernel_banner(run.result.console)
    assert banner, "the crash-side /init did not print /proc/version"
    info = dc.vmcoreinfo(run.elf)
    assert info.get("OSRELEASE") == banner.split()[2]
    symbols = dc.system_map(art.system_map)
    assert int(info["SYMBOL(_stext)"], 16) == symbols["_stext"], "System.map is not this kernel's"
    paddr = symbols["linux_banner"] + int(info.get("KERNELOFFSET", "0"), 16)
    memory = dc.read_phys(run.elf, paddr, len(banner))
    assert memory.decode(errors="replace") == banner


def test_dump_holds_the_crashed_kernels_memory(run: KdumpRun, token: str) -> None:
    _dumped(run)
    assert dc.contains(run.elf, token.encode()), "the first kernel's /init token is not in the dump"


def test_dump_partition_is_not_the_first(run: KdumpRun) -> None:
    parts = dc.primary_partitions(run.disk.path)
    dump = [p for p in parts if p.start == run.sb_before.part_start]
    assert len(parts) >= 2 and dump and dump[0].number != 1, parts


def test_sentinels_and_superblock_intact(run: KdumpRun) -> None:
    assert run.disk.check_sentinels() == []
    assert dc.superblock_problems(run.disk.path, run.sb_before) == []


def test_gdb_reads_banner_and_cpu0_registers(
    run: KdumpRun, art: sc.Artifacts, metrics: dict[str, object]
) -> None:
    _dumped(run)
    banner = sc.first_kernel_banner(run.result.console)
    symbols = dc.system_map(art.system_map)
    offset = int(dc.vmcoreinfo(run.elf).get("KERNELOFFSET", "0"), 16)
    view = dc.gdb_view(run.elf, symbols["linux_banner"] + offset, art.vmlinux)
    assert banner and view.banner.replace("\\n", "") == banner, view.output[-2000:]
    pswa = view.registers.get("pswa")
    assert pswa is not None, view.output[-2000:]
    metrics["gdb: CPU 0 pswa"] = f"{pswa:#x} ({dc.symbol_at(symbols, pswa - offset)})"
    assert symbols["_stext"] + offset <= pswa < symbols["_etext"] + offset
    assert view.registers.get("r15", 0) != 0
