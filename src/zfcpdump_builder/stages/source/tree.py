"""kernel.source.tree: a clean local kernel tree, used in place and read-only."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ...core.errors import SourceError
from ...core.events import Reporter
from .kinds import Acquired, KernelSource, SourceKind


def check_tree(tree: Path, what: str) -> None:
    if not (tree / "Makefile").is_file() or not (tree / "arch" / "s390").is_dir():
        raise SourceError(f"{what} does not look like a Linux source tree with arch/s390 ({tree})")


def acquire(source: KernelSource, _cache_dir: Path, _reporter: Reporter, _offline: bool) -> Acquired:
    tree = Path(source.location).resolve()
    if not tree.is_dir():
        raise SourceError(f"kernel.source.tree {tree} does not exist")
    check_tree(tree, "kernel.source.tree")
    if (tree / ".config").exists():
        raise SourceError(
            f"kernel tree {tree} has a .config: out-of-tree (O=) builds need a clean source",
            hint=f"run `make -C {tree} mrproper` first",
        )
    return None, {"kind": "tree", "path": str(tree), "fingerprint": _fingerprint(tree)}


def _fingerprint(tree: Path) -> str:
    """Cheap change detection for a local tree: relative paths, sizes and mtimes."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name), follow_symlinks=False)
            rel = os.path.relpath(os.path.join(root, name), tree)
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


KIND = SourceKind(
    name="tree",
    key_kind="path",
    help="A local, already unpacked kernel tree (used read-only).",
    acquire=acquire,
    local_path=True,
)
