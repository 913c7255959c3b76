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
from ...core.store import StageOutput, Store, hash_inputs
from . import debian, tarball, tree
from .kinds import KernelSource, SourceKind
from .tree import check_tree

# Every kind of kernel source, in the order the recipe's kernel.source keys are listed.
SOURCE_KINDS: dict[str, SourceKind] = {k.name: k for k in (debian.KIND, tarball.KIND, tree.KIND)}
KERNEL_TREE_FILES = 84000  # linux 6.1: a progress estimate only

__all__ = ["SOURCE_KINDS", "KernelSource", "SourceKind", "SourceTree", "kernel_version", "peek", "prepare"]


@dataclass(frozen=True)
class SourceTree:
    path: Path
    identity: dict[str, Any]
    version: str
    output: StageOutput | None


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


def prepare(
    source: KernelSource, store: Store, cache_dir: Path, reporter: Reporter, offline: bool = False
) -> SourceTree:
    archive, identity = SOURCE_KINDS[source.kind].acquire(source, cache_dir, reporter, offline)
    if archive is None:  # used in place
        path = Path(identity["path"])
        return SourceTree(path, identity, kernel_version(path), None)
    output = store.produce("source", identity, lambda out: _unpack(archive, out, reporter))
    path = output.path / "tree"
    return SourceTree(path, identity, kernel_version(path), output)


def peek(source: KernelSource, store: Store, cache_dir: Path) -> SourceTree | None:
    """The source tree if it is already available, without downloading or unpacking."""
    identity = SOURCE_KINDS[source.kind].known(source, cache_dir)
    if identity is None:
        return None
    if identity["kind"] == "tree":
        path = Path(identity["path"])
        return SourceTree(path, identity, kernel_version(path), None)
    found = store.peek("source", hash_inputs(identity))
    if found is None:
        return None
    return SourceTree(found / "tree", identity, kernel_version(found / "tree"), None)


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
