"""runtime.interpreter: static — CPython 3.11.2 built from Debian's orig tarball, linked -static,
with every native module the writer needs built in and no loader or library in the rd."""

from __future__ import annotations

import ast
import io
import json
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from support import chroot
from zfcpdump_builder.core.errors import CompileError, OfflineMissingError, SourceError
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store, file_sha256
from zfcpdump_builder.stages import cpython
from zfcpdump_builder.stages.model import produce
from zfcpdump_builder.stages.runtime import (
    FILES_JSON,
    ROOT_DIR,
    RuntimeSpec,
    build_runtime,
    freeze,
    prepare_runtime,
    writer_modules,
)
from zfcpdump_builder.stages.runtime.closure import ModuleClosure
from zfcpdump_builder.stages.runtime.static import check_complete

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"


class RecordingReporter(Reporter):
    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.finished: list[tuple[str, bool]] = []

    def stage_finish(self, stage: str, key: str, cached: bool, seconds: float) -> None:
        del key, seconds  # only which stage, and whether it came from the cache
        self.finished.append((stage, cached))


def interpreter_dir(static_out: StageOutput) -> Path:
    """The 'cpython' stage output the frozen /init was linked from."""
    data = json.loads((static_out.path / FILES_JSON).read_text())
    return static_out.path.parent / data["python"]["frozen"]["interpreter"]


@pytest.fixture(scope="module")
def static_out(cache_dir: Path) -> StageOutput:
    # The shared store: the CPython build (minutes) is made once and then found there.
    return build_runtime(RuntimeSpec(interpreter="static"), WRITER, Store(cache_dir), Reporter(), cache_dir)


@pytest.mark.slow
def test_the_static_rd_is_one_binary_with_the_writer_frozen_in(
    static_out: StageOutput, runtime_out: StageOutput
) -> None:
    root = static_out.path / ROOT_DIR
    cpython.check_static(root / "init", "s390x")  # raises on PT_INTERP or DT_NEEDED
    assert [p.relative_to(root) for p in root.rglob("*")] == [Path("init")], "no zip, no .pyc, no lib"
    data = json.loads((static_out.path / FILES_JSON).read_text())
    assert data["python"]["bytecode"] == "frozen" and data["python"]["binary"] == "/init"
    assert data["python"]["frozen"]["self_check"] is True
    frozen = {m["name"] for m in data["modules"] if "size" in m}
    assert set(writer_modules(WRITER)) | {"os", "encodings", "io"} <= frozen
    assert data["python"]["frozen"]["modules"] == len(frozen)
    assert "ctypes" not in {m["name"] for m in data["modules"]}
    assert {"mmap", "_struct", "_zfcpdump"} <= set(data["python"]["static"]["builtins"])
    packaged = json.loads((runtime_out.path / FILES_JSON).read_text())
    assert data["totals"]["bytes"] < packaged["totals"]["bytes"] - 3_000_000, (
        data["totals"],
        packaged["totals"],
    )


@pytest.mark.slow
def test_the_frozen_init_runs_the_writer_alone_in_a_chroot(
    static_out: StageOutput, qemu: Path, tmp_path: Path
) -> None:
    box = chroot.make_root(static_out.path / ROOT_DIR, tmp_path / "root", qemu)
    code = (
        "import sys, errno, _imp\n"
        f"for m in {writer_modules(WRITER)!r}:\n    __import__(m)\n    assert _imp.is_frozen(m), m\n"
        "import _zfcpdump\n"
        "try:\n    _zfcpdump.mount('none', '/no/such/dir', 'proc')\n"
        "except OSError as e:\n    assert e.errno == errno.ENOENT, e\n"
        "else:\n    raise SystemExit('mount of a missing dir succeeded')\n"
        "assert 'ctypes' not in sys.modules\n"
        "print(repr(sorted(sys.builtin_module_names)))"
    )
    result = chroot.run(box, ["/init", "--python", "-ISB", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads((static_out.path / FILES_JSON).read_text())
    assert ast.literal_eval(result.stdout.strip()) == sorted(data["python"]["static"]["builtins"])
    # /init's own entry: the isolated start-up with an empty sys.path, then the writer's main.
    helped = chroot.run(box, ["/init", "--help"])
    assert helped.returncode == 0 and "zfcpdump-writer [--root DIR]" in helped.stderr, helped
    refused = chroot.run(box, ["/init"])  # not PID 1 and no --root: it must refuse to touch the system
    assert refused.returncode == 3 and "refusing to run on a live system" in refused.stderr, refused


@pytest.mark.slow
def test_a_writer_only_change_refreezes_without_a_cpython_rebuild(
    static_out: StageOutput, cache_dir: Path, tmp_path: Path
) -> None:
    changed = tmp_path / "zfcpdump_writer"
    shutil.copytree(WRITER, changed, ignore=shutil.ignore_patterns("__pycache__"))
    marker = f"a writer-only change {uuid.uuid4()}"  # new each run, so never a cache hit
    with open(changed / "copier.py", "a") as handle:
        handle.write(f"\nFROZEN_MARKER = {marker!r}\n")
    events = RecordingReporter()
    # What `plan` sees first: the runtime must be made, and its cpython stage is keyed by the
    # closure that only the runtime computes.
    prepared = prepare_runtime(
        RuntimeSpec(interpreter="static"), changed, Store(cache_dir), events, cache_dir, True
    )
    assert Store(cache_dir).peek("runtime", prepared.key) is None
    assert {i.name: i.keyed_by for i in prepared.inner}["cpython"] == "the writer's import closure"
    out = build_runtime(RuntimeSpec(interpreter="static"), changed, Store(cache_dir), events, cache_dir)
    assert not out.cached and out.key == prepared.key != static_out.key
    assert ("cpython", True) in events.finished, events.finished
    blob = (out.path / ROOT_DIR / "init").read_bytes()
    assert (
        b"a writer-only change" in blob
        and b"a writer-only change" not in (static_out.path / ROOT_DIR / "init").read_bytes()
    )


def test_the_runtime_key_follows_the_cpython_flags(
    static_out: StageOutput, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def key() -> str:
        spec = RuntimeSpec(interpreter="static")
        return prepare_runtime(spec, WRITER, Store(cache_dir), Reporter(), cache_dir, True).key

    assert key() == static_out.key
    monkeypatch.setattr(cpython, "CFLAGS", cpython.CFLAGS + " -flto")  # a stale /init otherwise
    assert key() != static_out.key


def test_a_binary_that_fails_the_self_check_is_a_build_error(static_out: StageOutput, qemu: Path) -> None:
    # The cpython stage's own interpreter has no frozen writer and no --python option.
    plain = interpreter_dir(static_out) / cpython.BINARY
    with pytest.raises(CompileError, match="fails its self-check") as caught:
        freeze.self_check(plain, "s390x", writer_modules(WRITER))
    assert "--python" in caught.value.message


def test_the_frozen_table_points_into_one_blob() -> None:
    modules = [
        freeze.FrozenModule("pkg", b"AB", True, "writer"),
        freeze.FrozenModule("pkg.mod", b"CDE", False, "writer"),
    ]
    text = freeze.table_source(modules, 'print("x")\n')
    assert '{"pkg", zfcpdump_frozen_blob + 0, 2, 1, NULL},' in text
    assert '{"pkg.mod", zfcpdump_frozen_blob + 2, 3, 0, NULL},' in text
    assert 'L"print(\\"x\\")\\n"' in text
    assert text.rstrip().endswith("{NULL, NULL, 0, 0, NULL},\n};")


# Shaped like CPython 3.11's: the two lists trim_frozen rewrites, and the empty-table guard.
FREEZE_MODULES = """# the frozen modules
FROZEN = [
    ('stdlib', ['os']),
]
BOOTSTRAP = {
    'zipimport',
}
for lines in ([], [''], ['x']):
        if not lines[0]:
            del lines[0]
"""


def fake_source(tmp_path: Path, configure: str) -> Path:
    """A tarball shaped like CPython's whose configure script is *configure*."""
    tarball = tmp_path / "Python-0.0.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for name, text, mode in (
            ("Python-0.0/configure", f"#!/bin/sh\n{configure}\n", 0o755),
            ("Python-0.0/Modules/Setup.stdlib.in", "@MODULE__STRUCT_TRUE@_struct _struct.c\n", 0o644),
            ("Python-0.0/Modules/Setup.bootstrap.in", "*static*\nposix posixmodule.c\n", 0o644),
            ("Python-0.0/Tools/scripts/freeze_modules.py", FREEZE_MODULES, 0o644),
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


def test_trim_frozen_keeps_only_the_import_system(static_out: StageOutput) -> None:
    frozen = json.loads((interpreter_dir(static_out) / cpython.FROZEN_JSON).read_text())
    assert frozen == sorted(cpython.KEPT_FROZEN.values())


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
