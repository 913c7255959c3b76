"""Faults injected below the writer by strace's own fault injection (`-e inject=`), not by a
fake: the writer runs as a child through its production entry point, on a real disk image,
and the kernel's answers to its system calls on that image are what fail. `-P IMAGE` keeps
the injection (and the `when=` count) to the calls on the dump disk itself."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from writer_helpers import Env

from zfcpdump_writer.layout import BUSY_MARKER

REPO = Path(__file__).resolve().parents[2]
CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); from zfcpdump_writer.main import main; "
    "sys.exit(main(sys.argv[2:]))"
)
CONFIG = "after = poweroff\ndebug = 3\nchunk_kib = 256\n"
# strace counts `when=` per thread: the copier's writer thread makes about 22 body writes in
# a 5 MB dump, so its 12th is past the middle; the main thread's 1st and 2nd are the busy
# marker and the superblock.
MID_DUMP = 12


def writer(env: Env, inject: str | None) -> subprocess.CompletedProcess[str]:
    (env.root / "etc/zfcpdump.conf").write_text(CONFIG)
    command = [sys.executable, "-I", "-S", "-B", "-c", CHILD, str(REPO / "src"), "--root", str(env.root)]
    if inject is not None:
        strace = shutil.which("strace")
        if strace is None:
            pytest.fail("strace is missing: ./setup.sh test installs it")
        disk = str(env.sda.resolve())
        command = [strace, "-f", "-qq", "-o", "/dev/null", "-P", disk, "-e", f"inject={inject}", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def assert_failed_cleanly(env: Env, run: subprocess.CompletedProcess[str], says: str) -> None:
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert "Traceback" not in out, out
    assert says in out, out
    assert "Dump successful" not in out, out
    assert env.disk.check_sentinels() == [], "a write landed outside the dump area"
    assert env.disk.csum_matches(), "the superblock is no longer valid: the disk is not reusable"
    assert env.dump_bytes()[:4096] != env.vmcore_bytes()[:4096], "a failed dump has a valid header"


def assert_dumped(env: Env, run: subprocess.CompletedProcess[str]) -> None:
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert "Dump successful" in out, out
    assert env.dump_bytes() == env.vmcore_bytes()
    assert env.disk.check_sentinels() == [] and env.disk.csum_matches()


@pytest.mark.parametrize(
    ("inject", "says"),
    [
        (f"pwrite64:error=EIO:when={MID_DUMP}", "Input/output error"),
        ("pwrite64:error=EIO:when=2", "Input/output error"),  # the superblock, after the busy marker
        (f"pwrite64:error=ENOSPC:when={MID_DUMP}", "No space left on device"),
        (f"pwrite64:retval=512:when={MID_DUMP}", "short write"),
        ("fsync:error=EIO:when=1", "Input/output error"),  # marking the dump busy
        ("fsync:error=EIO:when=3", "Input/output error"),  # after the copy, before the verify
        ("preadv2:error=EIO:when=1", "Input/output error"),  # the verify re-read (os.preadv)
    ],
    ids=[
        "pwrite-EIO",
        "superblock-EIO",
        "pwrite-ENOSPC",
        "pwrite-short",
        "fsync-EIO",
        "fsync-after-copy-EIO",
        "preadv2-EIO",
    ],
)
def test_an_injected_fault_fails_the_dump_and_the_disk_stays_reusable(
    env: Env, inject: str, says: str
) -> None:
    assert_failed_cleanly(env, writer(env, inject), says)
    # The same disk, without the fault: the dump succeeds, so the failure harmed nothing.
    assert_dumped(env, writer(env, None))


def test_an_interrupted_write_is_retried(env: Env) -> None:
    """EINTR without a signal to act on: CPython retries the call (PEP 475), the dump completes."""
    assert_dumped(env, writer(env, f"pwrite64:error=EINTR:when={MID_DUMP}"))


def test_a_disk_that_cannot_be_opened_is_left_alone(env: Env) -> None:
    before = env.sda.read_bytes()
    run = writer(env, "openat:error=EACCES:when=1")
    out = run.stdout + run.stderr
    assert run.returncode != 0 and "Traceback" not in out, out
    assert "Permission denied" in out, out
    assert env.sda.read_bytes() == before  # not one byte written, not even the busy marker
    assert BUSY_MARKER not in env.dump_bytes()[: len(BUSY_MARKER)]
    assert_dumped(env, writer(env, None))
