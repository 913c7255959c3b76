"""Publish a build's artifacts: the output directory is swapped in one step, with no gap.

The new directory is staged beside the target as `.NAME.new-PID`. An existing target (which
`ownership.check_output_dir` has shown to be ours) is swapped with it by one
`renameat2(RENAME_EXCHANGE)`, so at every instant the target path holds either the whole old
build or the whole new one. The old build then sits in the staging name and is deleted. A
filesystem without RENAME_EXCHANGE (some network filesystems) falls back to two renames,
with a warning. Leftovers of a killed publish (`.NAME.new-PID`, `.NAME.old-PID` whose PID is
gone) are removed by the next publish, and only when they hold nothing but our artifacts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from ..core.ownership import DERIVED_FILES, foreign_entries, publish_siblings
from ..core.store import pid_alive

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
NOT_SUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
# Published name -> (stage, file in its output). The manifest is written beside them.
ARTIFACTS = {
    "zfcpdump.image": ("kernel", "bzImage"),
    "System.map": ("kernel", "System.map"),
    "kernel.config": ("kernel", "config"),
    "zfcpdump.rd": ("initramfs", "zfcpdump.rd"),
}
ARTIFACT_NAMES = {*ARTIFACTS, "manifest.json", *DERIVED_FILES}
_LIBC = ctypes.CDLL(None, use_errno=True)


def _renameat2(old: Path, new: Path, flags: int) -> None:
    function = getattr(_LIBC, "renameat2", None)  # glibc 2.28 and later
    if function is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available", str(old))
    if function(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(old), None, str(new))


def staging_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.new-{os.getpid()}")


def _debris(target: Path) -> list[Path]:
    # Our own pid's too: left by a killed namesake.
    return [
        entry for entry, _kind, pid in publish_siblings(target) if pid == os.getpid() or not pid_alive(pid)
    ]


def clean_debris(target: Path) -> None:
    """Remove what a killed publish of *target* left, when it holds only our artifacts."""
    for leftover in _debris(target):
        if foreign_entries(leftover) == [] or _only_artifacts(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _only_artifacts(folder: Path) -> bool:
    # A staging dir killed before its manifest was written: artifact files only.
    return all(
        entry.name in ARTIFACT_NAMES and entry.is_file() and not entry.is_symlink()
        for entry in folder.iterdir()
    )


def swap_in(staging: Path, target: Path, warn: Callable[[str], None]) -> None:
    """Make *staging* the *target* directory in one step; delete the old one after, if it
    still holds nothing but our artifacts (a file dropped in during the build is kept)."""
    if not os.path.lexists(target):
        try:
            _renameat2(staging, target, RENAME_NOREPLACE)
        except OSError as exc:
            if exc.errno not in NOT_SUPPORTED:
                raise
            os.rename(staging, target)
        return
    try:
        _renameat2(staging, target, RENAME_EXCHANGE)
        old = staging
    except OSError as exc:
        if exc.errno not in NOT_SUPPORTED:
            raise
        warn(f"{target.parent} does not support an atomic directory exchange: publishing with two renames")
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except OSError:
            os.rename(old, target)  # put the old build back: never leave the target missing
            raise
    if foreign_entries(old) == []:
        shutil.rmtree(old, ignore_errors=True)
        return
    kept = target.with_name(f".{target.name}.kept-{os.getpid()}")
    os.rename(old, kept)
    warn(
        f"{target} held files no build put there while this build ran; the previous output, "
        f"with them, is kept in {kept}"
    )
