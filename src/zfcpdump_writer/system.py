"""THE seam: every system path and every privileged call of the writer goes through here.

`System` is production: real paths, mount(2)/reboot(2) through the static interpreter's
built-in `_zfcpdump`, or through ctypes (imported only when used) on any other Python. `RootedSystem` maps every absolute path under a directory and records mount/reboot as
lines in ROOT/.zfcpdump-actions, so tests run the very same flow against files.
Tests may subclass either to observe or break I/O (pwrite, preadinto, ...).
"""

from __future__ import annotations

import errno
import os
import sys
import time

MS_FLAGS = 0
REBOOT_CMDS = {"poweroff": 0x4321FEDC, "halt": 0xCDEF0123, "restart": 0x01234567}
ACTIONS = ".zfcpdump-actions"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class NativeCalls(Protocol):
        """_zfcpdump, or LibcCalls: mount(2) and reboot(2), raising OSError."""

        def mount(self, source: str, target: str, fstype: str, flags: int = 0, /) -> None: ...

        def reboot(self, cmd: int, /) -> None: ...

    class Console(Protocol):
        """Where console lines go: sys.stdout, or a test's buffer."""

        def write(self, text: str, /) -> object: ...

        def flush(self) -> object: ...


class System:
    """Production system access (paths as given, real syscalls)."""

    rooted = False

    def __init__(self, out: Console | None = None) -> None:
        self.out: Console = out if out is not None else sys.stdout
        self._native: NativeCalls | None = None

    # --- paths -------------------------------------------------------------------------
    def path(self, p: str) -> str:
        return p

    def exists(self, p: str) -> bool:
        return os.path.exists(self.path(p))

    def listdir(self, p: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(p)))
        except OSError:
            return []

    def read_text(self, p: str, limit: int = 65536) -> str:
        fd = os.open(self.path(p), os.O_RDONLY)
        try:
            return os.read(fd, limit).decode("ascii", "replace")
        finally:
            os.close(fd)

    def read_text_or(self, p: str, default: str | None = None) -> str | None:
        try:
            return self.read_text(p)
        except OSError:
            return default

    def write_text(self, p: str, text: str) -> None:
        fd = os.open(self.path(p), os.O_WRONLY)
        try:
            os.write(fd, text.encode("ascii"))
        finally:
            os.close(fd)

    def makedirs(self, p: str) -> None:
        os.makedirs(self.path(p), exist_ok=True)

    # --- file descriptors -------------------------------------------------------------
    def open(self, p: str, flags: int) -> int:
        return os.open(self.path(p), flags | os.O_CLOEXEC)

    def close(self, fd: int) -> None:
        os.close(fd)

    def size(self, fd: int) -> int:
        """Size of a file or block device (fstat, else seek to the end)."""
        size = os.fstat(fd).st_size
        return size if size else os.lseek(fd, 0, os.SEEK_END)

    def pread(self, fd: int, length: int, offset: int) -> bytes:
        return os.pread(fd, length, offset)

    def preadinto(self, fd: int, buf: memoryview, offset: int) -> int:
        return os.preadv(fd, [buf], offset)

    def pwrite(self, fd: int, buf: bytes | memoryview, offset: int) -> int:
        return os.pwrite(fd, buf, offset)

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def fdatasync(self, fd: int) -> None:
        os.fdatasync(fd)

    def fadvise_dontneed(self, fd: int, offset: int, length: int) -> None:
        try:  # noqa: SIM105 - no contextlib in the writer (RAM)
            os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass

    # --- time and console -------------------------------------------------------------
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def console(self, line: str) -> None:
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    # --- privileged calls -------------------------------------------------------------
    def native(self) -> NativeCalls:
        if self._native is None:
            self._native = native_calls()
        return self._native

    def mount(self, source: str, target: str, fstype: str) -> None:
        """mount(2); an already mounted target (EBUSY) is fine."""
        try:
            self.native().mount(source, target, fstype, MS_FLAGS)
        except OSError as exc:
            err = exc.errno or errno.EIO
            if err != errno.EBUSY:
                raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}") from None

    def reboot(self, how: str) -> None:
        """reboot(2) with poweroff | halt | restart; returns only if it failed."""
        os.sync()
        try:
            self.native().reboot(REBOOT_CMDS[how])
        except OSError as exc:
            raise OSError(exc.errno, f"reboot({how}): {os.strerror(exc.errno or errno.EIO)}") from None


class LibcCalls:
    """mount(2) and reboot(2) through ctypes, for a Python without the built-in _zfcpdump:
    the same calls, raising OSError the same way."""

    def __init__(self, ctypes: Any) -> None:
        self.ctypes = ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)

    def mount(self, source: str, target: str, fstype: str, flags: int = 0) -> None:
        if self.libc.mount(source.encode(), target.encode(), fstype.encode(), flags, None) != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, os.strerror(err), target)

    def reboot(self, cmd: int) -> None:
        if self.libc.reboot(cmd) != 0:
            err = self.ctypes.get_errno()
            raise OSError(err, os.strerror(err))


def native_calls() -> NativeCalls:
    """The static interpreter's built-in _zfcpdump, else libc through ctypes. The ctypes import
    sits in the ImportError branch, so the static build's import closure leaves ctypes out."""
    try:
        import _zfcpdump  # type: ignore[import-not-found]
    except ImportError:
        import ctypes

        return LibcCalls(ctypes)
    calls: NativeCalls = _zfcpdump
    return calls


class RootedSystem(System):
    """Every absolute path lives under *root*; mount/reboot are recorded no-ops."""

    rooted = True

    def __init__(self, root: str, out: Console | None = None) -> None:
        super().__init__(out)
        self.root = os.path.abspath(root)

    def path(self, p: str) -> str:
        return os.path.join(self.root, p.lstrip("/")) if p.startswith("/") else p

    def record(self, action: str) -> None:
        with open(os.path.join(self.root, ACTIONS), "a") as handle:
            handle.write(action + "\n")

    def write_text(self, p: str, text: str) -> None:
        super().write_text(p, text)
        if p.startswith(("/sys/", "/proc/")):
            self.record(f"write {p} {text}")

    def mount(self, source: str, target: str, fstype: str) -> None:
        self.record(f"mount {fstype} {source} {target}")

    def reboot(self, how: str) -> None:
        self.record(f"reboot {how}")
