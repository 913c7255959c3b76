"""Boot a kernel + initramfs under qemu-system-s390x and judge the run by its console.

QEMU exits 0 even after a guest panic, so a boot is never judged by QEMU's exit code: it is
judged by the console text. A run passes when every *expected* marker appeared, no *failure*
marker appeared (a line holding an *allowed* string is never a failure), and the hard timeout
did not fire. The console is streamed live through the Reporter and copied to a log file.

    result = boot(BootSpec(image, rd, disk=disk, expect=("Dump successful",)))
    result.check()          # raises errors.TestBootError when the run failed

`kill_after` kills the guest (SIGKILL, like pulling the plug) as soon as a marker appears,
`kill_when` as soon as a condition holds (the disk image reaching a chosen state, say); the
disk keeps whatever the guest had written by then.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from ..core.errors import HostError, TestBootError
from ..core.events import Reporter, RichReporter

QEMU = "qemu-system-s390x"
BASE_APPEND = "console=ttysclp0 scsi_mod.scan=async"
DEFAULT_FAILURES: tuple[str, ...] = (
    "Kernel panic",
    "Dump failed",
    "Oops",
    "Unable to mount root",
    "No working init found",
    "Out of memory",
)
PANIC_GRACE_SECONDS = 2.0

# A marker is plain text (substring of a console line) or a compiled regular expression.
Marker = str | re.Pattern[str]


def marker_name(marker: Marker) -> str:
    return marker if isinstance(marker, str) else marker.pattern


def marker_in(marker: Marker, line: str) -> bool:
    return marker in line if isinstance(marker, str) else marker.search(line) is not None


@dataclass(frozen=True)
class BootSpec:
    """What to boot and how to judge it."""

    image: Path
    initrd: Path
    memory_mib: int = 32
    append: str = ""
    disk: Path | None = None
    timeout: float = 120.0
    expect: tuple[Marker, ...] = ()
    failures: tuple[Marker, ...] = DEFAULT_FAILURES
    allow: tuple[Marker, ...] = ()
    kill_after: Marker | None = None
    kill_when: Callable[[], bool] | None = None  # polled every few ms: SIGKILL once it holds
    log_path: Path | None = None
    cpus: int = 1
    disk_write_bps: int | None = None
    disk_write_iops: int | None = None
    disk_faults: Path | None = None  # QEMU blkdebug rules: the disk fails requests as they say
    qemu: str = QEMU
    extra_args: tuple[str, ...] = ()

    def cmdline(self) -> str:
        return f"{BASE_APPEND} {self.append}".strip()


@dataclass
class BootResult:
    """What happened: console text, markers with their time (s since start), and the verdict.

    `seen` is keyed by marker text (a regex by its pattern). `killed` means we killed the
    guest on `kill_after`; `exited` means QEMU ended by itself (guest power off or reboot,
    as -no-reboot turns a reboot into an exit) before the timeout.
    """

    spec: BootSpec
    console: str
    seen: dict[str, float]
    failures_seen: list[str]
    duration: float
    timed_out: bool
    killed: bool
    exited: bool
    exit_code: int | None
    log_path: Path | None
    argv: list[str] = field(default_factory=list)

    @property
    def missing(self) -> list[str]:
        names = (marker_name(m) for m in self.spec.expect)
        return [n for n in names if n not in self.seen]

    @property
    def passed(self) -> bool:
        return not self.missing and not self.failures_seen and not self.timed_out

    def problems(self) -> list[str]:
        found = [f"failure marker on console: {line!r}" for line in self.failures_seen]
        found += [f"expected marker never appeared: {m!r}" for m in self.missing]
        if self.timed_out:
            found.append(f"timed out after {self.spec.timeout:.0f}s")
        return found

    def check(self) -> BootResult:
        """Return self when the run passed; raise TestBootError otherwise."""
        if self.passed:
            return self
        raise TestBootError(
            "boot test failed: " + "; ".join(self.problems()),
            hint="read the console log for the guest's own messages",
            log=str(self.log_path) if self.log_path else None,
        )


def qemu_argv(spec: BootSpec) -> list[str]:
    """The qemu-system-s390x command line for *spec* (the console goes to stdio)."""
    argv = [
        spec.qemu,
        "-M",
        "s390-ccw-virtio",
        "-nographic",
        "-no-reboot",
        "-m",
        str(spec.memory_mib),
        "-smp",
        str(spec.cpus),
        "-kernel",
        str(spec.image),
        "-initrd",
        str(spec.initrd),
        "-append",
        spec.cmdline(),
    ]
    if spec.disk is not None:
        image = f"blkdebug:{spec.disk_faults}:{spec.disk}" if spec.disk_faults else str(spec.disk)
        drive = f"file={image},if=none,format=raw,id=d0,cache=writeback"
        if spec.disk_faults:
            drive += ",werror=report,rerror=report"  # the guest sees the error, QEMU does not stop
        if spec.disk_write_bps:
            drive += f",throttling.bps-write={spec.disk_write_bps}"
        if spec.disk_write_iops:
            drive += f",throttling.iops-write={spec.disk_write_iops}"
        argv += ["-device", "virtio-scsi-ccw,id=scsi0", "-drive", drive, "-device", "scsi-hd,drive=d0"]
    return argv + list(spec.extra_args)


class ConsoleJudge:
    """Consume console bytes, split lines, record markers; tell when to stop."""

    def __init__(self, spec: BootSpec, started: float, on_line: Callable[[str], None]) -> None:
        self.spec = spec
        self.started = started
        self.on_line = on_line
        self.text: list[str] = []
        self.partial = ""
        self.seen: dict[str, float] = {}
        self.failures_seen: list[str] = []
        self.kill_now = False
        self.first_failure: float | None = None

    def feed(self, data: bytes) -> None:
        chunk = data.decode("utf-8", errors="replace").replace("\r", "")
        self.text.append(chunk)
        lines = (self.partial + chunk).split("\n")
        self.partial = lines.pop()
        for line in lines:
            self._line(line)

    def finish(self) -> None:
        if self.partial:
            self._line(self.partial)
            self.partial = ""

    def _line(self, line: str) -> None:
        self.on_line(line)
        now = time.monotonic() - self.started
        kill = self.spec.kill_after
        for marker in (*self.spec.expect, *([kill] if kill is not None else [])):
            name = marker_name(marker)
            if name not in self.seen and marker_in(marker, line):
                self.seen[name] = round(now, 3)
        if kill is not None and marker_in(kill, line):
            self.kill_now = True
        if self._is_failure(line):
            self.failures_seen.append(line.strip())
            if self.first_failure is None:
                self.first_failure = now

    def _is_failure(self, line: str) -> bool:
        if any(marker_in(ok, line) for ok in self.spec.allow):
            return False
        return any(marker_in(bad, line) for bad in self.spec.failures)

    def should_stop(self) -> bool:
        """Stop early on a kill marker or condition, or shortly after a failure (a panic hangs
        forever)."""
        if not self.kill_now and self.spec.kill_when is not None:
            self.kill_now = self.spec.kill_when()
        if self.kill_now:
            return True
        if self.first_failure is None:
            return False
        return time.monotonic() - self.started - self.first_failure > PANIC_GRACE_SECONDS

    @property
    def console(self) -> str:
        return "".join(self.text)


def _require_files(spec: BootSpec) -> None:
    if shutil.which(spec.qemu) is None:
        raise HostError(f"{spec.qemu} is not installed", hint="install Debian's qemu-system-s390x package")
    for label, path in (("image", spec.image), ("initrd", spec.initrd), ("disk", spec.disk)):
        if path is not None and not Path(path).is_file():
            raise TestBootError(f"boot test: {label} {path} does not exist")


def _pump(
    proc: subprocess.Popen[bytes], judge: ConsoleJudge, log: BinaryIO, deadline: float
) -> tuple[bool, bool]:
    """Read the console until QEMU exits, a stop condition holds, or the deadline passes.

    Returns (timed_out, stopped_early).
    """
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True, False
            if sel.select(min(remaining, 0.2 if judge.spec.kill_when is None else 0.005)):
                data = os.read(fd, 65536)
                if not data:
                    return False, False
                log.write(data)
                log.flush()
                judge.feed(data)
            if judge.should_stop():
                return False, True


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.kill()
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


def _log_path(spec: BootSpec) -> Path:
    if spec.log_path is not None:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        return spec.log_path
    handle, name = tempfile.mkstemp(prefix="qemu-console-", suffix=".log")
    os.close(handle)
    return Path(name)


def console_printer(reporter: Reporter) -> Callable[[str], None]:
    """Guest console lines through the Reporter: dimmed on a rich TTY, `  | `-prefixed text else."""
    if isinstance(reporter, RichReporter):
        console = reporter.console
        return lambda line: console.print(
            f"  | {line}", style="dim", markup=False, highlight=False, soft_wrap=True
        )
    return lambda line: reporter.info(f"  | {line}")


def boot(spec: BootSpec, reporter: Reporter | None = None, echo: bool = True) -> BootResult:
    """Boot *spec* once; stream its console; return the judged result (never raises on a bad run)."""
    _require_files(spec)
    reporter = reporter or Reporter()
    argv = qemu_argv(spec)
    log_path = _log_path(spec)
    reporter.detail("qemu: " + " ".join(argv))
    started = time.monotonic()
    judge = ConsoleJudge(spec, started, console_printer(reporter) if echo else (lambda _line: None))
    with open(log_path, "wb") as log:
        # stdin is a pipe nobody writes: QEMU never puts the user's terminal in raw mode.
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            timed_out, stopped = _pump(proc, judge, log, started + spec.timeout)
        finally:
            code = _stop(proc)
        _drain(proc, judge, log)
    judge.finish()
    return BootResult(
        spec,
        judge.console,
        judge.seen,
        judge.failures_seen,
        round(time.monotonic() - started, 3),
        timed_out,
        stopped and judge.kill_now,
        not (timed_out or stopped),
        code,
        log_path,
        argv,
    )


def _drain(proc: subprocess.Popen[bytes], judge: ConsoleJudge, log: BinaryIO) -> None:
    assert proc.stdout is not None
    try:
        rest = proc.stdout.read() or b""
    except (BlockingIOError, ValueError):
        rest = b""
    if rest:
        log.write(rest)
        judge.feed(rest)
    proc.stdout.close()
