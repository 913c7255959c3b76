"""The kernel source stage: a tree from one of the registered source kinds.

Packages and tarballs are unpacked once into the object store and shared read-only by
every build (kernel builds use O= directories, so the tree stays pristine); a local tree is
used in place.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import debpkg
from ...core.errors import SourceError
from ...core.events import Reporter
from ...core.store import StageOutput
from ..model import Prepared
from . import debian, tarball, tree
from .kinds import KernelSource, SourceKind
from .tree import check_tree

# Every kind of kernel source, in the order the recipe's kernel.source keys are listed.
SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (debian.KIND, tarball.KIND, tree.KIND)}
KERNEL_TREE_FILES = 84000  # linux 6.1: a progress estimate only

__all__ = [
    "SOURCE_KINDS",
    "KernelSource",
    "SourceKind",
    "SourceTree",
    "kernel_version",
    "prepare_source",
    "source_tree",
]


@dataclass(frozen=True)
class SourceTree:
    path: Path
    identity: dict[str, Any]
    version: str


def kernel_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile."""
    fields: dict[str, str] = {}
    with open(tree / "Makefile") as makefile:
        for line in makefile:
            key, _, value = line.partition("=")
            if key.strip() in ("VERSION", "PATCHLEVEL", "SUBLEVEL", "EXTRAVERSION"):
                fields[key.strip()] = value.strip()
            if len(fields) == 4:
                break
    return "{VERSION}.{PATCHLEVEL}.{SUBLEVEL}{EXTRAVERSION}".format(**{"EXTRAVERSION": "", **fields})


def prepare_source(source: KernelSource, cache_dir: Path, reporter: Reporter, offline: bool) -> Prepared:
    """The 'source' stage: the archive's identity keys the unpacked tree (a local tree is used
    in place). Offline, nothing is downloaded: a missing archive is an OfflineMissingError."""
    archive, identity = SOURCE_KINDS[source.kind].acquire(source, cache_dir, reporter, offline)
    if archive is None:
        return Prepared(identity, _nothing_to_produce, in_place=Path(identity["path"]))
    return Prepared(identity, lambda out: _unpack(archive, out, reporter))


def _nothing_to_produce(_out: Path) -> None:
    raise AssertionError("a tree used in place is never produced")


def source_tree(output: StageOutput) -> SourceTree:
    """The kernel tree in a 'source' stage output."""
    path = output.path if output.in_place else output.path / "tree"
    return SourceTree(path, output.inputs, kernel_version(path))


def _unpack(archive: Path, out: Path, reporter: Reporter) -> dict[str, Any]:
    staging = out / "unpack"
    staging.mkdir()
    tarball_path = archive
    if archive.suffix == ".deb":
        members = debpkg.unpack_package(archive, staging / "deb")
        tars = [
            m
            for m in members
            if m.startswith("usr/src/")
            and ".tar" in m
            and (staging / "deb" / m).is_file()
            and not (staging / "deb" / m).is_symlink()  # a link would read a file of the host
        ]
        if not tars:
            raise SourceError(f"{archive.name} holds no kernel tarball under /usr/src")
        tarball_path = staging / "deb" / tars[0]
    with reporter.progress("source", f"unpacking {tarball_path.name}", KERNEL_TREE_FILES, "files") as bar:
        debpkg.unpack_archive(tarball_path, staging / "tree", bar.advance)
    top = list((staging / "tree").iterdir())
    single = len(top) == 1 and top[0].is_dir() and not top[0].is_symlink()
    root = top[0] if single else staging / "tree"
    check_tree(root, f"the unpacked {archive.name}")
    os.rename(root, out / "tree")
    shutil.rmtree(staging)
    return {"kernel_version": kernel_version(out / "tree")}
