"""The runtime runs on its own: the real s390x interpreter in a chroot of just the bundle."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store
from zfcpdump_builder.stages.runtime import FILES_JSON, ROOT_DIR, RuntimeSpec, build_runtime, writer_modules

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"

pytestmark = pytest.mark.slow
PYTHON = ["/usr/bin/python3.11", "-ISB"]

TRACE = """
import sys
for name in {modules!r}:
    __import__(name)
from zfcpdump_writer.system import System
libc = System().native().libc
assert libc.getpid() > 0
print(repr(sorted(sys.modules)))
"""


def test_interpreter_starts_isolated_and_quiet(runtime_chroot: Path) -> None:
    code = (
        "import sys; print(repr((sys.flags.isolated, sys.flags.no_site, sys.dont_write_bytecode, sys.path)))"
    )
    result = chroot.run(runtime_chroot, [*PYTHON, "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no "Could not find platform ... libraries" warnings
    isolated, no_site, no_bytecode, path = ast.literal_eval(result.stdout)
    assert (isolated, no_site, no_bytecode) == (1, 1, True)
    assert path[0] == "/usr/lib/python311.zip"


def test_every_traced_import_is_shipped(runtime_chroot: Path, runtime_out: StageOutput) -> None:
    """Import every writer module and load libc through ctypes in the target interpreter."""
    modules = writer_modules(WRITER)
    result = chroot.run(runtime_chroot, [*PYTHON, "-c", TRACE.format(modules=modules)])
    assert result.returncode == 0, result.stderr
    traced = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
    manifest = json.loads((runtime_out.path / FILES_JSON).read_text())
    listed = {m["name"] for m in manifest["modules"]}
    implicit = {
        "__main__",
        "_frozen_importlib",
        "_frozen_importlib_external",
        "_imp",
        "_io",
        "_thread",
        "_warnings",
        "_weakref",
        "builtins",
        "io",
        "marshal",
        "posix",
        "sys",
        "time",
        "zipimport",
        "os.path",
    }
    assert traced - listed - implicit == set()
    shipped = {m["name"] for m in manifest["modules"] if "member" in m}
    unused_stdlib = {m for m in shipped - traced if not m.startswith("zfcpdump_writer")}
    assert unused_stdlib == set(), f"shipped but never imported: {unused_stdlib}"


def test_nothing_is_written_at_run_time(runtime_chroot: Path) -> None:
    result = chroot.run(runtime_chroot, [*PYTHON, "-c", "import zfcpdump_writer.main, ctypes"])
    assert result.returncode == 0, result.stderr
    assert not list(runtime_chroot.rglob("__pycache__"))


def test_the_chroot_really_lacks_what_the_bundle_lacks(runtime_chroot: Path) -> None:
    result = chroot.run(runtime_chroot, [*PYTHON, "-c", "import json"])
    assert result.returncode == 1 and "No module named 'json'" in result.stderr


def test_sourceless_files_layout_runs_too(cache_dir: Path, qemu: Path, tmp_path: Path) -> None:
    out = build_runtime(RuntimeSpec(bytecode="files"), WRITER, Store(tmp_path / "s"), Reporter(), cache_dir)
    root = out.path / ROOT_DIR
    assert (root / "usr/lib/python3.11/os.pyc").is_file()  # the prefix landmark
    assert not (root / "usr/lib/python311.zip").exists()
    box = chroot.make_root(root, tmp_path / "chroot", qemu)
    result = chroot.run(box, [*PYTHON, "-c", "import sys, zfcpdump_writer.main; print(sys.path)"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
