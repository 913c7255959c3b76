"""The dump disk: a buffered fd for metadata (and fallbacks), an O_DIRECT fd for data.

`Disk` refuses any write outside the ranges it was allowed (the dump area and the superblock).
"""

from __future__ import annotations

import mmap
import os

from .errors import DumpError

WINDOW = 8 << 20  # buffered writes: page cache bounded to two windows

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .system import System

    Range = tuple[int, int]


def aligned_memory(buf: bytes | memoryview) -> memoryview:
    """*buf* in page-aligned memory, as O_DIRECT wants it. The copier's views start at their
    mmap buffers (never a slice past their start), so they are used as they are; anything
    else (the header page, a bytes object at a heap address) is copied into an anonymous map
    of its size first."""
    if isinstance(buf, memoryview) and isinstance(buf.obj, mmap.mmap):
        return buf
    staging = mmap.mmap(-1, len(buf), flags=mmap.MAP_PRIVATE)
    staging[:] = buf
    return memoryview(staging)


class Disk:
    """The dump disk: a buffered fd for metadata (and fallbacks), an O_DIRECT fd for data."""

    def __init__(
        self,
        sysm: System,
        path: str,
        io: str = "auto",
        align: int = 4096,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self.sysm, self.path, self.align = sysm, path, align
        self.note = note or (lambda _text: None)  # the fallback to buffered I/O is said here
        self.fd = sysm.open(path, os.O_RDWR)
        self.dfd = self._open_direct(path) if io in ("auto", "direct") else -1
        if io == "direct" and self.dfd < 0:
            raise DumpError(f"{path}: O_DIRECT not supported here (set io = buffered)")
        self.size = sysm.size(self.fd)
        self.allowed: list[Range] = []
        self._window = self._prev = (0, 0)
        self._since = 0

    def _open_direct(self, path: str) -> int:
        direct = getattr(os, "O_DIRECT", 0)
        if not direct:
            return -1
        try:
            return self.sysm.open(path, os.O_RDWR | direct)
        except OSError:
            return -1

    @property
    def mode(self) -> str:
        return "direct" if self.dfd >= 0 else "buffered"

    def read(self, offset: int, length: int) -> bytes:
        data = b""
        while len(data) < length:
            part = self.sysm.pread(self.fd, length - len(data), offset + len(data))
            if not part:
                break
            data += part
        return data

    def allow(self, start: int, end: int) -> None:
        self.allowed.append((start, end))

    def _check(self, offset: int, length: int) -> None:
        for start, end in self.allowed:
            if start <= offset and offset + length <= end:
                return
        raise DumpError(f"internal: refusing to write {length} bytes at {offset} outside the dump area")

    def write(self, buf: bytes | memoryview, offset: int) -> bool:
        """Write all of *buf* at *offset*; True when it went through O_DIRECT."""
        self._check(offset, len(buf))
        if self.dfd >= 0 and not (offset | len(buf)) % self.align:
            try:
                self._write_all(self.dfd, aligned_memory(buf), offset)
                return True
            except OSError as exc:
                if exc.errno != 22:  # EINVAL: alignment not accepted, use the page cache
                    raise
                self.note(
                    f"{self.path}: O_DIRECT refused {len(buf)} bytes at {offset} (EINVAL); "
                    "buffered I/O from here on"
                )
                self.sysm.close(self.dfd)
                self.dfd = -1
        self._write_all(self.fd, buf, offset)
        self._bound_cache(offset, len(buf))
        return False

    def _write_all(self, fd: int, buf: bytes | memoryview, offset: int) -> None:
        # A disk takes a whole write or fails it: a short count means the device is failing
        # (or lying), and writing the rest would leave a hole no check might see.
        done = self.sysm.pwrite(fd, buf, offset)
        if done != len(buf):
            raise OSError(5, f"short write: the disk took {done} of {len(buf)} bytes at offset {offset}")

    def _bound_cache(self, offset: int, length: int) -> None:
        """Buffered writes: every WINDOW bytes start writeback of the current window and
        drop the previous one (clean by now), so the page cache use stays bounded."""
        lo, hi = self._window
        self._window = (min(lo, offset) if hi else offset, max(hi, offset + length))
        self._since += length
        if self._since < WINDOW:
            return
        for start, end in (self._prev, self._window):
            if end > start:
                self.sysm.fadvise_dontneed(self.fd, start, end - start)
        self._prev, self._window, self._since = self._window, (0, 0), 0

    def read_uncached(self, buf: memoryview, offset: int) -> int:
        """Read back from the medium, bypassing the page cache."""
        if self.dfd >= 0 and not (offset | len(buf)) % self.align:
            return self.sysm.preadinto(self.dfd, buf, offset)
        self.sysm.fadvise_dontneed(self.fd, offset, len(buf))
        return self.sysm.preadinto(self.fd, buf, offset)

    def sync(self) -> None:
        self.sysm.fsync(self.fd)
        if self.dfd >= 0:
            self.sysm.fsync(self.dfd)

    def close(self) -> None:
        for fd in (self.fd, self.dfd):
            if fd >= 0:
                self.sysm.close(fd)
        self.fd = self.dfd = -1
