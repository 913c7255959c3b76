"""End-to-end runs of the real dump flow against a --root tree (synthetic vmcore + zipl disk)."""

from __future__ import annotations

import errno
import mmap
import os

import pytest
from tests.support.zipldisk import ckm
from writer_helpers import HSA, MIB, RecordingSystem

from zfcpdump_writer.layout import BUSY_MARKER


def data_writes(sysm: RecordingSystem, env) -> list[tuple[int, int]]:  # noqa: ANN001
    """(offset, length) of the pwrites to the dump disk, in order."""
    return [(off, n) for kind, path, off, n in sysm.events if kind == "pwrite" and path == "/dev/sda"]


def assert_good_dump(env) -> None:  # noqa: ANN001
    assert env.dump_bytes() == env.vmcore_bytes()
    assert env.disk.check_sentinels() == []
    assert env.disk.csum_matches()
    assert "Dump successful" in env.text


@pytest.mark.parametrize(
    "disk_kwargs",
    [
        {},
        {"logical": True},
        {"start_sector": 4097},
        {"block": 4096},
    ],
    ids=["primary", "logical", "unaligned-start", "4k-blocks"],
)
def test_dump_area_equals_vmcore(env_factory, disk_kwargs) -> None:  # noqa: ANN001
    env = env_factory(**disk_kwargs)
    code, _ = env.run()
    assert code == 0, env.text
    assert_good_dump(env)
    assert env.actions()[-1] == "write /sys/kernel/debug/zcore/reipl 1"


@pytest.mark.parametrize("io", ["direct", "buffered"])
def test_io_modes_and_small_chunks(env, io) -> None:  # noqa: ANN001
    code, _ = env.run(config=f"io = {io}\nchunk_kib = 64\n")
    assert code == 0, env.text
    assert_good_dump(env)
    assert f"{io} I/O" in env.text


def test_header_page_written_last(env) -> None:  # noqa: ANN001
    code, sysm = env.run(config="debug = 3\n")
    assert code == 0, env.text
    start, sb = env.disk.dump_start, env.disk.sb_offset
    writes = data_writes(sysm, env)
    header = [i for i, (off, _n) in enumerate(writes) if start <= off < start + 4096]
    body = [i for i, (off, _n) in enumerate(writes) if off >= start + 4096 and off != sb]
    # first header-page write is the busy marker, the last one the real header, after all data
    assert writes[header[0]] == (start, len(BUSY_MARKER))
    assert header[-1] > max(body)
    assert [off for off, _ in writes[header[-1] + 1 :]] == [sb]
    assert writes[header[-1]] == (start, 4096)


def test_hsa_released_between_hsa_regions_and_rest(env) -> None:  # noqa: ANN001
    code, sysm = env.run()
    assert code == 0, env.text
    start = env.disk.dump_start
    release = sysm.events.index(("write_text", "/sys/kernel/debug/zcore/hsa", 0, 0))
    before = [(o - start, n) for k, p, o, n in sysm.events[:release] if k == "pwrite" and o >= start + 4096]
    after = [
        (o - start, n)
        for k, p, o, n in sysm.events[release:]
        if k == "pwrite" and start + 4096 <= o < start + env.core.size
    ]
    hsa_file = {
        (ld.offset, ld.offset + min(ld.size, HSA - ld.paddr)) for ld in env.core.loads if ld.paddr < HSA
    }
    covered = sum(n for _, n in before if _ < env.core.size)
    assert covered == sum(e - s for s, e in hsa_file)
    assert all(any(s <= o < e for s, e in hsa_file) for o, _ in before if o < env.core.size)
    assert all(not any(s <= o < e for s, e in hsa_file) for o, _ in after)
    assert after, "the rest must be copied after the release"


def test_kdump_mode_copies_everything(env_factory) -> None:  # noqa: ANN001
    env = env_factory(hsa=None)
    code, sysm = env.run()
    assert code == 0, env.text
    assert_good_dump(env)
    assert "kdump mode" in env.text
    assert not any(e[1].endswith("zcore/hsa") for e in sysm.events)
    assert env.actions()[-1] == "reboot poweroff"  # no zcore/reipl: power off


def test_zcore_mem_source(env) -> None:  # noqa: ANN001
    mem = env.root / "sys/kernel/debug/zcore/mem"
    (env.root / "proc/vmcore").rename(mem)
    env.core.path = mem
    code, _ = env.run()
    assert code == 0, env.text
    assert_good_dump(env)
    assert "source /sys/kernel/debug/zcore/mem" in env.text


def test_opaque_zcore_mem_is_copied_header_last(env) -> None:  # noqa: ANN001
    mem = env.root / "sys/kernel/debug/zcore/mem"
    (env.root / "proc/vmcore").unlink()
    mem.write_bytes(bytes(range(256)) * 40000)
    env.core.path, env.core.size = mem, mem.stat().st_size
    code, sysm = env.run()
    assert code == 0, env.text
    assert_good_dump(env)
    assert data_writes(sysm, env)[-2] == (env.disk.dump_start, 4096)


def test_progress_lines(env_factory) -> None:  # noqa: ANN001
    class Clock(RecordingSystem):
        now = 0.0

        def monotonic(self) -> float:
            self.now += 1.0
            return self.now

    env = env_factory(loads=[(0, 12 * MIB)])
    code, _ = env.run(Clock, config="progress_interval = 10\nchunk_kib = 256\n")
    assert code == 0, env.text
    lines = [ln for ln in env.output if "MB/s, ETA" in ln]
    assert len(lines) >= 2
    assert "MB of 12 MB (" in lines[0] and "%" in lines[0]


def test_config_after_poweroff_and_debug(env) -> None:  # noqa: ANN001
    (env.root / "etc/zfcpdump.conf").write_text("after = poweroff\ndebug = 1\n")
    code, _ = env.run()
    assert code == 0
    assert env.actions()[-1] == "reboot poweroff"
    assert not any("dump disk" in ln for ln in env.output)  # level 2 suppressed
    assert "Dump successful" in env.text


def test_cmdline_dump_debug_wins(env) -> None:  # noqa: ANN001
    (env.root / "etc/zfcpdump.conf").write_text("debug = 1\n")
    (env.root / "proc/cmdline").write_text("root=/dev/ram0 dump_debug=3 possible_cpus=1\n")
    code, _ = env.run()
    assert code == 0
    assert "dump area marked busy" in env.text  # a level 3 message


def test_bad_config_falls_back_to_defaults(env) -> None:  # noqa: ANN001
    code, _ = env.run(config="after = explode\n")
    assert code == 0
    assert "warning: config" in env.text and "after must be one of" in env.text
    assert_good_dump(env)


def test_no_dump_source(env) -> None:  # noqa: ANN001
    (env.root / "proc/vmcore").unlink()
    before = env.sda.read_bytes()
    code, _ = env.run()
    assert code == 2
    assert "no dump source" in env.text
    assert env.sda.read_bytes() == before
    assert env.actions()[-1] == "reboot poweroff"


def test_disk_never_appears(env) -> None:  # noqa: ANN001
    class Clock(RecordingSystem):
        now = 0.0

        def monotonic(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    env.sda.unlink()
    code, _ = env.run(Clock, config="disk_timeout = 3\n")
    assert code == 1
    assert "Dump failed: dump disk did not appear within 3 s" in env.text


def test_zfcp_ipl_device_attach(env) -> None:  # noqa: ANN001
    r = env.root
    ipl = r / "sys/firmware/ipl"
    ipl.mkdir(parents=True)
    for name, value in (
        ("ipl_type", "fcp_dump"),
        ("device", "0.0.1700"),
        ("wwpn", "0x500507630300c562"),
        ("lun", "0x4010403200000000"),
    ):
        (ipl / name).write_text(value + "\n")
    zfcp = r / "sys/bus/ccw/drivers/zfcp/0.0.1700"
    (zfcp / "0x500507630300c562").mkdir(parents=True)
    for f in ("online", "port_add", "0x500507630300c562/unit_add"):
        (zfcp / f).write_text("")
    (r / "sys/module/zfcp/parameters").mkdir(parents=True)
    (r / "sys/module/zfcp/parameters/allow_lun_scan").write_text("1")
    for name, lun in (("sda", "0x4010403300000000"), ("sdb", "0x4010403200000000")):
        dev = r / f"sys/block/{name}/device"
        dev.mkdir(parents=True)
        (dev / "hba_id").write_text("0.0.1700\n")
        (dev / "wwpn").write_text("0x500507630300c562\n")
        (dev / "fcp_lun").write_text(lun + "\n")
    env.sda.rename(r / "dev/sdb")
    env.disk.path = r / "dev/sdb"
    env.sda.write_bytes(b"decoy" * 1000)
    code, _ = env.run()
    assert code == 0, env.text
    writes = [a for a in env.actions() if a.startswith("write ")]
    assert writes[:4] == [
        "write /sys/module/zfcp/parameters/allow_lun_scan 0",
        "write /sys/bus/ccw/drivers/zfcp/0.0.1700/online 1",
        "write /sys/bus/ccw/drivers/zfcp/0.0.1700/port_add 0x500507630300c562",
        "write /sys/bus/ccw/drivers/zfcp/0.0.1700/0x500507630300c562/unit_add 0x4010403200000000",
    ]
    assert env.sda.read_bytes() == b"decoy" * 1000
    assert "dump disk /dev/sdb" in env.text
    assert env.dump_bytes() == env.vmcore_bytes()


def test_sysfs_partition_fallback(env) -> None:  # noqa: ANN001
    """A dump partition the DOS table does not list is found through sysfs start/size."""
    d = env.disk
    d.write(0x1BE + 16, bytes(16))  # drop partition 2 from the DOS table
    part = env.root / "sys/block/sda/sda2"
    part.mkdir(parents=True)
    for name, value in (("partition", 2), ("start", d.part_start // 512), ("size", d.part_size // 512)):
        (part / name).write_text(f"{value}\n")
    code, _ = env.run()
    assert code == 0, env.text
    assert env.dump_bytes() == env.vmcore_bytes()


def test_csum_reference_after_dump(env) -> None:  # noqa: ANN001
    code, _ = env.run()
    assert code == 0
    sb = env.disk.superblock()
    assert sb["csum"] == ckm(env.vmcore_bytes()[:4096])


@pytest.mark.parametrize(
    ("available_kib", "chunk_kib"), [(None, 256), (10_300, 256), (65_536, 2048), (8 << 20, 4096)]
)
def test_auto_chunk_follows_memory_available(env_factory, available_kib, chunk_kib) -> None:  # noqa: ANN001
    env = env_factory(loads=[(0, 20 * MIB)])
    if available_kib is not None:
        (env.root / "proc/meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {available_kib} kB\n")
    (env.root / "etc/zfcpdump.conf").write_text("debug = 3\n")
    code, sysm = env.run()
    assert code == 0, env.text
    assert_good_dump(env)
    assert max(n for _, n in data_writes(sysm, env)) == chunk_kib * 1024
    assert f"copy buffers: 2 x {chunk_kib} KiB (chunk_kib = auto" in env.text


def test_fixed_chunk_ignores_memory_available(env_factory) -> None:  # noqa: ANN001
    env = env_factory(loads=[(0, 8 * MIB)])
    (env.root / "proc/meminfo").write_text("MemAvailable: 8388608 kB\n")
    code, sysm = env.run(config="chunk_kib = 128\n")
    assert code == 0, env.text
    assert max(n for _, n in data_writes(sysm, env)) == 128 * 1024


class DirectTracking(RecordingSystem):
    """Notes which pwrites go through a descriptor opened with O_DIRECT (the real kernel
    checks their alignment: these run on a real file)."""

    def __init__(self, root: str, out: object | None = None) -> None:
        super().__init__(root, out)
        self.direct_fds: set[int] = set()
        self.direct_writes: list[tuple[int, int]] = []

    def open(self, p: str, flags: int) -> int:
        fd = super().open(p, flags)
        if flags & os.O_DIRECT:
            self.direct_fds.add(fd)
        return fd

    def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
        if fd in self.direct_fds:  # page-aligned memory, whatever this file system forgives
            assert isinstance(buf, memoryview) and isinstance(buf.obj, mmap.mmap), type(buf)
        done = super().pwrite(fd, buf, offset)
        if fd in self.direct_fds:
            self.direct_writes.append((offset, done))
        return done


def test_the_header_page_is_written_with_o_direct(env) -> None:  # noqa: ANN001
    (env.root / "etc/zfcpdump.conf").write_text("debug = 3\nio = direct\n")
    code, sysm = env.run(DirectTracking)
    assert code == 0, env.text
    assert_good_dump(env)
    assert isinstance(sysm, DirectTracking) and sysm.direct_fds, "the disk was not opened with O_DIRECT"
    assert (env.disk.dump_start, 4096) in sysm.direct_writes  # the header page, last of the data
    assert "O_DIRECT refused" not in env.text


class DirectRefused(DirectTracking):
    """The device accepts O_DIRECT opens but refuses the writes (EINVAL), as some drivers do."""

    def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
        if fd in self.direct_fds:
            raise OSError(errno.EINVAL, "Invalid argument")
        return super().pwrite(fd, buf, offset)


@pytest.mark.parametrize(("debug", "said"), [(3, True), (2, False)])
def test_a_refused_o_direct_write_falls_back_visibly_at_debug_3(env, debug, said) -> None:  # noqa: ANN001
    (env.root / "etc/zfcpdump.conf").write_text(f"debug = {debug}\n")
    code, _ = env.run(DirectRefused)
    assert code == 0, env.text
    assert_good_dump(env)
    assert ("O_DIRECT refused" in env.text and "buffered I/O from here on" in env.text) == said, env.text
