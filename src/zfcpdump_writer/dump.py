"""The dump flow (s390-tools zfcpdump v3 duties, plus kdump mode, zcore/mem and verify).

Every system access goes through the `System` seam, so production and tests run this code.
"""

from __future__ import annotations

import os

from . import config as configmod
from . import ipldisk
from .copier import Copier, Progress, auto_chunk_kib
from .copyplan import HEADER_PAGE, Source, hsa_ranges, make_plan
from .disk import Disk
from .elfcore import parse_header, segments
from .errors import DumpError, Interrupted, NoDumpSource
from .layout import BUSY_MARKER, SB_SIZE, Layout, checksum, read_layout

VMCORE = "/proc/vmcore"
ZCORE = "/sys/kernel/debug/zcore"
ZCORE_MEM = ZCORE + "/mem"
ZCORE_HSA = ZCORE + "/hsa"
ZCORE_REIPL = ZCORE + "/reipl"
MOUNTS = (
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("debugfs", "/sys/kernel/debug", "debugfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
)
SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGALRM")
EXIT_OK, EXIT_FAILED, EXIT_NO_SOURCE = 0, 1, 2
MB = 1 << 20

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .system import System


class Dump:
    def __init__(self, sysm: System, config_path: str | None = None) -> None:
        self.sysm = sysm
        self.config_path = config_path
        self.cfg: dict[str, int | str] = dict(configmod.DEFAULTS)
        self.level = 2
        self.disk: Disk | None = None
        self.src: Source | None = None
        self.layout: Layout | None = None
        self.header_started = False
        self.stopping = False
        self._old_signals: list[tuple[int, object]] = []

    # --- console ------------------------------------------------------------------------
    def say(self, text: str, level: int = 2) -> None:
        if level <= self.level:
            self.sysm.console("zfcpdump: " + text)

    # --- entry --------------------------------------------------------------------------
    def run(self) -> int:
        """The whole flow; returns the exit code after the final action."""
        self._install_signals()
        try:
            code = self._guarded()
        finally:
            self.stopping = True
            self._close()
        try:
            return self._finish(code)
        finally:
            self._restore_signals()

    def _guarded(self) -> int:
        try:
            self.prepare()
            self.dump()
        except NoDumpSource as exc:
            self.stopping = True
            self.sysm.console(f"zfcpdump: no dump source: {exc}; nothing written")
            self.cfg["after"] = "poweroff"
            return EXIT_NO_SOURCE
        except Exception as exc:  # noqa: BLE001 - report every failure on one line
            self.stopping = True
            self._fail(exc)
            return EXIT_FAILED
        self.stopping = True
        self.sysm.console("zfcpdump: Dump successful")
        return EXIT_OK

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, DumpError):
            why = str(exc)
        elif isinstance(exc, OSError):
            why = f"I/O error: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else "")
        else:
            why = f"internal error: {type(exc).__name__}: {exc}"
        self.sysm.console(f"zfcpdump: Dump failed: {why}")
        if self.header_started:
            self._invalidate()

    # --- preparation --------------------------------------------------------------------
    def prepare(self) -> None:
        self.mount_filesystems()
        self.load_config()
        self.say(f"zfcpdump writer starting, kernel {self.kernel_version()}", 1)
        self.src = self.open_source()
        self.disk = self.open_disk(self.wait_for_disk())
        self.layout = self.check_disk()

    def mount_filesystems(self) -> None:
        for source, target, fstype in MOUNTS:
            if self._mounted(target):
                continue
            try:
                self.sysm.makedirs(target)
                self.sysm.mount(source, target, fstype)
            except OSError as exc:
                self.say(f"warning: cannot mount {fstype} on {target}: {exc.strerror or exc}", 1)

    def _mounted(self, target: str) -> bool:
        mounts = self.sysm.read_text_or("/proc/mounts", "") or ""
        return any(len(f) > 1 and f[1] == target for f in (ln.split() for ln in mounts.splitlines()))

    def kernel_version(self) -> str:
        text = self.sysm.read_text_or("/proc/version")
        if text:
            return text.split("\n")[0].strip()
        return os.uname().release

    def load_config(self) -> None:
        path = self.config_path
        try:
            if path is None:
                text = self.sysm.read_text_or(configmod.PATH, "") or ""
            else:
                with open(path) as handle:
                    text = handle.read()
            self.cfg = configmod.parse(text)
        except (OSError, UnicodeDecodeError, DumpError) as exc:
            self.sysm.console(f"zfcpdump: warning: config {path or configmod.PATH}: {exc}; using defaults")
        self.level = int(self.cfg["debug"])
        self.level = self._cmdline_level(self.level)

    def _cmdline_level(self, level: int) -> int:
        for word in (self.sysm.read_text_or("/proc/cmdline", "") or "").split():
            if word.startswith("dump_debug="):
                value = word[len("dump_debug=") :]
                if value.isdigit() and 1 <= int(value) <= 6:
                    return int(value)
                self.say(f"warning: ignoring bad {word}", 1)
        return level

    # --- dump source --------------------------------------------------------------------
    def source_path(self) -> str:
        wanted = str(self.cfg["source"])
        candidates = {"auto": (VMCORE, ZCORE_MEM), "/proc/vmcore": (VMCORE,), "zcore/mem": (ZCORE_MEM,)}[
            wanted
        ]
        for path in candidates:
            if self.sysm.exists(path):
                return path
        raise NoDumpSource(f"none of {', '.join(candidates)} exists")

    def open_source(self) -> Source:
        path = self.source_path()
        fd = self.sysm.open(path, os.O_RDONLY)
        size = self.sysm.size(fd)
        if size <= 0:
            self.sysm.close(fd)
            raise DumpError(f"dump source {path} is empty")
        src = Source(path, fd, size, self.sysm.pread(fd, min(HEADER_PAGE, size), 0))
        self._plan(src)
        return src

    def hsa_size(self) -> int:
        """HSA size from zcore/hsa (hex text); 0 when there is none (kdump mode)."""
        text = self.sysm.read_text_or(ZCORE_HSA)
        if text is None:
            return 0
        try:
            return int(text.strip() or "0", 16)
        except ValueError:
            raise DumpError(f"{ZCORE_HSA}: not a hex size: {text.strip()[:30]!r}") from None

    def _plan(self, src: Source) -> None:
        hsa = self.hsa_size()

        def read(offset: int, length: int) -> bytes:
            return self.sysm.pread(src.fd, length, offset)

        first: list[tuple[int, int]] = []
        if src.elf:
            first = hsa_ranges(segments(read, src.size, src.head), hsa)
        elif src.path == VMCORE:
            parse_header(src.head, src.size)  # raises the precise ELF error
        src.plan = make_plan(src.size, first)
        mode = f"HSA {hsa // MB} MB" if hsa else "no HSA (kdump mode)"
        self.say(f"source {src.path}: {src.size // MB} MB, {mode}, {len(src.plan.hsa)} HSA range(s) first", 2)

    # --- dump disk ----------------------------------------------------------------------
    def wait_for_disk(self) -> str:
        return ipldisk.wait_for_disk(
            self.sysm, self.say, str(self.cfg["device"]), float(self.cfg["disk_timeout"])
        )

    def open_disk(self, dev: str) -> Disk:
        align = max(4096, ipldisk.logical_block_size(self.sysm, dev))
        disk = Disk(self.sysm, dev, str(self.cfg["io"]), align, note=lambda text: self.say(text, 3))
        self.say(f"{dev}: {disk.size // MB} MB, {disk.mode} I/O", 2)
        return disk

    def check_disk(self) -> Layout:
        disk = self.disk
        assert disk is not None and self.src is not None
        layout = read_layout(
            disk.read,
            disk.size,
            ipldisk.logical_block_size(self.sysm, disk.path),
            lambda: ipldisk.sysfs_partitions(self.sysm, disk.path),
        )
        sb = layout.sb
        if layout.cut_off:
            self.say(layout.cut_off, 1)
        self.say(
            f"dump partition {layout.partition.number}: {sb.part_size // MB} MB, "
            f"dump area {sb.dump_size // MB} MB",
            2,
        )
        if self.src.size > sb.dump_size:
            raise DumpError(
                f"dump ({self.src.size} bytes) is larger than the dump area ({sb.dump_size} bytes)"
            )
        return layout

    # --- writing ------------------------------------------------------------------------
    def write_superblock(self) -> None:
        """Recompute the checksum, rewrite the superblock, fsync."""
        disk, lay = self.disk, self.layout
        assert disk is not None and lay is not None  # prepare() set both before any write
        sb = lay.sb
        sb.csum = checksum(disk.read(sb.csum_start, sb.csum_size))
        disk.write(sb.pack(), lay.sb_offset)
        disk.sync()

    def mark_busy(self) -> None:
        disk, lay = self.disk, self.layout
        assert disk is not None and lay is not None  # prepare() set both
        sb = lay.sb
        disk.allow(sb.dump_start, sb.dump_start + sb.dump_size)
        disk.allow(lay.sb_offset, lay.sb_offset + SB_SIZE)
        before = disk.read(sb.dump_start, len(BUSY_MARKER))
        disk.write(BUSY_MARKER, sb.dump_start)
        try:
            self.write_superblock()
        except (OSError, Interrupted):
            # Put back what the old checksum covers, then rewrite the superblock: old or new,
            # it matches the area, so the next dump is not refused as a changed disk.
            self.stopping = True  # a second signal must not cut the put-back short
            self._rewrite_start(before, "restore the dump area after the failure")
            raise
        self.say("dump area marked busy", 3)

    def dump(self) -> None:
        src, disk, lay = self.src, self.disk, self.layout
        assert src is not None and disk is not None and lay is not None  # prepare() set them
        self.mark_busy()
        progress = Progress(self.sysm, self.say, src.size, float(self.cfg["progress_interval"]))
        chunk = self.chunk_bytes(progress.mem_low_kib)
        copier = Copier(
            self.sysm,
            src.fd,
            disk,
            lay.sb.dump_start,
            chunk,
            progress,
            self.cfg["verify"] == "sample",
        )
        try:
            self._copy_body(copier)
            self._write_header()
        finally:
            self.stopping = True  # no signal may interrupt stopping the writer thread
            copier.close()
            if copier.stuck:  # a hung write still owns the disk fds: never close them
                self.disk = None
        self.say(
            f"{src.size // MB} MB in {self.sysm.monotonic() - progress.start:.1f} s "
            f"({progress.rate(self.sysm.monotonic()):.1f} MB/s)",
            1,
        )
        progress.sample_memory()
        if progress.mem_low_kib is not None:
            self.say(f"MemAvailable: {progress.mem_low_kib} kB (the lowest seen while copying)", 1)
        if progress.own_peak_kib is not None:
            self.say(f"writer private memory: {progress.own_peak_kib} kB (peak anonymous)", 2)

    def chunk_bytes(self, available_kib: int | None) -> int:
        setting = self.cfg["chunk_kib"]
        if setting != "auto":
            return int(setting) * 1024
        kib = auto_chunk_kib(available_kib)
        self.say(f"copy buffers: 2 x {kib} KiB (chunk_kib = auto, MemAvailable {available_kib} kB)", 3)
        return kib * 1024

    def _copy_body(self, copier: Copier) -> None:
        assert self.src is not None  # prepare() set it
        plan = self.src.plan
        copier.copy(plan.hsa)
        if plan.hsa:
            self.release_hsa()
        copier.copy(plan.rest)
        count, nbytes = copier.verify()
        if count:
            self.say(f"verify: {count} sampled chunk(s), {nbytes // 1024} KiB read back: ok", 2)

    def release_hsa(self) -> None:
        try:
            self.sysm.write_text(ZCORE_HSA, "0")
            self.say("HSA released", 2)
        except OSError as exc:
            self.say(f"warning: cannot release the HSA: {exc.strerror or exc}", 1)

    def _write_header(self) -> None:
        src, disk, lay = self.src, self.disk, self.layout
        assert src is not None and disk is not None and lay is not None  # prepare() set them
        head, start = src.head, lay.sb.dump_start
        self.header_started = True
        disk.write(head, start)
        disk.sync()
        if disk.read(start, len(head)) != head:
            raise DumpError("verify: header page read back differs")
        self.write_superblock()
        self.header_started = False

    def _invalidate(self) -> None:
        """After a failed header write: busy marker back, superblock valid."""
        # header_started: the copy finished, so no stuck write dropped the disk
        self._rewrite_start(BUSY_MARKER, "re-mark the dump invalid")

    def _rewrite_start(self, data: bytes, what: str) -> None:
        """Best effort: *data* at the dump start, then the superblock over what is there now."""
        try:
            disk, lay = self.disk, self.layout
            assert disk is not None and lay is not None
            disk.write(data, lay.sb.dump_start)
            self.write_superblock()
        except Exception as exc:  # noqa: BLE001
            self.sysm.console(f"zfcpdump: warning: cannot {what}: {exc}")

    # --- the end ------------------------------------------------------------------------
    def _close(self) -> None:
        if self.disk is not None:
            self.disk.close()
        if self.src is not None:
            self.sysm.close(self.src.fd)

    def _finish(self, code: int) -> int:
        after = str(self.cfg["after"])
        if after == "reipl" and self.sysm.exists(ZCORE_REIPL):
            self.say("re-IPL", 1)
            try:
                self.sysm.write_text(ZCORE_REIPL, "1")
                if self.sysm.rooted:
                    return code
            except OSError as exc:
                self.say(f"re-IPL failed: {exc.strerror or exc}; powering off", 1)
        how = "halt" if after == "halt" else "poweroff"
        self.say(how, 1)
        try:
            self.sysm.reboot(how)
        except OSError as exc:
            self.sysm.console(f"zfcpdump: {how} failed: {exc.strerror or exc}")
        return code

    # --- signals ------------------------------------------------------------------------
    def _install_signals(self) -> None:
        import _signal  # type: ignore[import-not-found]  # no stub in typeshed; signal costs enum
        import faulthandler

        try:  # noqa: SIM105 - no contextlib in the writer (RAM)
            faulthandler.enable()
        except (RuntimeError, ValueError, OSError):
            pass
        for name in SIGNALS:
            num = getattr(_signal, name, None)
            if num is not None:
                self._old_signals.append((num, _signal.signal(num, self._on_signal)))

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            self.stopping = True
            raise Interrupted(signum)

    def _restore_signals(self) -> None:
        import _signal

        while self._old_signals:
            num, old = self._old_signals.pop()
            _signal.signal(num, old)
