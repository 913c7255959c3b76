"""Bounded-memory copy engine: fixed mmap buffers, written through `disk.Disk`.

`Copier` moves source ranges to the disk, reports progress, and keeps CRCs of a sample of
chunks, which `verify()` compares with what the disk returns afterwards.
"""

from __future__ import annotations

import mmap

from .disk import WINDOW, Disk
from .errors import DumpError

try:
    from zlib import crc32
except ImportError:  # pragma: no cover - zlib is built into Debian's python3.11
    from binascii import crc32

MAX_SAMPLES = 256
MIN_SAMPLES = 16
MB = 1 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .system import System

    Range = tuple[int, int]


MEM_SAMPLE_INTERVAL = 0.25


def mem_available_kib(meminfo: str) -> int | None:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            fields = line.split()
            return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    return None


AUTO_CHUNK_KIB = (256, 4096)  # the smallest and largest chunk chunk_kib = auto picks
AUTO_CHUNK_SHARE = 32  # the two copy buffers take at most 1/16 of the memory available at start


def auto_chunk_kib(available_kib: int | None) -> int:
    """The chunk for `chunk_kib = auto`: a power of two near MemAvailable / 32, within bounds."""
    low, high = AUTO_CHUNK_KIB
    if available_kib is None:
        return low
    chunk = low
    while chunk * 2 <= min(high, available_kib // AUTO_CHUNK_SHARE):
        chunk *= 2
    return chunk


def rollup_kib(rollup: str, key: str) -> int | None:
    """One field of /proc/self/smaps_rollup, in kB."""
    for line in rollup.splitlines():
        name, _, rest = line.partition(":")
        if name == key and rest.split() and rest.split()[0].isdigit():
            return int(rest.split()[0])
    return None


class Progress:
    """A line about every *interval* seconds: MB done, %, MB/s, ETA."""

    def __init__(self, sysm: System, say: Callable[[str], None], total: int, interval: float) -> None:
        self.sysm, self.say, self.total, self.interval = sysm, say, max(total, 1), interval
        self.start = self.last = self.last_sample = sysm.monotonic()
        self.done = 0
        self.mem_low_kib: int | None = None
        self.own_peak_kib: int | None = None  # the writer's peak anonymous memory
        self.sample_memory()

    def add(self, n: int) -> None:
        self.done += n
        now = self.sysm.monotonic()
        if now - self.last_sample >= MEM_SAMPLE_INTERVAL:
            self.last_sample = now
            self.sample_memory()
        if now - self.last >= self.interval:
            self.last = now
            self.say(self.line(now))

    def sample_memory(self) -> None:
        """Track the lowest MemAvailable seen: the dump environment's real headroom."""
        available = mem_available_kib(self.sysm.read_text_or("/proc/meminfo", "") or "")
        if available is not None and (self.mem_low_kib is None or available < self.mem_low_kib):
            self.mem_low_kib = available
        # Anonymous: heap, stacks, copy buffers and copied-on-write data pages, what the writer
        # costs beyond the rd's files. (Private_Dirty would count /init's text too: rootfs
        # pages are always dirty, but they are the rd's own memory.)
        own = rollup_kib(self.sysm.read_text_or("/proc/self/smaps_rollup", "") or "", "Anonymous")
        if own is not None and (self.own_peak_kib is None or own > self.own_peak_kib):
            self.own_peak_kib = own

    def rate(self, now: float) -> float:
        return self.done / MB / max(now - self.start, 1e-6)

    def line(self, now: float) -> str:
        rate = self.rate(now)
        eta = (self.total - self.done) / MB / rate if rate > 0 else 0
        return (
            f"{self.done // MB} MB of {self.total // MB} MB "
            f"({100 * self.done // self.total}%), {rate:.1f} MB/s, ETA {eta:.0f} s"
        )


class AsyncWriter:
    """One writer thread fed through *n* buffer slots, so reading the source overlaps writing
    the disk. Jobs are written in submission order; an error is raised in the caller's thread
    at its next slot(), drain() or close()."""

    def __init__(self, disk: Disk, slots: int) -> None:
        import _thread

        self.disk, self.n, self.k = disk, slots, 0
        self.jobs: list[tuple[memoryview, int] | None] = [None] * slots
        self.empty = [_thread.allocate_lock() for _ in range(slots)]
        self.full = [_thread.allocate_lock() for _ in range(slots)]
        self.done = _thread.allocate_lock()
        for lock in (*self.full, self.done):
            lock.acquire()
        self.error: BaseException | None = None
        self.alive, self.quit = True, False
        _thread.start_new_thread(self._loop, ())

    def _loop(self) -> None:
        k = 0
        while True:
            i = k % self.n
            self.full[i].acquire()
            job = self.jobs[i]
            if self.quit or job is None:
                break
            if self.error is None:
                try:
                    self.disk.write(job[0], job[1])
                except BaseException as exc:  # noqa: BLE001 - handed to the main thread
                    self.error = exc
            self.jobs[i] = None
            self.empty[i].release()
            k += 1
        self.done.release()

    def _raise(self) -> None:
        if self.error is not None:  # stays failed: every later call raises too
            raise self.error

    def slot(self) -> int:
        """Wait for a free slot; its index."""
        i = self.k % self.n
        self.empty[i].acquire()
        if self.error is not None:
            self.empty[i].release()
            self._raise()
        return i

    def submit(self, i: int, view: memoryview, offset: int) -> None:
        self.jobs[i] = (view, offset)
        self.k += 1
        self.full[i].release()

    def drain(self) -> None:
        """Wait until every submitted write is done."""
        for lock in self.empty:
            lock.acquire()
        for lock in self.empty:
            lock.release()
        self._raise()

    def close(self, timeout: float = 60) -> bool:
        """Stop the thread (pending writes are dropped); False if it did not finish within
        *timeout* (a hung write). Safe whatever the caller was interrupted in."""
        if not self.alive:
            return True
        self.quit = True
        for lock in self.full:  # only this thread releases them: wake the writer wherever it waits
            if lock.locked():
                lock.release()
        self.alive = not self.done.acquire(timeout=timeout)
        return not self.alive


class Copier:
    """Copies source ranges to the disk at source offset + *base* through fixed buffers."""

    def __init__(
        self,
        sysm: System,
        src: int,
        disk: Disk,
        base: int,
        chunk: int,
        progress: Progress,
        verify: bool = True,
        overlap: bool = True,
    ) -> None:
        self.sysm, self.src, self.disk, self.base = sysm, src, disk, base
        self.chunk, self.progress = chunk, progress
        self.writer = self._start_writer() if overlap else None
        slots = self.writer.n if self.writer else 1
        # Private anonymous maps: their pages are the writer's own (smaps "Anonymous").
        self.bufs = [mmap.mmap(-1, chunk, flags=mmap.MAP_PRIVATE) for _ in range(slots)]
        self.views = [memoryview(b) for b in self.bufs]
        chunks = max(1, progress.total // chunk)
        wanted = min(MAX_SAMPLES, max(MIN_SAMPLES, chunks // 50)) if verify else 0
        self.stride = max(1, chunks // wanted) if wanted else 0
        self.samples: list[tuple[int, int, int]] = []
        self.count = 0
        self._src_mark = 0

    def _start_writer(self) -> AsyncWriter | None:
        try:
            return AsyncWriter(self.disk, 2)
        except (ImportError, RuntimeError, MemoryError):
            return None  # no threads here: plain synchronous writes

    @property
    def stuck(self) -> bool:
        """The writer thread could not be stopped: its fds must stay open."""
        return self.writer is not None and self.writer.alive

    def _piece(self, off: int, end: int) -> int:
        """Length of the next piece: aligned on the disk wherever possible."""
        n = min(self.chunk, end - off)
        mis = (self.base + off) % self.disk.align
        if mis:
            return min(n, self.disk.align - mis)
        if n > self.disk.align and n % self.disk.align:
            n -= n % self.disk.align
        return n

    def read_source(self, view: memoryview, off: int, n: int) -> memoryview:
        got = 0
        while got < n:
            step = self.sysm.preadinto(self.src, view[got:n], off + got)
            if step <= 0:
                raise DumpError(f"dump source ended early at offset {off + got:#x}")
            got += step
        return view[:n]

    def copy(self, ranges: list[Range]) -> None:
        """Copy *ranges* in order; all writes are complete when this returns."""
        for start, end in ranges:
            off = start
            while off < end:
                n = self._piece(off, end)
                self._copy_piece(off, n)
                self._drop_source(off + n)
                self.progress.add(n)
                off += n
        if self.writer:
            self.writer.drain()

    def _copy_piece(self, off: int, n: int) -> None:
        slot = self.writer.slot() if self.writer else 0
        data = self.read_source(self.views[slot], off, n)
        self._sample(data, self.base + off)
        if self.writer:
            self.writer.submit(slot, data, self.base + off)
        else:
            self.disk.write(data, self.base + off)

    def _sample(self, data: memoryview, offset: int) -> None:
        self.count += 1
        if self.stride and self.count % self.stride == 0 and len(self.samples) < MAX_SAMPLES:
            self.samples.append((offset, len(data), crc32(data)))

    def _drop_source(self, pos: int) -> None:
        if pos - self._src_mark >= WINDOW:
            self.sysm.fadvise_dontneed(self.src, self._src_mark, pos - self._src_mark)
            self._src_mark = pos

    def verify(self) -> tuple[int, int]:
        """Re-read the sampled chunks from the disk; (count, bytes). Raises on a mismatch."""
        if self.writer:
            self.writer.drain()
        self.disk.sync()
        total = 0
        for offset, length, crc in self.samples:
            view = self.views[0][:length]
            if self.disk.read_uncached(view, offset) != length or crc32(view) != crc:
                raise DumpError(
                    f"verify: data read back at disk offset {offset} differs from what was written"
                )
            total += length
        return len(self.samples), total

    def close(self) -> None:
        if self.writer and not self.writer.close():
            return  # a write hangs: keep the buffers mapped, the process ends soon
        for view, buf in zip(self.views, self.bufs, strict=True):
            view.release()
            try:  # noqa: SIM105 - no contextlib in the writer (RAM)
                buf.close()
            except BufferError:  # a slice still alive: the mapping goes with the process
                pass
