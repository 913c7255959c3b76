"""Bad runtime inputs fail with a clear error that names the culprit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zfcpdump_builder.core import debpkg
from zfcpdump_builder.core.errors import CompileError, RecipeError, SourceError
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import Store
from zfcpdump_builder.stages import pycompile
from zfcpdump_builder.stages.runtime import DEFAULT_PACKAGES, ROOT_DIR, RuntimeSpec, build_runtime

WRITER = Path(__file__).resolve().parents[2] / "src" / "zfcpdump_writer"


@pytest.fixture(scope="session")
def s390x_debs(cache_dir: Path) -> dict[str, Path]:
    paths = debpkg.fetch_packages(list(DEFAULT_PACKAGES), "s390x", cache_dir)
    return dict(zip(DEFAULT_PACKAGES, paths, strict=True))


@pytest.fixture(scope="session")
def sysroot(s390x_debs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sysroot")
    for deb in s390x_debs.values():
        debpkg.unpack_package(deb, root)
    return root


def debs_dir(
    tmp_path: Path, debs: dict[str, Path], drop: tuple[str, ...] = (), add: tuple[Path, ...] = ()
) -> Path:
    folder = tmp_path / "debs"
    folder.mkdir()
    for name, path in debs.items():
        if name not in drop:
            shutil.copy(path, folder / path.name)
    for path in add:
        shutil.copy(path, folder / path.name)
    return folder


def build(spec: RuntimeSpec, tmp_path: Path, cache_dir: Path):  # noqa: ANN201
    return build_runtime(spec, WRITER, Store(tmp_path / "store"), Reporter(), cache_dir)


def test_an_unknown_package_is_named(tmp_path: Path, cache_dir: Path) -> None:
    spec = RuntimeSpec(packages=(*DEFAULT_PACKAGES, "zfcpdump-no-such-package"))
    with pytest.raises(SourceError, match="zfcpdump-no-such-package"):
        build(spec, tmp_path, cache_dir)


def test_a_package_of_the_wrong_architecture_is_named(
    tmp_path: Path, cache_dir: Path, s390x_debs: dict[str, Path]
) -> None:
    amd64 = debpkg.fetch_packages(["python3.11-minimal"], "amd64", cache_dir)[0]
    folder = debs_dir(tmp_path, s390x_debs, drop=("python3.11-minimal",), add=(amd64,))
    with pytest.raises(SourceError, match=r"python3\.11-minimal_.*_amd64\.deb is for architecture amd64"):
        build(RuntimeSpec(kind="debs", path=folder), tmp_path, cache_dir)


def test_a_sysroot_binary_of_the_wrong_architecture_is_named(
    tmp_path: Path, cache_dir: Path, sysroot: Path
) -> None:
    root = tmp_path / "root"
    shutil.copytree(sysroot, root, symlinks=True)
    (root / "usr/bin/python3.11").write_bytes(Path("/usr/bin/python3.11").resolve().read_bytes())
    with pytest.raises(SourceError, match=r"/usr/bin/python3\.11 .*EM_X86_64.*s390x needs EM_S390"):
        build(RuntimeSpec(kind="sysroot", path=root), tmp_path, cache_dir)


def test_an_unresolvable_dt_needed_of_an_extension_is_named(
    tmp_path: Path, cache_dir: Path, s390x_debs: dict[str, Path]
) -> None:
    folder = debs_dir(tmp_path, s390x_debs, drop=("libffi8",))
    with pytest.raises(SourceError, match=r"_ctypes\.cpython-311-s390x-linux-gnu\.so needs libffi\.so\.8"):
        build(RuntimeSpec(kind="debs", path=folder), tmp_path, cache_dir)


def test_a_missing_interpreter_names_its_package(
    tmp_path: Path, cache_dir: Path, s390x_debs: dict[str, Path]
) -> None:
    folder = debs_dir(tmp_path, s390x_debs, drop=("python3.11-minimal",))
    with pytest.raises(SourceError, match=r"python3\.11-minimal provides it"):
        build(RuntimeSpec(kind="debs", path=folder), tmp_path, cache_dir)


def test_a_host_with_other_bytecode_is_refused(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pycompile, "host_magic", lambda: 3531)
    with pytest.raises(CompileError, match=r"writes magic 3531.*loads only magic 3495"):
        build(RuntimeSpec(), tmp_path, cache_dir)


def test_a_target_with_other_bytecode_is_refused(tmp_path: Path, cache_dir: Path, sysroot: Path) -> None:
    """Without running the target, the magic comes from its own importlib source."""
    root = tmp_path / "root"
    shutil.copytree(sysroot, root, symlinks=True)
    source = root / "usr/lib/python3.11/importlib/_bootstrap_external.py"
    text = source.read_text()
    assert "MAGIC_NUMBER = (3495)" in text
    source.write_text(text.replace("MAGIC_NUMBER = (3495)", "MAGIC_NUMBER = (3413)"))
    with pytest.raises(CompileError, match=r"loads only magic 3413 \(read by static tables\)"):
        build(RuntimeSpec(kind="sysroot", path=root, probe=False), tmp_path, cache_dir)


def test_a_sysroot_gives_the_same_tree_as_packages(tmp_path: Path, cache_dir: Path, sysroot: Path) -> None:
    from zfcpdump_builder.core.store import tree_sha256

    from_root = build(RuntimeSpec(kind="sysroot", path=sysroot), tmp_path / "a", cache_dir)
    from_debs = build(RuntimeSpec(), tmp_path / "b", cache_dir)
    assert tree_sha256(from_root.path / ROOT_DIR) == tree_sha256(from_debs.path / ROOT_DIR)


def test_static_tables_give_the_same_tree_as_the_probe(tmp_path: Path, cache_dir: Path) -> None:
    from zfcpdump_builder.core.store import tree_sha256

    static = build(RuntimeSpec(probe=False), tmp_path / "a", cache_dir)
    probed = build(RuntimeSpec(), tmp_path / "b", cache_dir)
    assert tree_sha256(static.path / ROOT_DIR) == tree_sha256(probed.path / ROOT_DIR)


@pytest.mark.parametrize(
    "spec, message",
    [
        (RuntimeSpec(kind="conda"), "runtime.kind"),
        (RuntimeSpec(kind="debs"), "needs runtime.path"),
        (RuntimeSpec(bytecode="squashfs"), "zip or files"),
        (RuntimeSpec(python="pypy3"), "python3.11"),
    ],
)
def test_bad_specs_are_recipe_errors(
    tmp_path: Path, cache_dir: Path, spec: RuntimeSpec, message: str
) -> None:
    with pytest.raises(RecipeError, match=message):
        build(spec, tmp_path, cache_dir)
