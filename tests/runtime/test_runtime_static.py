"""runtime.interpreter: static — CPython 3.11.2 built from Debian's orig tarball, linked -static,
with every native module the writer needs built in and no loader or library in the rd."""

from __future__ import annotations

import ast
import io
import json
import tarfile
from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.core.errors import CompileError, OfflineMissingError, SourceError
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store, file_sha256
from zfcpdump_builder.stages import cpython
from zfcpdump_builder.stages.model import produce
from zfcpdump_builder.stages.runtime import FILES_JSON, ROOT_DIR, RuntimeSpec, build_runtime, writer_modules
from zfcpdump_builder.stages.runtime.closure import ModuleClosure
from zfcpdump_builder.stages.runtime.static import check_complete

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"


@pytest.fixture(scope="module")
def static_out(cache_dir: Path) -> StageOutput:
    # The shared store: the CPython build (minutes) is made once and then found there.
    return build_runtime(RuntimeSpec(interpreter="static"), WRITER, Store(cache_dir), Reporter(), cache_dir)


@pytest.mark.slow
def test_the_static_rd_has_no_loader_and_no_library(
    static_out: StageOutput, runtime_out: StageOutput
) -> None:
    root = static_out.path / ROOT_DIR
    binary = root / "usr/bin/python3.11"
    cpython.check_static(binary, "s390x")  # raises on PT_INTERP or DT_NEEDED
    native = [
        p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"
    ]
    assert native == [Path("usr/bin/python3.11")]
    data = json.loads((static_out.path / FILES_JSON).read_text())
    assert "ctypes" not in {m["name"] for m in data["modules"]}
    assert {"mmap", "_struct", "_zfcpdump"} <= set(data["python"]["static"]["builtins"])
    packaged = json.loads((runtime_out.path / FILES_JSON).read_text())
    assert data["totals"]["bytes"] < packaged["totals"]["bytes"] - 3_000_000, (
        data["totals"],
        packaged["totals"],
    )


@pytest.mark.slow
def test_the_static_runtime_runs_the_writer_alone_in_a_chroot(
    static_out: StageOutput, qemu: Path, tmp_path: Path
) -> None:
    box = chroot.make_root(static_out.path / ROOT_DIR, tmp_path / "root", qemu)
    code = (
        f"import sys, errno\nfor m in {writer_modules(WRITER)!r}: __import__(m)\n"
        "import _zfcpdump\n"
        "try:\n    _zfcpdump.mount('none', '/no/such/dir', 'proc')\n"
        "except OSError as e:\n    assert e.errno == errno.ENOENT, e\n"
        "else:\n    raise SystemExit('mount of a missing dir succeeded')\n"
        "assert 'ctypes' not in sys.modules\n"
        "print(repr(sorted(sys.builtin_module_names)))"
    )
    result = chroot.run(box, ["/usr/bin/python3.11", "-ISB", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads((static_out.path / FILES_JSON).read_text())
    assert ast.literal_eval(result.stdout.strip()) == sorted(data["python"]["static"]["builtins"])


def fake_source(tmp_path: Path, configure: str) -> Path:
    """A tarball shaped like CPython's whose configure script is *configure*."""
    tarball = tmp_path / "Python-0.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text, mode in (
            ("Python-0.0/configure", f"#!/bin/sh\n{configure}\n", 0o755),
            ("Python-0.0/Modules/Setup.stdlib.in", "@MODULE__STRUCT_TRUE@_struct _struct.c\n", 0o644),
            ("Python-0.0/Modules/Setup.bootstrap.in", "*static*\nposix posixmodule.c\n", 0o644),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(text), mode
            tar.addfile(info, io.BytesIO(text.encode()))
    return tarball


def test_a_configure_failure_shows_the_log_tail_and_path(tmp_path: Path) -> None:
    tarball = fake_source(tmp_path, "echo 'checking for a sane compiler... no' ; exit 3")
    source = cpython.CPythonSource(path=tarball, sha256=file_sha256(tarball))
    store = Store(tmp_path / "cache")
    prepared = cpython.prepare_cpython(source, ("_struct",), "s390x", tmp_path / "cache", Reporter(), False)
    with pytest.raises(CompileError) as caught:
        produce("cpython", prepared, store)
    assert "checking for a sane compiler... no" in caught.value.message
    assert caught.value.log and Path(caught.value.log).is_file()
    assert not list((tmp_path / "cache" / "objects").glob("cpython-*")), "nothing half-built is kept"


def test_a_sha256_mismatch_builds_nothing(tmp_path: Path) -> None:
    tarball = fake_source(tmp_path, "exit 0")
    source = cpython.CPythonSource(path=tarball, sha256="0" * 64)
    with pytest.raises(SourceError, match="sha256 mismatch"):
        cpython.prepare_cpython(source, (), "s390x", tmp_path / "cache", Reporter(), False)
    assert not (tmp_path / "cache").exists()


def test_offline_without_the_tarball_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OfflineMissingError, match="python3.11_3.11.2.orig.tar.gz"):
        cpython.prepare_cpython(cpython.CPythonSource(), (), "s390x", tmp_path, Reporter(), True)


def test_a_module_needing_a_library_or_unknown_is_a_build_error(tmp_path: Path) -> None:
    tree = tmp_path / "src"
    (tree / "Modules").mkdir(parents=True)
    (tree / "Modules/Setup.stdlib.in").write_text(
        "@MODULE_ZLIB_TRUE@zlib zlibmodule.c -lz\n_struct _struct.c\n"
    )
    (tree / "Modules/Setup.bootstrap.in").write_text("*static*\nposix posixmodule.c\n_sre _sre/sre.c\n")
    assert "_struct _struct.c" in cpython.setup_local(tree, {"_struct", "posix"})
    assert "_sre" in cpython.setup_local(tree, {"posix"}).split("*disabled*")[1]
    with pytest.raises(CompileError, match="zlib needs one"):
        cpython.setup_local(tree, {"zlib"})
    with pytest.raises(CompileError, match="no such module"):
        cpython.setup_local(tree, {"_nonesuch"})


def test_a_dynamic_binary_is_refused(runtime_out: StageOutput) -> None:
    with pytest.raises(CompileError, match="PT_INTERP"):
        cpython.check_static(runtime_out.path / ROOT_DIR / "usr/bin/python3.11", "s390x")


def test_a_writer_import_the_binary_lacks_is_a_build_error() -> None:
    closure = ModuleClosure({}, {"zlib": ["zfcpdump_writer.copier"], "_zfcpdump": ["zfcpdump_writer.system"]})
    with pytest.raises(CompileError, match=r"zlib \(imported by zfcpdump_writer.copier\)"):
        check_complete(closure, "zfcpdump_writer")
    check_complete(
        ModuleClosure({}, {"_x": ["zfcpdump_writer.system"]}, frozenset({"_x"})), "zfcpdump_writer"
    )
