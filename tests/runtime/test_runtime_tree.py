"""The runtime tree: files.json is complete and truthful, the ELF and bytecode are right."""

from __future__ import annotations

import hashlib
import json
import marshal
import shutil
import zipfile
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile

from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import StageOutput, Store, tree_sha256
from zfcpdump_builder.stages.runtime import DEFAULT_PACKAGES, FILES_JSON, ROOT_DIR, RuntimeSpec, build_runtime

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"


def manifest(out: StageOutput) -> dict:
    return json.loads((out.path / FILES_JSON).read_text())


def tree_files(root: Path) -> dict[str, Path]:
    return {"/" + p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file() or p.is_symlink()}


def test_files_json_lists_every_file_with_size_hash_and_reason(runtime_out: StageOutput) -> None:
    data = manifest(runtime_out)
    files = {f["path"]: f for f in data["files"] if f["type"] == "file"}
    on_disk = tree_files(runtime_out.path / ROOT_DIR)
    assert set(files) == set(on_disk)
    for path, record in files.items():
        blob = on_disk[path].read_bytes()
        assert record["size"] == len(blob), path
        assert record["sha256"] == hashlib.sha256(blob).hexdigest(), path
        assert record["why"] and record["origin"], path
    assert data["totals"]["bytes"] == sum(f["size"] for f in files.values())


def test_packages_are_named_with_versions(runtime_out: StageOutput) -> None:
    data = manifest(runtime_out)
    names = {p["name"]: p for p in data["packages"]}
    assert set(names) == set(DEFAULT_PACKAGES)
    assert all(p["version"] and p["arch"] == "s390x" and len(p["sha256"]) == 64 for p in names.values())
    used = {f["origin"] for f in data["files"] if f["type"] == "file"} - {"generated"}
    assert used <= set(names)


def test_no_symlinks_and_the_loader_is_a_real_file(runtime_out: StageOutput) -> None:
    root = runtime_out.path / ROOT_DIR
    assert not [p for p in root.rglob("*") if p.is_symlink()]
    loader = root / "lib" / "ld64.so.1"
    assert loader.is_file() and loader.read_bytes()[:4] == b"\x7fELF"
    with open(root / "usr/bin/python3.11", "rb") as handle:
        interp = [s.get_interp_name() for s in ELFFile(handle).iter_segments() if s["p_type"] == "PT_INTERP"]
    assert interp == ["/lib/ld64.so.1"]


def _needed(path: Path) -> tuple[str, list[str], str | None]:
    with open(path, "rb") as handle:
        elf = ELFFile(handle)
        needed, soname = [], None
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags():
                    if tag.entry.d_tag == "DT_NEEDED":
                        needed.append(tag.needed)
                    elif tag.entry.d_tag == "DT_SONAME":
                        soname = tag.soname
        return elf["e_machine"], needed, soname


def test_every_dt_needed_resolves_inside_the_tree(runtime_out: StageOutput) -> None:
    root = runtime_out.path / ROOT_DIR
    elves = [p for p in root.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]
    names = {p.name for p in elves} | {s for p in elves if (s := _needed(p)[2])}
    dirs = {"lib/s390x-linux-gnu", "usr/lib/s390x-linux-gnu", "lib"}
    for elf in elves:
        machine, needed, _ = _needed(elf)
        assert machine == "EM_S390", elf
        for soname in needed:
            assert soname in names, f"{elf.name} needs {soname}"
            assert any((root / d / soname).is_file() for d in dirs), f"{soname} not in a search dir"
    assert {"_ctypes", "mmap"} <= {p.name.split(".")[0] for p in elves}
    assert "libffi.so.8" in names


def _code_filenames(code: object) -> set[str]:
    names = {code.co_filename}
    for const in code.co_consts:
        if hasattr(const, "co_filename"):
            names |= _code_filenames(const)
    return names


def test_bytecode_is_stored_hash_based_and_names_image_paths(runtime_out: StageOutput) -> None:
    data = manifest(runtime_out)
    zpath = runtime_out.path / ROOT_DIR / data["python"]["zip"].lstrip("/")
    with zipfile.ZipFile(zpath) as archive:
        infos = archive.infolist()
        assert infos and all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert [i.filename for i in infos] == sorted(i.filename for i in infos)
        for info in infos:
            blob = archive.read(info)
            assert int.from_bytes(blob[:2], "little") == data["python"]["magic"], info.filename
            assert int.from_bytes(blob[4:8], "little") == 1, "unchecked hash-based pyc"
            names = _code_filenames(marshal.loads(blob[16:]))
            assert names == {data["python"]["zip"] + "/" + info.filename[:-1]}, names
    assert str(runtime_out.path) not in zpath.read_bytes().decode("latin-1")


def test_modules_list_explains_each_module(runtime_out: StageOutput) -> None:
    modules = {m["name"]: m for m in manifest(runtime_out)["modules"]}
    for name in ("encodings", "encodings.utf_8", "ctypes", "mmap", "zfcpdump_writer.main"):
        assert name in modules and modules[name]["why"], name
    assert modules["mmap"]["kind"] == "extension"
    assert modules["os"]["kind"] == "frozen" and "member" not in modules["os"]
    assert "imported by zfcpdump_writer.system" in modules["ctypes"]["why"]  # a lazy import
    assert "subprocess" not in modules  # os.popen's lazy import does not count
    assert "_py_abc" not in modules  # abc's ImportError fallback does not count


def test_two_builds_give_the_same_tree(runtime_out: StageOutput, tmp_path: Path, cache_dir: Path) -> None:
    again = build_runtime(RuntimeSpec(), WRITER, Store(tmp_path / "store"), Reporter(), cache_dir)
    assert not again.cached
    assert tree_sha256(again.path / ROOT_DIR) == tree_sha256(runtime_out.path / ROOT_DIR)
    assert (again.path / FILES_JSON).read_text() == (runtime_out.path / FILES_JSON).read_text()


def test_a_writer_change_reuses_the_unpacked_packages(
    runtime_out: StageOutput, store: Store, tmp_path: Path, cache_dir: Path
) -> None:
    # Other tests may add sysroots of other specs to this store: none may be added or changed.
    sysroots = sorted(store.objects.glob("sysroot-*"))
    assert sysroots
    before = [tree_sha256(path / "root") for path in sysroots]
    writer = tmp_path / WRITER.name
    shutil.copytree(WRITER, writer, ignore=shutil.ignore_patterns("__pycache__"))
    with (writer / "__init__.py").open("a") as init:
        init.write("CHANGED_FOR_THE_TEST = True\n")
    changed = build_runtime(RuntimeSpec(), writer, store, Reporter(), cache_dir)
    assert not changed.cached
    assert sorted(store.objects.glob("sysroot-*")) == sysroots
    assert [tree_sha256(path / "root") for path in sysroots] == before
    zpath = changed.path / ROOT_DIR / manifest(changed)["python"]["zip"].lstrip("/")
    with zipfile.ZipFile(zpath) as archive:
        assert b"CHANGED_FOR_THE_TEST" in archive.read("zfcpdump_writer/__init__.pyc")
