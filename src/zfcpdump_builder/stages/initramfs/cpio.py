"""The rd's entry model and its deterministic cpio "newc" writer.

`write_cpio` (compress.py) is the reusable low-level writer: give it `RdEntry` objects (or any
object with the same attributes) for files, directories, symlinks and character devices. Every
member gets uid/gid 0, mtime = the given epoch, inode numbers 1, 2, 3... in sorted path order,
and a correct nlink (files 1, directories 2 + subdirectories). Missing parent directories are
added. Device nodes are archive members, so nothing needs root or mknod.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libarchive
from libarchive import ffi
from libarchive.entry import ArchiveEntry, FileType

PAGE = 4096


KINDS = ("file", "dir", "symlink", "chr")


FILETYPES = {
    "file": FileType.REGULAR_FILE,
    "dir": FileType.DIRECTORY,
    "symlink": FileType.SYMBOLINK_LINK,
    "chr": FileType.CHAR_DEVICE,
}


@dataclass(frozen=True)
class RdEntry:
    """One archive member. Give a regular file its bytes as *data* or a host file as *source*."""

    path: str
    kind: str  # file | dir | symlink | chr
    mode: int = 0o755
    data: bytes = b""
    target: str = ""
    rdev: tuple[int, int] = (0, 0)
    source: Path | None = None
    origin: str = ""

    def content(self) -> bytes:
        if self.kind == "symlink":
            return self.target.encode()
        if self.kind != "file":
            return b""
        return self.source.read_bytes() if self.source is not None else self.data


def norm_path(path: str) -> str:
    parts = [p for p in str(path).split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise ValueError(f"bad archive path {path!r}")
    return "/".join(parts)


def as_entry(obj: Any) -> RdEntry:
    """Accept our RdEntry or any object with path/kind/mode/data/target/rdev attributes."""
    kind = getattr(obj, "kind", "")
    if kind not in KINDS:
        raise ValueError(f"{getattr(obj, 'path', obj)!r}: entry kind must be one of {KINDS}, not {kind!r}")
    return RdEntry(
        norm_path(obj.path),
        kind,
        int(getattr(obj, "mode", 0o755)) & 0o7777,
        bytes(getattr(obj, "data", b"") or b""),
        str(getattr(obj, "target", "") or ""),
        tuple(getattr(obj, "rdev", (0, 0)) or (0, 0)),
        getattr(obj, "source", None),
        str(getattr(obj, "origin", "") or ""),
    )


def sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


def complete_tree(entries: Iterable[Any]) -> list[RdEntry]:
    """Normalised, de-duplicated, parent-complete entries in archive order."""
    found: dict[str, RdEntry] = {}
    for obj in entries:
        entry = as_entry(obj)
        if entry.path in found:
            raise ValueError(f"duplicate archive member {entry.path!r}")
        found[entry.path] = entry
    for path in list(found):
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            existing = found.get(parent)
            if existing is None:
                found[parent] = RdEntry(parent, "dir", 0o755, origin="parent directory")
            elif existing.kind != "dir":
                raise ValueError(f"{parent!r} is a {existing.kind} but {path!r} is inside it")
    return [found[p] for p in sorted(found, key=sort_key)]


def nlinks(entries: Sequence[RdEntry]) -> dict[str, int]:
    counts = {e.path: (2 if e.kind == "dir" else 1) for e in entries}
    for entry in entries:
        if entry.kind == "dir" and "/" in entry.path:
            counts[entry.path.rsplit("/", 1)[0]] += 1
    return counts


def _bind(name: str, argtypes: list[Any]) -> Any:
    func = getattr(ffi.libarchive, name)
    func.argtypes = argtypes
    func.restype = None
    return func


_set_ino = _bind("archive_entry_set_ino64", [ctypes.c_void_p, ctypes.c_int64])


_set_nlink = _bind("archive_entry_set_nlink", [ctypes.c_void_p, ctypes.c_uint])


_set_dev = _bind("archive_entry_set_dev", [ctypes.c_void_p, ctypes.c_uint64])


_set_symlink = _bind("archive_entry_copy_symlink", [ctypes.c_void_p, ctypes.c_char_p])


def cpio_bytes(entries: Iterable[Any], mtime: int = 0) -> bytes:
    """The uncompressed newc archive of *entries* (see the module docstring for the rules)."""
    tree = complete_tree(entries)
    links = nlinks(tree)
    chunks: list[bytes] = []

    def collect(data: bytes) -> int:
        chunks.append(bytes(data))
        return len(data)

    with libarchive.custom_writer(collect, "cpio_newc") as archive:
        for ino, entry in enumerate(tree, start=1):
            _write_member(archive._pointer, entry, ino, links[entry.path], mtime)
    return b"".join(chunks)


def _write_member(archive_p: Any, entry: RdEntry, ino: int, nlink: int, mtime: int) -> None:
    data = entry.content() if entry.kind == "file" else b""
    member = ArchiveEntry(
        pathname=entry.path,
        size=len(data),
        filetype=FILETYPES[entry.kind],
        perm=entry.mode,
        uid=0,
        gid=0,
        mtime=mtime,
    )
    pointer = member._entry_p
    _set_ino(pointer, ino)
    _set_nlink(pointer, nlink)
    _set_dev(pointer, 0)
    if entry.kind == "symlink":
        _set_symlink(pointer, entry.target.encode())
    if entry.kind == "chr":
        member.rdev = entry.rdev
    ffi.write_header(archive_p, pointer)
    if data:
        ffi.write_data(archive_p, data, len(data))
    ffi.write_finish_entry(archive_p)
