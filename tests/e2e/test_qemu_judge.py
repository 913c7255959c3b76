"""zfcpdump_builder.qemu's judging, against a fake qemu-system-s390x (a script; no kernel)."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

from zfcpdump_builder import cli
from zfcpdump_builder.core import errors
from zfcpdump_builder.deploy import qemu

FAKE = """#!{python}
import pathlib, sys, time
for line in {lines!r}:
    if line.startswith("TOUCH "):
        pathlib.Path(line.split()[1]).touch()
        continue
    if line.startswith("SLEEP "):
        time.sleep(float(line.split()[1]))
        continue
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()
sys.exit({code})
"""


def _spec(tmp_path: Path, lines: list[str], code: int = 0, **kw: object) -> qemu.BootSpec:
    fake = tmp_path / "fake-qemu"
    fake.write_text(FAKE.format(python=sys.executable, lines=lines, code=code))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    image, rd = tmp_path / "image", tmp_path / "rd"
    image.write_bytes(b"k")
    rd.write_bytes(b"r")
    kw.setdefault("timeout", 20.0)
    return qemu.BootSpec(image, rd, qemu=str(fake), log_path=tmp_path / "console.log", **kw)


def test_expected_markers_pass_and_qemu_exit_code_is_ignored(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["booting", "zfcpdump: Dump successful"], code=3, expect=("Dump successful",))
    result = qemu.boot(spec, echo=False)
    assert result.passed and result.exited and result.exit_code == 3
    assert "Dump successful" in result.seen
    assert (tmp_path / "console.log").read_text().count("booting") == 1
    assert result.check() is result


def test_missing_marker_fails_even_when_qemu_exits_0(tmp_path: Path) -> None:
    result = qemu.boot(_spec(tmp_path, ["booting"], expect=("Dump successful",)), echo=False)
    assert not result.passed and result.missing == ["Dump successful"]
    with pytest.raises(errors.TestBootError) as info:
        result.check()
    assert info.value.exit_code == 8 and "Dump successful" in info.value.message


def test_failure_marker_fails_and_stops_a_hung_guest(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path, ["Kernel panic - not syncing: VFS", "SLEEP 30"], timeout=25, expect=("Kernel panic",)
    )
    result = qemu.boot(spec, echo=False)
    assert not result.passed and not result.timed_out
    assert result.failures_seen == ["Kernel panic - not syncing: VFS"]
    assert result.duration < 10


def test_allowed_line_is_not_a_failure(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        ["Kernel panic - not syncing: sysrq triggered crash", "done"],
        expect=("done",),
        allow=("sysrq triggered crash",),
    )
    assert qemu.boot(spec, echo=False).passed


def test_timeout_kills_the_guest(tmp_path: Path) -> None:
    result = qemu.boot(_spec(tmp_path, ["up", "SLEEP 30"], timeout=1.5, expect=("up",)), echo=False)
    assert result.timed_out and not result.exited and not result.passed
    assert result.duration < 10


def test_kill_after_a_regex_marker(tmp_path: Path) -> None:
    lines = ["zfcpdump: 8 MB of 64 MB (12%), 4.0 MB/s, ETA 14 s", "SLEEP 30", "never"]
    spec = _spec(tmp_path, lines, kill_after=re.compile(r"\d+ MB of \d+ MB"))
    result = qemu.boot(spec, echo=False)
    assert result.killed and not result.exited and not result.timed_out
    assert "never" not in result.console and result.duration < 10


def test_kill_when_a_condition_holds_while_the_console_is_silent(tmp_path: Path) -> None:
    """The guest prints nothing while it writes: the condition is polled all the same."""
    flag = tmp_path / "written"
    spec = _spec(
        tmp_path, ["writing", "SLEEP 1", f"TOUCH {flag}", "SLEEP 30", "never"], kill_when=flag.exists
    )
    result = qemu.boot(spec, echo=False)
    assert result.killed and not result.exited and not result.timed_out
    assert "never" not in result.console and 1 <= result.duration < 10


def test_write_limits_go_on_the_drive(tmp_path: Path) -> None:
    spec = qemu.BootSpec(Path("img"), Path("rd"), disk=Path("d.img"), disk_write_iops=25, disk_write_bps=1000)
    drive = qemu.qemu_argv(spec)[qemu.qemu_argv(spec).index("-drive") + 1]
    assert "throttling.iops-write=25" in drive and "throttling.bps-write=1000" in drive


def test_argv_has_the_disk_and_the_command_line(tmp_path: Path) -> None:
    spec = qemu.BootSpec(Path("img"), Path("rd"), memory_mib=48, append="crashkernel=32M", disk=Path("d.img"))
    argv = qemu.qemu_argv(spec)
    assert argv[argv.index("-m") + 1] == "48"
    assert argv[argv.index("-append") + 1] == "console=ttysclp0 scsi_mod.scan=async crashkernel=32M"
    assert "virtio-scsi-ccw,id=scsi0" in argv and "scsi-hd,drive=d0" in argv
    assert "-no-reboot" in argv and "-nographic" in argv


def test_cli_exit_code_comes_from_the_verdict(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["hello"])
    base = [
        "qemu",
        "--image",
        str(spec.image),
        "--rd",
        str(spec.initrd),
        "--timeout",
        "20",
        "--quiet-console",
        "--qemu",
        spec.qemu,
    ]
    assert cli.main([*base, "--expect", "hello"]) == 0
    assert cli.main([*base, "--expect", "bye"]) == errors.TestBootError.exit_code
