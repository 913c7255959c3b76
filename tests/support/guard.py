"""Proof that a command changed nothing it does not own: snapshots of trees, and odd mounts."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def tree_state(root: Path) -> dict[str, str]:
    """Every entry below *root* (itself included): type, mode, and content hash or link target."""
    state: dict[str, str] = {}
    if not os.path.lexists(root):
        return state
    for path in [root, *sorted(root.rglob("*"))] if root.is_dir() and not root.is_symlink() else [root]:
        st = os.lstat(path)
        rel = path.relative_to(root).as_posix() if path != root else "."
        if stat.S_ISLNK(st.st_mode):
            state[rel] = f"link {os.readlink(path)}"
        elif stat.S_ISREG(st.st_mode):
            state[rel] = f"file {st.st_mode:o} {hashlib.sha256(path.read_bytes()).hexdigest()}"
        else:
            state[rel] = f"node {st.st_mode:o}"
    return state


def top_level_state(root: Path = Path("/")) -> dict[str, str]:
    """The names and types directly in *root*, and the mtimes of its non-directories: cheap
    evidence that `/` was not touched. (A directory's mtime moves whenever anything on the
    machine makes a file in it, /tmp above all, so it is no evidence.)"""
    state = {}
    for name in sorted(os.listdir(root)):
        st = os.lstat(root / name)
        state[name] = f"{st.st_mode:o}" + ("" if stat.S_ISDIR(st.st_mode) else f" {st.st_mtime_ns}")
    return state


@contextmanager
def tmpfs(
    where: Path,
    size: str = "1m",
    *,
    read_only: bool = False,
    full: bool = False,
    seed: dict[str, bytes] | None = None,
) -> Iterator[Path]:
    """A tmpfs at *where*: seeded with files, then filled up or remounted read-only."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], check=True)
    try:
        for name, data in (seed or {}).items():
            (where / name).parent.mkdir(parents=True, exist_ok=True)
            (where / name).write_bytes(data)
        if full:
            _fill(where / ".filler")
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(path: Path) -> None:
    """Write until the filesystem is full, down to the last byte (unbuffered, so close is safe)."""
    with open(path, "wb", buffering=0) as out:
        for size in (1 << 16, 4096, 1):
            try:
                while out.write(b"\0" * size):
                    pass
            except OSError:
                continue
