"""Every archive goes through one extractor that never writes outside its destination."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from support.buildcli import run_cli
from support.guard import tree_state
from zfcpdump_builder.core import debpkg
from zfcpdump_builder.core.errors import SourceError


def _member(
    tar: tarfile.TarFile, name: str, *, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def crafted_tar(members: list[dict], compression: str = "xz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=f"w:{compression}", format=tarfile.GNU_FORMAT) as tar:
        for member in members:
            _member(tar, **member)
    return buffer.getvalue()


def crafted_deb(data_tar: bytes) -> bytes:
    """A Debian package: an ar archive of debian-binary, control.tar.gz and data.tar.xz."""
    control = crafted_tar(
        [{"name": "./control", "data": b"Package: evil\nVersion: 1\nArchitecture: s390x\n"}], "gz"
    )
    out = b"!<arch>\n"
    for name, body in (
        (b"debian-binary", b"2.0\n"),
        (b"control.tar.gz", control),
        (b"data.tar.xz", data_tar),
    ):
        header = (
            name.ljust(16)
            + b"0".ljust(12)
            + b"0".ljust(6)
            + b"0".ljust(6)
            + b"100644".ljust(8)
            + str(len(body)).encode().ljust(10)
            + b"`\n"
        )
        out += header + body + (b"\n" if len(body) % 2 else b"")
    return out


def escapes(outside: Path) -> dict[str, list[dict]]:
    """Archives that each try to write into *outside* (or read from it)."""
    return {
        "symlink then a file through it": [
            {"name": "linux/escape", "kind": tarfile.SYMTYPE, "link": str(outside)},
            {"name": "linux/escape/file", "data": b"pwned"},
        ],
        "relative symlink then a file through it": [
            {"name": "linux/up", "kind": tarfile.SYMTYPE, "link": "../../../../../../" + str(outside)},
            {"name": "linux/up/file", "data": b"pwned"},
        ],
        "absolute path": [{"name": str(outside / "file"), "data": b"pwned"}],
        "dot-dot": [{"name": "linux/../../file", "data": b"pwned"}],
        "hard link to a symlink outside": [
            {"name": "linux/secret", "kind": tarfile.SYMTYPE, "link": str(outside / "secret")},
            {"name": "linux/copy", "kind": tarfile.LNKTYPE, "link": "linux/secret"},
        ],
        "directory replaced by a symlink": [
            {"name": "linux/dir", "kind": tarfile.DIRTYPE},
            {"name": "linux/dir", "kind": tarfile.SYMTYPE, "link": str(outside)},
            {"name": "linux/dir/file", "data": b"pwned"},
        ],
    }


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret").write_text("do not copy me\n")
    return folder


@pytest.mark.parametrize("case", list(escapes(Path("/x"))))
@pytest.mark.parametrize("container", ["tarball", "deb"])
def test_a_crafted_archive_is_refused(tmp_path: Path, outside: Path, case: str, container: str) -> None:
    data = crafted_tar(escapes(outside)[case])
    archive = tmp_path / ("evil.tar.xz" if container == "tarball" else "evil_1_s390x.deb")
    archive.write_bytes(data if container == "tarball" else crafted_deb(data))
    before = tree_state(outside)
    unpack = debpkg.unpack_archive if container == "tarball" else debpkg.unpack_package
    with pytest.raises(SourceError, match="refusing member"):
        unpack(archive, tmp_path / "dest")
    assert tree_state(outside) == before
    copied = [p for p in (tmp_path / "dest").rglob("*") if p.is_file() and not p.is_symlink()]
    assert all(p.read_bytes() != b"do not copy me\n" for p in copied)


def test_an_ordinary_archive_still_unpacks(tmp_path: Path) -> None:
    data = crafted_tar(
        [
            {"name": "./usr/", "kind": tarfile.DIRTYPE},
            {"name": "./usr/lib/libx.so.1", "data": b"ELF"},
            {"name": "./usr/lib/libx.so", "kind": tarfile.SYMTYPE, "link": "libx.so.1"},
            {"name": "./usr/lib/hard", "kind": tarfile.LNKTYPE, "link": "./usr/lib/libx.so.1"},
            {"name": "./lib64/ld.so", "kind": tarfile.SYMTYPE, "link": "/usr/lib/ld.so"},
        ]
    )
    (tmp_path / "ok.deb").write_bytes(crafted_deb(data))
    names = debpkg.unpack_package(tmp_path / "ok.deb", tmp_path / "root")
    assert names == ["usr", "usr/lib/libx.so.1", "usr/lib/libx.so", "usr/lib/hard", "lib64/ld.so"]
    assert (tmp_path / "root/usr/lib/hard").read_bytes() == b"ELF"
    assert (tmp_path / "root/lib64/ld.so").readlink() == Path("/usr/lib/ld.so")


def test_a_pinned_kernel_tarball_cannot_escape_the_cache(tmp_path: Path, outside: Path) -> None:
    """The real CLI path: kernel.source.tarball with a matching sha256, the source stage refuses."""
    tarball = tmp_path / "linux-evil.tar.xz"
    tarball.write_bytes(crafted_tar(escapes(outside)["symlink then a file through it"]))
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(
        "extends: default\nkernel:\n  source:\n"
        f"    tarball: {tarball}\n    sha256: {hashlib.sha256(tarball.read_bytes()).hexdigest()}\n"
    )
    before = tree_state(outside)
    run = run_cli("build", str(recipe), "--out", str(tmp_path / "out"), cache=tmp_path / "cache")
    assert run.code == SourceError.exit_code, run.stderr
    assert "symlink linux/escape" in run.error()["message"]
    assert tree_state(outside) == before
    assert not list((tmp_path / "cache" / "objects").glob("source-*")), "no partial source object"
    assert run.events[-1]["event"] == "result"
