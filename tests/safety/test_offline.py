"""`--offline` reaches every download: with the network cut, a warm cache builds and a cold
one fails at once, naming what is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.buildcli import ROOT, shared_cache_dir
from zfcpdump_builder.core import debpkg
from zfcpdump_builder.core.errors import SourceError


def offline_build(out: Path, cache: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is missing: ./setup.sh test installs it")
    started = time.monotonic()
    result = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            str(ROOT / "build.py"),
            "build",
            "default",
            "--offline",
            "--out",
            str(out),
            "--cache-dir",
            str(cache),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, time.monotonic() - started


def test_a_warm_cache_builds_with_no_network(tmp_path: Path, built_default) -> None:  # noqa: ANN001
    result, _ = offline_build(tmp_path / "out", shared_cache_dir())
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "zfcpdump.rd").read_bytes() == (built_default.out / "zfcpdump.rd").read_bytes()


def test_a_cold_cache_fails_fast_naming_what_is_missing(tmp_path: Path) -> None:
    result, seconds = offline_build(tmp_path / "out", tmp_path / "cold")
    assert result.returncode == SourceError.exit_code, result.stderr
    assert seconds < 2.0, f"took {seconds:.2f}s"
    assert "linux-source-6.1" in result.stdout and "offline" in result.stdout
    assert '"event": "result"' in result.stdout.splitlines()[-1]


def test_offline_runtime_packages_never_run_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get at all: running it would be a HostError
    started = time.monotonic()
    with pytest.raises(SourceError, match="libpython3.11-minimal") as caught:
        debpkg.fetch_packages(
            ["python3.11-minimal", "libpython3.11-minimal"], "s390x", tmp_path / "c", offline=True
        )
    assert "offline" in str(caught.value) and time.monotonic() - started < 1.0
