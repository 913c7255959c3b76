"""The end-to-end scenarios' moving parts, shared by the e2e tests and bench/memory_floor.py.

- `build()` runs the project's own pipeline (`build.py build --recipe ... --out ...`);
- `kdump()` boots the crash-side rd in the qemu-test kernel with `crashkernel=`, so the same
  image boots again as the capture kernel with the UNMODIFIED zfcpdump.rd;
- `plain()` boots zfcpdump.rd directly (no kexec, so no /proc/vmcore);
- console parsers for the first kernel's version, the capture kernel's memory and
  MemAvailable lines.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for _path in (ROOT, ROOT / "src"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from tests.support import crashside, zgetdump  # noqa: E402
from tests.support.zipldisk import ZiplDisk  # noqa: E402

from zfcpdump_builder.deploy import dumpdisk  # noqa: E402
from zfcpdump_builder.deploy.qemu import DEFAULT_FAILURES, BootResult, BootSpec, boot  # noqa: E402

QEMU_TEST_RECIPE = ROOT / "recipes" / "qemu-test.yaml"
CRASH_MIB = 32  # crashkernel=32M: all the capture side gets
DUMPED_MIB = 64  # RAM outside the crash region: the vmcore is this + 12 KiB
DUMP_AREA = (DUMPED_MIB + 8) << 20  # a dump area the vmcore fits with room to spare
PLAIN_MIB = 32
PROGRESS_FACTOR = 1.6  # a throttled dump lasts this many progress intervals
PROGRESS = re.compile(r"zfcpdump: \d+ MB of \d+ MB \(\d+%\)")
WRITER_START = "zfcpdump writer starting"
SUCCESS = "Dump successful"
FAILED = "Dump failed"
NO_SOURCE = "no dump source"
SYSRQ_PANIC = "sysrq triggered crash"


@dataclass(frozen=True)
class Artifacts:
    out: Path
    image: Path
    rd: Path | None  # None: the initramfs is built into the image
    system_map: Path
    config: Path
    manifest: dict
    vmlinux: Path | None
    build_seconds: float


class BuildFailed(RuntimeError):
    pass


def build(recipe: Path, out: Path, log: Path, cache_dir: Path | None = None) -> Artifacts:
    """Build *recipe* with the project's pipeline into *out*; the full output goes to *log*."""
    argv = [sys.executable, str(ROOT / "build.py"), "build", "--recipe", str(recipe), "--out", str(out)]
    if cache_dir is not None:
        argv += ["--cache-dir", str(cache_dir)]
    started = time.monotonic()
    with open(log, "w") as handle:
        code = subprocess.run(argv, stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, check=False).returncode
    seconds = time.monotonic() - started
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise BuildFailed(f"build.py build --recipe {recipe} exited {code}:\n{tail}")
    return artifacts_in(out, seconds)


def artifacts_in(out: Path, seconds: float = 0.0) -> Artifacts:
    if not (out / "manifest.json").is_file():
        raise BuildFailed(f"build output {out} lacks manifest.json")
    manifest = json.loads((out / "manifest.json").read_text())
    builtin = manifest["placement"]["name"] == "builtin"
    names = ("zfcpdump.image", "System.map", "kernel.config", *(() if builtin else ("zfcpdump.rd",)))
    missing = [n for n in names if not (out / n).is_file()]
    if missing:
        raise BuildFailed(f"build output {out} lacks {', '.join(missing)}")
    vmlinux = out / "vmlinux"
    return Artifacts(
        out,
        out / "zfcpdump.image",
        None if builtin else out / "zfcpdump.rd",
        out / "System.map",
        out / "kernel.config",
        manifest,
        vmlinux if vmlinux.is_file() else None,
        seconds,
    )


def crash_rd(art: Artifacts, out: Path, token: str, append: str = crashside.CAPTURE_APPEND) -> Path:
    """The crash-side initramfs carrying *art*'s image and (unmodified) rd."""
    return crashside.build_crashside_rd(art.image, art.rd, out, token, append=append)


def kdump(
    art: Artifacts,
    first_rd: Path,
    disk: Path | None,
    log: Path,
    *,
    crash_mib: int | None = None,
    dumped_mib: int | None = None,
    expect: tuple = (SUCCESS,),
    failures: tuple = (),
    kill_after: object = None,
    kill_when: Callable[[], bool] | None = None,
    write_bps: int | None = None,
    write_iops: int | None = None,
    disk_faults: Path | None = None,
    timeout: float = 240.0,
    echo: bool = False,
) -> BootResult:
    """Boot, load the capture kernel, crash, and let the writer run in the capture kernel.

    The crashing kernel gets crash_mib + dumped_mib MiB with crashkernel=<crash_mib>M.
    """
    crash = crash_mib or CRASH_MIB
    memory = crash + (dumped_mib or DUMPED_MIB)
    spec = BootSpec(
        art.image,
        first_rd,
        memory_mib=memory,
        append=f"crashkernel={crash}M",
        disk=disk,
        timeout=timeout,
        expect=(crashside.MARK_LOADED, crashside.MARK_CRASH, *expect),
        failures=(*(failures or DEFAULT_FAILURES), crashside.MARK_KEXEC_FAILED, crashside.MARK_ALIVE),
        allow=(SYSRQ_PANIC,),
        kill_after=kill_after,
        kill_when=kill_when,
        log_path=log,
        disk_write_bps=write_bps,
        disk_write_iops=write_iops,
        disk_faults=disk_faults,
    )
    return boot(spec, echo=echo)


def plain(
    art: Artifacts,
    disk: Path | None,
    log: Path,
    *,
    memory: int = PLAIN_MIB,
    expect: tuple = (),
    failures: tuple = (),
    timeout: float = 120.0,
    echo: bool = False,
) -> BootResult:
    """Boot zfcpdump.rd directly in the qemu-test kernel."""
    spec = BootSpec(
        art.image,
        art.rd,
        memory_mib=memory,
        disk=disk,
        timeout=timeout,
        expect=expect,
        failures=failures or DEFAULT_FAILURES,
        log_path=log,
    )
    return boot(spec, echo=echo)


def baked_config(rd: Path) -> dict[str, object]:
    """The writer settings baked into *rd* (/etc/zfcpdump.conf; the writer's defaults if absent)."""
    import libarchive

    from zfcpdump_writer import config

    with libarchive.file_reader(str(rd)) as archive:
        for entry in archive:
            if entry.pathname.lstrip("./") == config.PATH.lstrip("/"):
                return config.parse(b"".join(entry.get_blocks()).decode())
    return config.parse("")


def progress_write_bps(rd: Path, dump_bytes: int) -> tuple[int, float]:
    """A disk write throttle that makes the dump last PROGRESS_FACTOR progress intervals.

    The writer prints a progress line every `progress_interval` seconds; QEMU copies far
    faster than that, so without a throttle a small dump ends before the first line.
    Returns (bytes per second, the interval).
    """
    interval = float(baked_config(rd)["progress_interval"])  # type: ignore[arg-type]
    return int(dump_bytes / (interval * PROGRESS_FACTOR)), interval


# --- console parsers -----------------------------------------------------------------------


def after_crash(console: str) -> str:
    """The console from the crash on (the capture kernel's part); '' when it never crashed."""
    index = console.find(crashside.MARK_CRASH)
    return console[index:] if index >= 0 else ""


def first_kernel_banner(console: str) -> str | None:
    """The crashing kernel's /proc/version line, as printed by the crash-side /init."""
    match = re.search(rf"^{crashside.MARK_VERSION} (Linux version .*)$", console, re.M)
    return match.group(1).rstrip() if match else None


def capture_memory_kib(console: str) -> int | None:
    """Total memory the capture kernel reports ("Memory: A/TK available")."""
    match = re.search(r"Memory: \d+K/(\d+)K available", after_crash(console))
    return int(match.group(1)) if match else None


MEMAVAIL = re.compile(r"MemAvailable[:=]?\s*(\d+)\s*(kB|KiB|MiB|MB)?", re.I)
UNIT_KIB = {"kb": 1, "kib": 1, "mib": 1024, "mb": 1024, "": 1}


def mem_available_low_kib(console: str) -> int | None:
    """The lowest MemAvailable the capture side printed (kB), or None when it printed none."""
    values = [int(n) * UNIT_KIB[(u or "").lower()] for n, u in MEMAVAIL.findall(after_crash(console))]
    return min(values) if values else None


def progress_lines(console: str) -> list[str]:
    return [ln for ln in console.splitlines() if PROGRESS.search(ln)]


def writer_lines(console: str) -> list[str]:
    return [ln.strip() for ln in console.splitlines() if "zfcpdump:" in ln]


def kdump_success_lines(result: BootResult) -> str:
    """The writer's console lines, after checking a kdump-mode run succeeded cleanly and the
    guest powered off by itself."""
    result.check()
    assert result.exited, "the guest did not power off by itself"
    lines = "\n".join(writer_lines(result.console))
    assert "/proc/vmcore" in lines and "kdump mode" in lines, lines
    assert FAILED not in result.console
    return lines


# A run whose dump must fail: "Dump failed" is expected, "Dump successful" is a failure.
FAILING_RUN = (*(f for f in DEFAULT_FAILURES if f != FAILED), SUCCESS)


def failed_line(result: BootResult) -> str:
    """The writer's 'Dump failed' line, after checking the run failed cleanly and the guest
    powered off by itself."""
    result.check()
    assert result.exited, "the guest did not power off by itself"
    failed = [ln for ln in writer_lines(result.console) if FAILED in ln]
    assert failed, writer_lines(result.console)
    return failed[0]


def judged(disk: ZiplDisk, work: Path, zg_root: Path) -> tuple[str, bool]:
    """Our `dumpdisk inspect` state and IBM's `zgetdump -i` verdict on the same partition;
    the two must agree on whether it holds a complete dump."""
    state = dumpdisk.inspect(disk.path)["state"]
    part = disk.partition_image(work / "part.img")
    valid = zgetdump.info(part, zg_root).returncode == 0
    part.unlink()
    assert (state == "complete") == valid, f"dumpdisk inspect says {state}, zgetdump -i valid={valid}"
    return state, valid
