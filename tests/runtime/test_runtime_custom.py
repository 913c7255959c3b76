"""The custom interpreter: libpython3.11.a relinked with only the built-ins the closure needs."""

from __future__ import annotations

import ast
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from support import chroot
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store
from zfcpdump_builder.stages.runtime import FILES_JSON, ROOT_DIR, RuntimeSpec, build_runtime, writer_modules

pytestmark = pytest.mark.slow
WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"


@pytest.fixture(scope="module")
def custom_out(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> StageOutput:
    if shutil.which("s390x-linux-gnu-gcc") is None:
        pytest.skip("s390x-linux-gnu-gcc is not installed")
    store = Store(tmp_path_factory.mktemp("custom-store"))
    return build_runtime(RuntimeSpec(interpreter="custom"), WRITER, store, Reporter(), cache_dir)


def needed(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        return [
            t.needed
            for s in ELFFile(handle).iter_sections()
            if isinstance(s, DynamicSection)
            for t in s.iter_tags()
            if t.entry.d_tag == "DT_NEEDED"
        ]


def test_the_custom_binary_is_smaller_and_needs_only_libc(
    custom_out: StageOutput, runtime_out: StageOutput
) -> None:
    custom = custom_out.path / ROOT_DIR / "usr/bin/python3.11"
    packaged = runtime_out.path / ROOT_DIR / "usr/bin/python3.11"
    assert needed(custom) == ["libc.so.6"]
    assert custom.stat().st_size < packaged.stat().st_size - 1_000_000
    libs = {p.name for p in (custom_out.path / ROOT_DIR).rglob("*.so*")}
    assert not {"libm.so.6", "libz.so.1", "libexpat.so.1"} & libs


def test_the_table_keeps_the_closure_and_drops_the_rest(custom_out: StageOutput) -> None:
    data = json.loads((custom_out.path / FILES_JSON).read_text())
    table = set(data["python"]["custom"]["builtins"])
    builtins = {m["name"] for m in data["modules"] if m["kind"] == "builtin"}
    assert builtins <= table and {"zlib", "_struct", "posix", "marshal"} <= table
    assert not {"unicodedata", "pyexpat", "_sha256", "_socket", "_elementtree"} & table


def test_the_custom_runtime_runs_the_writer_in_a_chroot(
    custom_out: StageOutput, qemu: Path, tmp_path: Path
) -> None:
    box = chroot.make_root(custom_out.path / ROOT_DIR, tmp_path / "root", qemu)
    modules = writer_modules(WRITER)
    code = (
        f"import sys\nfor m in {modules!r}: __import__(m)\n"
        "from zfcpdump_writer.system import System\nassert System().native().libc.getpid() > 0\n"
        "print(repr(sorted(sys.builtin_module_names)))"
    )
    result = chroot.run(box, ["/usr/bin/python3.11", "-ISB", "-c", code])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads((custom_out.path / FILES_JSON).read_text())
    assert ast.literal_eval(result.stdout.strip()) == sorted(data["python"]["custom"]["builtins"])


def test_the_custom_link_is_reproducible(custom_out: StageOutput, tmp_path: Path, cache_dir: Path) -> None:
    again = build_runtime(
        RuntimeSpec(interpreter="custom"), WRITER, Store(tmp_path / "s"), Reporter(), cache_dir
    )
    digest = [
        hashlib.sha256((o.path / ROOT_DIR / "usr/bin/python3.11").read_bytes()).hexdigest()
        for o in (custom_out, again)
    ]
    assert digest[0] == digest[1]
