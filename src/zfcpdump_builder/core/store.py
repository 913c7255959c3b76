"""A content-addressed object store for stage outputs, in the manner of osbuild's.

Each stage output lives in `objects/<stage>-<key>/`, where *key* hashes the stage's declared
inputs. Outputs are produced in `tmp/` and renamed into place only when complete, so an
interrupted build never leaves a partial object behind. Mutable, reusable build trees (such
as the kernel's O= directory, kept for incremental rebuilds) are *workspaces*: locked, never
trusted as outputs themselves.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import HostError

META_FILE = ".stage.json"
# Objects up to this size carry a digest of their files, checked on every use (the kernel
# source tree, 1.5 GB, does not: hashing it would cost more than the build step it saves).
VERIFY_LIMIT = 256 << 20
# The names the store gives its objects and workspaces: nothing else under them is touched.
OBJECT_NAME = re.compile(r"[a-z][a-z0-9_]*-[0-9a-f]{32}")
WORKSPACE_NAME = re.compile(r"kbuild-[0-9a-f]{16}")
# Names the store gives its temporary trees: <stage>-<key>.<pid> and <entry>.prune.<pid>.
TMP_NAME = re.compile(r"(?:([a-z][a-z0-9_]*-[0-9a-f]{32})|runtime-work-\w+|.+\.prune|.+\.corrupt)\.(\d+)")


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zfcpdump-build"


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def hash_inputs(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_digest(*files: Path) -> str:
    """Hash of the builder code that shapes a stage's output, so editing it misses the cache."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cached_file_sha256(path: Path) -> str:
    """file_sha256 for large, immutable downloads: memoised in a sidecar keyed by size and mtime."""
    stat = path.stat()
    stamp = f"{stat.st_size}:{stat.st_mtime_ns}"
    sidecar = path.with_name(path.name + ".sha256")
    try:
        recorded_stamp, digest = sidecar.read_text().split()
        if recorded_stamp == stamp:
            return digest
    except (OSError, ValueError):
        pass
    digest = file_sha256(path)
    with suppress(OSError):
        sidecar.write_text(f"{stamp} {digest}\n")
    return digest


def tree_sha256(root: Path, skip: tuple[str, ...] = ()) -> str:
    """Hash a directory's relative paths, modes, link targets and file contents."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skip:
            continue
        if path.is_symlink():
            digest.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            mode = path.stat().st_mode & 0o777
            digest.update(f"F {rel} {mode:o} {file_sha256(path)}\n".encode())
        elif path.is_dir():
            digest.update(f"D {rel}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class StageOutput:
    stage: str
    key: str
    path: Path
    cached: bool
    seconds: float
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)
    in_place: bool = False  # a directory used where it is (a local kernel tree), not a store object

    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / META_FILE).read_text())


@dataclass(frozen=True)
class CacheEntry:
    """An object or workspace of the store, for listing and pruning."""

    kind: str
    path: Path
    lock: Path
    last_used: float  # the directory's mtime when listed

    @property
    def stage(self) -> str:
        return "kernel" if self.kind == "workspace" else self.path.name.rsplit("-", 1)[0]

    def size(self) -> int:
        return _tree_size(self.path)


def _tree_size(root: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            with suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def mark_used(path: Path) -> None:
    """Record a use in the directory's mtime (what `cache prune --older-than` reads)."""
    with suppress(OSError):
        os.utime(path)


def _subdirs(path: Path) -> list[Path]:
    return [p for p in path.iterdir() if p.is_dir()] if path.is_dir() else []


@contextmanager
def try_file_lock(path: Path) -> Iterator[bool]:
    """The lock at *path* if it is free right now (True), else False without waiting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


class Store:
    """The object store rooted at *root* (see module docstring)."""

    def __init__(self, root: Path, on_corrupt: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.on_corrupt = on_corrupt  # told when a corrupt object is set aside for a rebuild
        self.objects = root / "objects"
        self.tmp = root / "tmp"
        self.locks = root / "locks"

    def object_path(self, stage: str, key: str) -> Path:
        return self.objects / f"{stage}-{key[:32]}"

    def peek(self, stage: str, key: str) -> Path | None:
        """The object for *key* if it is complete, without counting a use (for `plan`)."""
        path = self.object_path(stage, key)
        return path if (path / META_FILE).is_file() else None

    def lookup(self, stage: str, key: str) -> Path | None:
        path = self.object_path(stage, key)
        if not (path / META_FILE).is_file():
            return None
        problem = self.verify(path)
        if problem is not None:
            self._set_aside(path)
            if self.on_corrupt is not None:
                self.on_corrupt(f"cached {stage} object {path.name} is corrupt ({problem}); rebuilding it")
            return None
        mark_used(path)
        return path

    def verify(self, path: Path) -> str | None:
        """Why the object at *path* cannot be trusted, or None (see VERIFY_LIMIT)."""
        try:
            meta = json.loads((path / META_FILE).read_text())
        except (OSError, ValueError) as exc:
            return f"its {META_FILE} cannot be read: {exc}"
        if not isinstance(meta, dict) or "content_size" not in meta:
            return "it was made by an older version, without a digest of its files"
        want = meta.get("content_sha256")
        if want is not None and tree_sha256(path, skip=(META_FILE,)) != want:
            return "its files no longer match the digest recorded when it was made"
        return None

    def _set_aside(self, path: Path) -> None:
        aside = self.tmp / f"{path.name}.corrupt.{os.getpid()}"
        self.tmp.mkdir(parents=True, exist_ok=True)
        with suppress(OSError):
            os.rename(path, aside)
            shutil.rmtree(aside, ignore_errors=True)

    def produce(
        self,
        stage: str,
        inputs: dict[str, Any],
        producer: Callable[[Path], dict[str, Any] | None],
    ) -> StageOutput:
        """Return the cached output for *inputs*, or run *producer(tmpdir)* and commit it.

        The producer may return extra metadata, stored beside the inputs in the object.
        """
        key = hash_inputs(inputs)
        with file_lock(self.locks / f"{stage}-{key[:32]}.lock"):
            found = self.lookup(stage, key)
            if found is not None:
                return StageOutput(stage, key, found, True, 0.0, inputs)
            return self._build(stage, key, inputs, producer)

    def _build(
        self, stage: str, key: str, inputs: dict[str, Any], producer: Callable[[Path], dict[str, Any] | None]
    ) -> StageOutput:
        self.tmp.mkdir(parents=True, exist_ok=True)
        work = self.tmp / f"{stage}-{key[:32]}.{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        started = time.monotonic()
        try:
            extra = producer(work) or {}
            meta: dict[str, Any] = {"stage": stage, "key": key, "inputs": inputs, "outputs": extra}
            size = _tree_size(work)
            meta["content_size"] = size
            if size <= VERIFY_LIMIT:
                meta["content_sha256"] = tree_sha256(work)
            (work / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
            final = self.object_path(stage, key)
            self.objects.mkdir(parents=True, exist_ok=True)
            os.rename(work, final)
        except OSError as exc:
            shutil.rmtree(work, ignore_errors=True)
            if exc.errno == errno.ENOSPC:
                raise HostError(
                    f"no space left on device while building stage {stage} in {self.root}",
                    hint="free some space or set --cache-dir "
                    "to a larger filesystem; nothing partial was kept",
                ) from exc
            raise
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return StageOutput(stage, key, final, False, time.monotonic() - started, inputs)

    @contextmanager
    def workspace(self, name: str) -> Iterator[Path]:
        """A persistent, exclusively locked scratch tree for incremental builds."""
        path = self.root / "workspaces" / name
        with file_lock(self.locks / f"workspace-{name}.lock"):
            path.mkdir(parents=True, exist_ok=True)
            mark_used(path)
            yield path

    def entries(self) -> list[CacheEntry]:
        """Every object and workspace, least recently used first."""
        found = [
            CacheEntry("object", path, self.locks / f"{path.name}.lock", path.stat().st_mtime)
            for path in _subdirs(self.objects)
            if OBJECT_NAME.fullmatch(path.name) and (path / META_FILE).is_file()
        ]
        found += [
            CacheEntry("workspace", path, self.locks / f"workspace-{path.name}.lock", path.stat().st_mtime)
            for path in _subdirs(self.root / "workspaces")
            if WORKSPACE_NAME.fullmatch(path.name)
        ]
        return sorted(found, key=lambda entry: entry.last_used)

    def remove(self, entry: CacheEntry) -> bool:
        """Delete *entry* unless a build holds its lock; it vanishes in one rename."""
        with try_file_lock(entry.lock) as locked:
            if not locked or not entry.path.is_dir():
                return False
            self.tmp.mkdir(parents=True, exist_ok=True)
            doomed = self.tmp / f"{entry.path.name}.prune.{os.getpid()}"
            os.rename(entry.path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)
        return True

    def _debris(self) -> list[tuple[Path, str | None]]:
        """(path, the stage-key of its lock or None) for each left-over whose pid is gone."""
        if not self.tmp.is_dir():
            return []
        found = []
        for entry in self.tmp.iterdir():
            match = TMP_NAME.fullmatch(entry.name)
            if match and not pid_alive(int(match.group(2))):
                found.append((entry, match.group(1)))
        return sorted(found)

    def debris(self) -> list[Path]:
        """What killed builds and prunes left in tmp/ (only our own names, whose pid is gone)."""
        return [entry for entry, _stage_key in self._debris()]

    def clean_stale_tmp(self) -> list[Path]:
        """Remove leftovers of builds and prunes that were killed; return what went."""
        removed = []
        for entry, stage_key in self._debris():
            # a build in another pid namespace may still hold the stage's lock
            lock = self.locks / f"{stage_key}.lock" if stage_key else None
            with try_file_lock(lock) if lock else nullcontext(True) as free:
                if free:
                    _discard(entry)
                    removed.append(entry)
        return removed


def _discard(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """True when a process *pid* exists (owned by anyone)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # no such pid, or one no process can have
        return False
    except PermissionError:
        return True
    return True
