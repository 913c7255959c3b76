"""Bad disks, bad cores, I/O errors and signals: refuse clearly, never write outside the dump area."""

from __future__ import annotations

import errno
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
from tests.support import vmcore, zgetdump
from writer_helpers import MIB, REPO, RecordingSystem

from zfcpdump_writer.layout import BUSY_MARKER


def refused(env, needle: str) -> None:  # noqa: ANN001
    """Run the writer on a disk it must refuse: exit 1, the message, not one byte changed."""
    before = env.sda.read_bytes()
    code, _ = env.run()
    assert code == 1, env.text
    failed = [ln for ln in env.output if "Dump failed" in ln]
    assert len(failed) == 1 and needle in failed[0], env.text
    assert env.sda.read_bytes() == before


def test_wrong_mbr_magic(env) -> None:  # noqa: ANN001
    env.disk.write(0, b"XIPL")
    refused(env, "no zIPL MBR")


def test_wrong_bp_type(env) -> None:  # noqa: ANN001
    env.disk.write(0x75, b"\x00")
    refused(env, "bp_type 0 is not dump")


def test_wrong_dev_type(env) -> None:  # noqa: ANN001
    env.disk.write(0x76, b"\x01")
    refused(env, "dev_type 1 is not SCSI")


def test_wrong_boot_info_magic(env) -> None:  # noqa: ANN001
    env.disk.write(0x70, b"ZIPL")
    refused(env, "no boot_info")


def test_wrong_superblock_magic(env) -> None:  # noqa: ANN001
    env.disk.set_superblock(magic=0x5A46435044554D51)
    refused(env, "bad dump superblock magic")


@pytest.mark.parametrize("offset", [0, (1 << 64) - 1, 1 << 62, 1 << 40])
def test_boot_info_pointing_off_the_disk(env, offset: int) -> None:  # noqa: ANN001
    """Found by the fuzzer on a real disk: a huge offset did not even fit pread (OverflowError,
    EINVAL), a traceback instead of a refusal."""
    env.disk.write(0x78, struct.pack(">Q", offset))
    refused(env, "is outside the disk")


def test_superblock_pointing_outside_partition(env) -> None:  # noqa: ANN001
    env.disk.set_superblock(dump_size=env.disk.part_size)
    refused(env, "overlaps the superblock")


def test_checksum_mismatch(env) -> None:  # noqa: ANN001
    env.disk.write(env.disk.part_start + 100, b"\x01")
    refused(env, "checksum mismatch")


@pytest.mark.parametrize("left", ["busy marker", "dump header"])
def test_a_dump_cut_off_before_its_superblock_write_is_taken_over(env, left: str) -> None:  # noqa: ANN001
    """A power loss right after the writer changed the first page (busy marker, or the header
    at the end) leaves a checksum only that page explains: the next dump must not be refused."""
    page = BUSY_MARKER if left == "busy marker" else env.core.path.read_bytes()[:4096]
    env.disk.write(env.disk.part_start, page)
    assert not env.disk.csum_matches()
    code, _ = env.run()
    assert code == 0, env.text
    assert "an earlier dump was cut off before its last superblock write" in env.text
    assert f"starts with a {left}" in env.text
    assert env.dump_bytes() == env.vmcore_bytes() and env.disk.csum_matches()
    assert env.disk.check_sentinels() == []


def test_partition_not_found(env) -> None:  # noqa: ANN001
    entry = 0x1BE + 16
    raw = bytearray(env.disk.read(entry, 16))
    raw[12:16] = struct.pack("<I", env.disk.part_size // 512 - 8)
    env.disk.write(entry, bytes(raw))
    refused(env, "no partition with start")


def test_vmcore_larger_than_dump_size(env_factory) -> None:  # noqa: ANN001
    env = env_factory(loads=[(0, 6 * MIB)], dump_size=4 * MIB)
    refused(env, "larger than the dump area")


def test_truncated_elf(env) -> None:  # noqa: ANN001
    vmcore.truncate(env.core, env.core.size - 100)
    refused(env, "truncated")


@pytest.mark.parametrize(
    "offset,data,needle",
    [
        (0, b"\x7fELG", "not ELF"),
        (4, b"\x01", "not big-endian ELF64"),
        (18, b"\x00\x3e", "not an s390x core"),
        (54, b"\x00\x38\x00\x00", "unsupported program headers"),
        (32, struct.pack(">Q", 1 << 40), "exceed the core"),
    ],
)
def test_corrupt_elf(env, offset, data, needle) -> None:  # noqa: ANN001
    with open(env.core.path, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)
    refused(env, needle)


def test_empty_source(env) -> None:  # noqa: ANN001
    env.core.path.write_bytes(b"")
    refused(env, "is empty")


class FailingSystem(RecordingSystem):
    """EIO on the Nth data write to the disk."""

    def __init__(self, root: str, out: object | None = None, fail_at: int = 5) -> None:
        super().__init__(root, out)
        self.fail_at, self.data_writes = fail_at, 0

    def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
        if len(buf) >= 4096:
            self.data_writes += 1
            if self.data_writes == self.fail_at:
                raise OSError(errno.EIO, "Input/output error")
        return super().pwrite(fd, buf, offset)


def assert_incomplete(env, zg_root=None) -> None:  # noqa: ANN001
    assert env.disk.read(env.disk.dump_start, len(BUSY_MARKER)) == BUSY_MARKER
    assert env.disk.csum_matches(), "the superblock must stay valid"
    assert env.disk.check_sentinels() == []
    if zg_root is not None:
        part = env.disk.partition_image(env.root.parent / "part.img")
        res = zgetdump.info(part, zg_root)
        assert res.returncode == 1
        assert b"No valid dump found" in res.stderr + res.stdout


@pytest.mark.parametrize("fail_at", [1, 3, 7])
def test_io_error_mid_copy(env, fail_at, zg_root) -> None:  # noqa: ANN001
    code, _ = env.run(FailingSystem, config="chunk_kib = 256\n", fail_at=fail_at)
    assert code == 1
    assert "Dump failed: I/O error: Input/output error" in env.text
    assert "Dump successful" not in env.text
    assert_incomplete(env, zg_root if fail_at == 3 else None)


def test_io_error_writing_header_remarks_busy(env) -> None:  # noqa: ANN001
    class HeaderFails(RecordingSystem):
        def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
            if offset == env.disk.dump_start and len(buf) == 4096:
                super().pwrite(fd, bytes(buf[:1000]), offset)  # a torn header
                raise OSError(errno.EIO, "Input/output error")
            return super().pwrite(fd, buf, offset)

    code, _ = env.run(HeaderFails)
    assert code == 1
    assert_incomplete(env)


def test_verify_detects_lost_writes(env) -> None:  # noqa: ANN001
    class LosesWrites(RecordingSystem):
        def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
            if offset >= env.disk.dump_start + 4096 and len(buf) > 4096:
                return len(buf)  # claims success, writes nothing
            return super().pwrite(fd, buf, offset)

    code, _ = env.run(LosesWrites, config="io = buffered\n")
    assert code == 1
    assert "Dump failed: verify: data read back" in env.text
    assert_incomplete(env)


def test_signal_in_process(env) -> None:  # noqa: ANN001
    class Signals(RecordingSystem):
        count = 0

        def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
            self.count += 1
            if self.count == 4:
                os.kill(os.getpid(), signal.SIGINT)
            return super().pwrite(fd, buf, offset)

    old = signal.getsignal(signal.SIGINT)
    code, _ = env.run(Signals, config="chunk_kib = 256\n")
    assert code == 1
    assert "Dump failed: interrupted by signal 2" in env.text
    assert signal.getsignal(signal.SIGINT) is old
    assert_incomplete(env)


SLOW_WRITER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from zfcpdump_writer.dump import Dump
from zfcpdump_writer.system import RootedSystem

class Slow(RootedSystem):
    n = 0
    def pwrite(self, fd, buf, offset):
        self.n += 1
        if self.n == 3:
            print("COPYING", flush=True)
        if self.n >= 3:
            time.sleep(0.05)
        return super().pwrite(fd, buf, offset)

sys.exit(Dump(Slow(sys.argv[2])).run())
"""


def test_sigterm_mid_copy_subprocess(env) -> None:  # noqa: ANN001
    (env.root / "etc/zfcpdump.conf").write_text("chunk_kib = 64\n")
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(REPO / "src"), str(env.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        if "COPYING" in line or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, out + err
    assert "Dump failed: interrupted by signal 15" in out
    assert_incomplete(env)
