"""The real thing: cross-compile the default recipe's kernel, then prove the cache and the errors."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from support.buildcli import ROOT, BuiltRecipe, CliRun, private_cache, run_cli, shared_cache_dir

REQUIRED = [
    "CRASH_DUMP",
    "PROC_VMCORE",
    "BLK_DEV_INITRD",
    "ZFCP",
    "BLK_DEV_SD",
    "MSDOS_PARTITION",
    "EFI_PARTITION",
    "DEBUG_FS",
]

pytestmark = pytest.mark.kernel


def config_symbols(path: Path) -> dict[str, str]:
    from zfcpdump_builder.stages.kconfig import parse_config_text

    return parse_config_text(path.read_text())


def child_recipe(tmp_path: Path, body: str, name: str = "child") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"extends: {ROOT / 'recipes' / 'default.yaml'}\n{body}")
    return path


def test_default_build_produces_a_verified_kernel(built_default: BuiltRecipe) -> None:
    config = config_symbols(built_default.out / "kernel.config")
    assert {s: config.get(s) for s in REQUIRED} == {s: "y" for s in REQUIRED}
    image = (built_default.out / "zfcpdump.image").read_bytes()
    assert len(image) > 1_000_000
    artifacts = {e["name"]: e for e in built_default.run.of("artifact")}
    assert artifacts["zfcpdump.image"]["sha256"] == hashlib.sha256(image).hexdigest()


def test_second_run_is_a_cache_hit(built_default: BuiltRecipe) -> None:
    started = time.monotonic()
    again = run_cli("build", "default", "--out", str(built_default.out))
    elapsed = time.monotonic() - started
    assert again.code == 0, again.stderr
    finished = {e["stage"]: e for e in again.of("stage-finish")}
    assert finished["kernel"]["cached"] is True and finished["kconfig"]["cached"] is True
    assert {e["stage"] for e in again.of("cache-hit")} >= {"source", "kconfig", "kernel"}
    assert elapsed < 30, f"a no-op rebuild took {elapsed:.1f}s"


def test_dropped_symbol_fails_before_compiling(tmp_path: Path, built_default: BuiltRecipe) -> None:
    # SCSI_VIRTIO depends on VIRTIO, which the production config leaves off.
    recipe = child_recipe(tmp_path, "kernel:\n  config:\n    set: {SCSI_VIRTIO: y}\n")
    out = tmp_path / "out"
    run = run_cli("build", str(recipe), "--out", str(out))
    assert run.code == 2
    error = run.error()
    assert error["kind"] == "config"
    assert "SCSI_VIRTIO: requested y, got unset" in error["message"]
    assert "depends on" in error["message"] and "VIRTIO" in error["message"]
    assert "kernel" not in {e["stage"] for e in run.of("stage-start")}
    assert not out.exists()


def test_symbol_missing_from_kconfig_is_refused(tmp_path: Path, built_default: BuiltRecipe) -> None:
    recipe = child_recipe(tmp_path, "kernel:\n  config:\n    set: {PROC_VMCOR: y}\n")
    run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert run.code == 2
    assert "do not exist" in run.error()["message"] and "PROC_VMCORE" in run.error()["message"]


def test_missing_tarball(tmp_path: Path) -> None:
    recipe = child_recipe(
        tmp_path, f"kernel:\n  source:\n    tarball: {tmp_path / 'nope.tar.xz'}\n    sha256: {'b' * 64}\n"
    )
    run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=tmp_path / "cache")
    assert run.code == 3
    assert "does not exist" in run.error()["message"]


def test_sha256_mismatch_keeps_nothing(tmp_path: Path) -> None:
    tarball = tmp_path / "linux.tar"
    with tarfile.open(tarball, "w") as tar:
        data = b"VERSION = 6\n"
        info = tarfile.TarInfo("linux/Makefile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    recipe = child_recipe(tmp_path, f"kernel:\n  source:\n    tarball: {tarball}\n    sha256: {'a' * 64}\n")
    cache = tmp_path / "cache"
    run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=cache)
    assert run.code == 3
    assert "sha256 mismatch" in run.error()["message"]
    assert not list((cache / "objects").glob("source-*")) if (cache / "objects").exists() else True
    assert not (tmp_path / "out").exists()


def test_missing_cross_compiler_names_the_debian_package(tmp_path: Path) -> None:
    run = run_cli("build", "default", "--out", str(tmp_path / "out"), env={"PATH": str(tmp_path)})
    assert run.code == 4
    error = run.error()
    assert "s390x-linux-gnu-gcc" in error["message"]
    assert "gcc-s390x-linux-gnu" in (error["hint"] or "")


def failing_toolchain(tmp_path: Path) -> str:
    """A cross prefix whose gcc fails on one early file, like a real compile error."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("ld", "as", "ar", "nm", "objcopy", "objdump", "strip", "readelf", "cpp"):
        os.symlink(f"/usr/bin/s390x-linux-gnu-{tool}", bindir / f"s390x-broken-{tool}")
    gcc = bindir / "s390x-broken-gcc"
    gcc.write_text(
        '#!/bin/sh\ncase "$*" in *asm-offsets.c*) echo \'asm-offsets.c:1: error: '
        'injected failure\' >&2; exit 1;; esac\nexec s390x-linux-gnu-gcc "$@"\n'
    )
    gcc.chmod(0o755)
    return str(bindir / "s390x-broken-")


def test_compile_error_shows_log_tail_and_path(tmp_path: Path, built_default: BuiltRecipe) -> None:
    prefix = failing_toolchain(tmp_path)
    recipe = child_recipe(tmp_path, f"toolchain:\n  cross_compile: {prefix}\n  ccache: false\n")
    run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"))
    assert run.code == 5, run.stderr
    error = run.error()
    assert "injected failure" in error["message"]
    assert error["log"] and Path(error["log"]).is_file()
    assert "injected failure" in Path(error["log"]).read_text()
    assert "Traceback" not in run.stderr


def unique_suffix() -> str:
    """A LOCALVERSION never built before, so the kernel stage cannot be a cache hit."""
    return f"-t{os.getpid()}{time.monotonic_ns() % 10**9}"


def build_with_localversion(tmp_path: Path, suffix: str) -> CliRun:
    # Same recipe name as the default, so it shares the default's O= workspace.
    (tmp_path / suffix).mkdir()
    recipe = child_recipe(
        tmp_path / suffix, f'kernel:\n  config:\n    set: {{LOCALVERSION: "{suffix}"}}\n', name="default"
    )
    run = run_cli("build", str(recipe), "--out", str(tmp_path / suffix / "out"))
    assert run.code == 0, run.stderr
    kernel = next(e for e in run.of("stage-finish") if e["stage"] == "kernel")
    assert kernel["cached"] is False
    return run


def test_one_symbol_change_rebuilds_incrementally(tmp_path: Path, built_default: BuiltRecipe) -> None:
    # The first build brings the workspace to a known state, whatever built in it last.
    build_with_localversion(tmp_path, unique_suffix())
    suffix = unique_suffix()
    build_with_localversion(tmp_path, suffix)
    log = (shared_cache_dir() / "logs" / "default" / "kernel-build.log").read_text()
    compiled = [line for line in log.splitlines() if line.lstrip().startswith("CC ")]
    assert 0 < len(compiled) < 100, f"{len(compiled)} files recompiled for one symbol"
    manifest = json.loads((tmp_path / suffix / "out" / "manifest.json").read_text())
    assert manifest["kernel"]["release"].endswith(suffix)


def test_interrupted_build_is_never_reused(tmp_path: Path, built_default: BuiltRecipe) -> None:
    cache = private_cache(tmp_path)  # always cold, so there is a build to interrupt
    recipe = child_recipe(tmp_path, "", name="interrupt")
    command = [
        sys.executable,
        str(ROOT / "build.py"),
        "build",
        str(recipe),
        "--json",
        "--out",
        str(tmp_path / "out"),
        "--cache-dir",
        str(cache),
    ]
    # A shell's background job inherits SIGINT as ignored; a user's terminal does not.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stdout is not None
    for line in process.stdout:
        if '"stage-start"' in line and '"kernel"' in line:
            break
    time.sleep(5)
    process.send_signal(signal.SIGINT)
    rest = process.stdout.read()
    assert process.wait(timeout=120) == 130
    assert '"interrupted"' in rest
    assert not (tmp_path / "out").exists()
    assert not list((cache / "objects").glob("kernel-*"))
    assert not list((cache / "tmp").glob("*"))
    again = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=cache)
    assert again.code == 0, again.stderr
    kernel = next(e for e in again.of("stage-finish") if e["stage"] == "kernel")
    assert kernel["cached"] is False
    assert (tmp_path / "out" / "zfcpdump.image").stat().st_size > 1_000_000


def test_full_disk_while_unpacking(tmp_path: Path) -> None:
    mountpoint = tmp_path / "small"
    mountpoint.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mountpoint)]).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        tarball = tmp_path / "linux.tar"
        with tarfile.open(tarball, "w") as tar:
            for name, data in [("linux/Makefile", b"VERSION = 6\n"), ("linux/big", os.urandom(16 << 20))]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        recipe = child_recipe(tmp_path, f"kernel:\n  source:\n    tarball: {tarball}\n    sha256: {digest}\n")
        run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=mountpoint)
        assert run.code == 4, run.stderr
        assert "no space left" in run.error()["message"]
        assert not list((mountpoint / "objects").glob("*")) if (mountpoint / "objects").exists() else True
        assert not list((mountpoint / "tmp").glob("*"))
    finally:
        subprocess.run(["umount", str(mountpoint)])
