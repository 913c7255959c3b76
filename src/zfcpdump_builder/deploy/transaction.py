"""The install transaction: every name of the pair lands, or none does.

zipl silently drops a missing ramdisk, so an install is both-or-neither. A build with a
built-in initramfs installs the image alone and removes any ramdisk (zipl would load a stale
one, and the kernel would unpack it over the built-in one). The steps (`step_names`) are:

1. `write/NAME` for every name: a temp file (or symlink) in the final directory, fsynced,
   mode 0644. Temp files always live in the final directory, so every rename stays on one
   filesystem, whatever DESTDIR is.
2. `journal`: hard-link the current files to `.NAME.install-prev` backups and write the
   journal `.zfcpdump-install.journal` (then fsync the directory).
3. `rename/NAME` for every name: the temp file replaces the final name (`remove/NAME`: the
   stale ramdisk is unlinked; its backup is in the journal).
4. `sync`: fsync the directory.
5. `commit`: remove the journal (the commit point), then the backups.

A failure at any step rolls back to the previous pair at once. A crash (power loss, SIGKILL)
during step 3 leaves the journal behind: the next `install` rolls back before it starts, and
`dumpdisk prepare` refuses to run until then. Fault injection: pass `fault(number, name)` to
`Transaction.run`, or set ZFCPDUMP_INSTALL_FAULT=N|STEP (1-based number or step name) and
optionally ZFCPDUMP_INSTALL_FAULT_MODE=crash (exit at once, without any cleanup).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import HOST_ERRNO_HINTS, InstallError
from . import zipl
from .zipl import BASE_IMAGE, BASE_RD

TMP_TAG = ".install-tmp."


BACKUP_TAG = ".install-prev"


JOURNAL_NAME = "zfcpdump-install.journal"


JOURNAL = f".{JOURNAL_NAME}"


FAULT_ENV = "ZFCPDUMP_INSTALL_FAULT"


FAULT_MODE_ENV = "ZFCPDUMP_INSTALL_FAULT_MODE"


FAULT_EXIT = 86


FILE_MODE = 0o644
LINK_MODES = ("symlink", "copy")  # how zipl's names refer to the pair


Fault = Callable[[int, str], None]


class InjectedFault(Exception):
    """Raised by the fault-injection hook (tests, ZFCPDUMP_INSTALL_FAULT)."""


@dataclass(frozen=True)
class InstallEntry:
    """One name in the zfcpdump directory: a copy of *source*, a symlink to *link*, or (with
    *remove*) a stale ramdisk that must go, because zipl would load it."""

    name: str
    source: Path | None = None
    link: str | None = None
    remove: bool = False

    def describe(self) -> str:
        if self.remove:
            return "removed if present (zipl would load it over the built-in initramfs)"
        return f"-> {self.link}" if self.link else f"copy of {self.source}"


@dataclass(frozen=True)
class InstallPlan:
    folder: Path  # the directory on this host (DESTDIR + the target's directory)
    target: zipl.Target  # layout and directory as the target's zipl sees them
    link: str
    entries: tuple[InstallEntry, ...]


def make_plan(image: Path, rd: Path | None, folder: Path, target: zipl.Target, link: str) -> InstallPlan:
    """The base pair first, then the names zipl reads (when they differ). Without *rd* (a
    built-in initramfs) the image comes alone and every ramdisk name is removed."""
    layout = target.layout
    pairs = [(BASE_IMAGE, layout.image, image), (BASE_RD, layout.rd, rd)]
    entries = [InstallEntry(base, source=source) for base, _, source in pairs if source is not None]
    if layout.image != BASE_IMAGE:
        for base, alias, source in pairs:
            if source is not None:
                entries.append(
                    InstallEntry(alias, link=base)
                    if link == "symlink"
                    else InstallEntry(alias, source=source)
                )
    if rd is None:
        entries += [InstallEntry(name, remove=True) for name in dict.fromkeys((BASE_RD, layout.rd))]
    return InstallPlan(folder, target, link, tuple(entries))


def step_names(plan: InstallPlan) -> list[str]:
    """The ordered steps of an install of *plan* (numbered from 1 for fault injection)."""
    return (
        [f"write/{e.name}" for e in plan.entries if not e.remove]
        + ["journal"]
        + [f"{'remove' if e.remove else 'rename'}/{e.name}" for e in plan.entries]
        + ["sync", "commit"]
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EINVAL):
            raise
    finally:
        os.close(fd)


def _copy_synced(src: Path, dst: Path, mode: int = FILE_MODE) -> None:
    """Copy *src* to the new file *dst* with *mode*, and fsync it."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        with open(src, "rb") as inp, os.fdopen(fd, "wb", closefd=False) as out:
            shutil.copyfileobj(inp, out, 1 << 20)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)


def _backup(path: Path, backup: Path) -> None:
    """A hard link of *path* (never following a symlink); a copy where links are refused."""
    try:
        os.link(path, backup, follow_symlinks=False)
        return
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EOPNOTSUPP, errno.EMLINK):
            raise
    if path.is_symlink():
        os.symlink(os.readlink(path), backup)
    else:
        _copy_synced(path, backup, path.stat().st_mode & 0o7777)


def _sweep(folder: Path) -> None:
    """Remove temp files and backups of any earlier install (ours: known names only)."""
    for name in (*zipl.KNOWN_NAMES, JOURNAL_NAME):
        for leftover in folder.glob(f".{name}{TMP_TAG}*"):
            leftover.unlink(missing_ok=True)
        (folder / f".{name}{BACKUP_TAG}").unlink(missing_ok=True)


def _restore(folder: Path, name: str, existed: bool) -> None:
    final, backup = folder / name, folder / f".{name}{BACKUP_TAG}"
    if existed:
        if os.path.lexists(backup):
            os.replace(backup, final)
    elif os.path.lexists(final):
        final.unlink()


def _read_journal(path: Path) -> dict[str, bool]:
    try:
        names = json.loads(path.read_text())["names"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InstallError(
            f"the install journal {path} is corrupt ({exc})",
            hint="compare the files with their .install-prev backups by hand",
        ) from None
    known = set(zipl.KNOWN_NAMES)
    if not isinstance(names, dict) or not set(map(str, names)) <= known:
        # rollback unlinks these names: never anything but the pair's own names
        raise InstallError(
            f"the install journal {path} names files that are not the pair's: refusing to roll back",
            hint="compare the files with their .install-prev backups by hand",
        )
    return {str(k): bool(v) for k, v in names.items()}


def pending(folder: Path) -> bool:
    """True when an interrupted install left its journal in *folder*."""
    return (folder / JOURNAL).exists()


def recover(folder: Path) -> bool:
    """Roll back an interrupted install in *folder* (idempotent); True when one was found."""
    journal = folder / JOURNAL
    found = journal.exists()
    if found:
        for name, existed in _read_journal(journal).items():
            _restore(folder, name, existed)
        _fsync_dir(folder)
        journal.unlink()
    _sweep(folder)
    _fsync_dir(folder)
    return found


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InstallError(f"another install into {folder} is running") from None
    try:
        yield
    finally:
        os.close(fd)


class Transaction:
    """One install of *plan*: the steps of the module docstring, rolled back on any failure."""

    def __init__(self, plan: InstallPlan) -> None:
        self.plan = plan
        self.pid = os.getpid()

    def final(self, name: str) -> Path:
        return self.plan.folder / name

    def tmp(self, name: str) -> Path:
        return self.plan.folder / f".{name}{TMP_TAG}{self.pid}"

    def actions(self) -> list[Callable[[], None]]:
        entries = self.plan.entries
        return (
            [lambda e=e: self._write(e) for e in entries if not e.remove]
            + [self._journal]
            + [lambda e=e: self._land(e) for e in entries]
            + [lambda: _fsync_dir(self.plan.folder), self._commit]
        )

    def _land(self, entry: InstallEntry) -> None:
        if entry.remove:
            self.final(entry.name).unlink(missing_ok=True)  # the journal holds its backup
        else:
            os.replace(self.tmp(entry.name), self.final(entry.name))

    def _write(self, entry: InstallEntry) -> None:
        if entry.link is not None:
            os.symlink(entry.link, self.tmp(entry.name))
        else:
            _copy_synced(entry.source, self.tmp(entry.name))  # type: ignore[arg-type]

    def _journal(self) -> None:
        existed = {e.name: os.path.lexists(self.final(e.name)) for e in self.plan.entries}
        for name, there in existed.items():
            if there:
                _backup(self.final(name), self.plan.folder / f".{name}{BACKUP_TAG}")
        tmp = self.tmp(JOURNAL_NAME)
        tmp.write_text(json.dumps({"pid": self.pid, "names": existed}, indent=1) + "\n")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.plan.folder / JOURNAL)
        _fsync_dir(self.plan.folder)

    def _commit(self) -> None:
        """Remove the journal: from here on the new pair stands, so cleanup is best effort."""
        (self.plan.folder / JOURNAL).unlink()
        try:
            _fsync_dir(self.plan.folder)
            _sweep(self.plan.folder)
        except OSError:
            pass  # leftover backups are swept by the next install

    def run(self, fault: Fault | None = None) -> None:
        """Run every step; on failure roll back and raise InstallError (or re-raise)."""
        for number, (name, action) in enumerate(
            zip(step_names(self.plan), self.actions(), strict=True), start=1
        ):
            try:
                if fault is not None:
                    fault(number, name)
                action()
            except BaseException as exc:
                self._fail(exc, number, name)
                raise

    def _fail(self, exc: BaseException, number: int, name: str) -> None:
        folder = self.plan.folder
        try:
            recover(folder)
        except (OSError, InstallError) as again:
            raise InstallError(
                f"install into {folder} failed at step {number} ({name}): {_why(exc)}, "
                f"and the rollback failed too: {_why(again)}",
                hint=f"the journal {folder / JOURNAL} is kept: rerun the install to finish the rollback",
            ) from exc
        if isinstance(exc, OSError | InjectedFault):
            raise InstallError(
                f"install into {folder} failed at step {number} ({name}): {_why(exc)}; "
                "the previous files are unchanged",
                hint=host_hint(exc, folder),
            ) from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    if isinstance(exc, InstallError):
        return exc.message
    return str(exc) or type(exc).__name__


def host_hint(exc: BaseException, folder: Path) -> str | None:
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{folder} is not writable: run as root, or stage the files with --destdir"
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"free some space on the filesystem holding {folder}"
    return HOST_ERRNO_HINTS.get(exc.errno or 0) if isinstance(exc, OSError) else None


def env_fault() -> Fault | None:
    """The fault hook described by ZFCPDUMP_INSTALL_FAULT(_MODE), if set."""
    where = os.environ.get(FAULT_ENV, "").strip()
    if not where:
        return None
    crash = os.environ.get(FAULT_MODE_ENV, "raise").strip() == "crash"

    def fault(number: int, name: str) -> None:
        if where in (str(number), name):
            if crash:
                os._exit(FAULT_EXIT)
            raise InjectedFault(f"fault injected at step {number} ({name})")

    return fault
