"""The kernel source stage: a Debian source package, a checksummed tarball, or a local tree.

Packages and tarballs are unpacked once into the object store and shared read-only by
every build (kernel builds use O= directories, so the tree stays pristine).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import debpkg
from ..core.errors import SourceError
from ..core.events import Reporter
from ..core.store import StageOutput, Store, cached_file_sha256, file_sha256, hash_inputs
from ..recipe.resolved import KernelSource


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


def _check_tree(tree: Path, what: str) -> None:
    if not (tree / "Makefile").is_file() or not (tree / "arch" / "s390").is_dir():
        raise SourceError(f"{what} does not look like a Linux source tree with arch/s390 ({tree})")


def prepare(
    source: KernelSource, store: Store, cache_dir: Path, reporter: Reporter, offline: bool = False
) -> SourceTree:
    if source.kind == "tree":
        return _local_tree(Path(source.location))
    if source.kind == "debian":
        archive, identity = _debian_archive(source, cache_dir, offline, reporter)
    else:
        archive, identity = _tarball(source, cache_dir, reporter, offline)
    output = store.produce("source", identity, lambda out: _unpack(archive, out, reporter))
    tree = output.path / "tree"
    return SourceTree(tree, identity, kernel_version(tree), output)


def _local_tree(tree: Path) -> SourceTree:
    tree = tree.resolve()
    if not tree.is_dir():
        raise SourceError(f"kernel.source.tree {tree} does not exist")
    _check_tree(tree, "kernel.source.tree")
    if (tree / ".config").exists():
        raise SourceError(
            f"kernel tree {tree} has a .config: out-of-tree (O=) builds need a clean source",
            hint=f"run `make -C {tree} mrproper` first",
        )
    identity = {"kind": "tree", "path": str(tree), "fingerprint": _tree_fingerprint(tree)}
    return SourceTree(tree, identity, kernel_version(tree), None)


def _tree_fingerprint(tree: Path) -> str:
    """Cheap change detection for a local tree: relative paths, sizes and mtimes."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name), follow_symlinks=False)
            rel = os.path.relpath(os.path.join(root, name), tree)
            digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _debian_archive(
    source: KernelSource, cache_dir: Path, offline: bool, reporter: Reporter | None = None
) -> tuple[Path, dict[str, Any]]:
    # Source packages are arch "all": the host's own lists carry the newest upload.
    arch = debpkg.host_arch()
    if offline:
        found = sorted((cache_dir / "debs" / arch).glob(f"{source.location}_*_all.deb"))
        if not found:
            raise SourceError(
                f"offline build, but {source.location} is not in the cache ({cache_dir / 'debs'})",
                hint="run once online, or use a tarball/tree source",
            )
        deb = found[-1]
    else:
        deb = debpkg.fetch_packages([source.location], arch, cache_dir, reporter)[0]
    identity = {
        "kind": "debian",
        "package": source.location,
        "file": deb.name,
        "sha256": cached_file_sha256(deb),
    }
    return deb, identity


def _tarball(
    source: KernelSource, cache_dir: Path, reporter: Reporter, offline: bool
) -> tuple[Path, dict[str, Any]]:
    expected = source.sha256 or ""
    if "://" in source.location:
        path = _download(source.location, expected, cache_dir, reporter, offline)
    else:
        path = Path(source.location)
        if not path.is_file():
            raise SourceError(f"kernel tarball {path} does not exist")
        actual = file_sha256(path)
        if actual != expected:
            raise SourceError(
                f"sha256 mismatch for {path}: expected {expected}, got {actual}",
                hint="nothing was unpacked; fix kernel.source.sha256 or the file",
            )
    return path, {"kind": "tarball", "sha256": expected}


def _download(url: str, expected: str, cache_dir: Path, reporter: Reporter, offline: bool) -> Path:
    downloads = cache_dir / "downloads"
    final = downloads / f"{expected}.tar"
    if final.is_file():
        return final
    if offline:
        raise SourceError(f"offline build, but {url} is not in the download cache")
    downloads.mkdir(parents=True, exist_ok=True)
    partial = downloads / f"{expected}.part.{os.getpid()}"
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            with reporter.progress("source", f"downloading {url}", total, "bytes") as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    bar.advance(len(block))
    except (urllib.error.URLError, OSError) as exc:
        partial.unlink(missing_ok=True)
        raise SourceError(f"cannot download {url}: {exc}") from None
    if digest.hexdigest() != expected:
        partial.unlink(missing_ok=True)
        raise SourceError(
            f"sha256 mismatch for {url}: expected {expected}, got {digest.hexdigest()}",
            hint="the download was discarded",
        )
    os.rename(partial, final)
    return final


def _unpack(archive: Path, out: Path, reporter: Reporter) -> dict[str, Any]:
    staging = out / "unpack"
    staging.mkdir()
    tarball = archive
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
        tarball = staging / "deb" / tars[0]
    _extract_tarball(tarball, staging / "tree", reporter)
    top = [p for p in (staging / "tree").iterdir()]
    single = len(top) == 1 and top[0].is_dir() and not top[0].is_symlink()
    root = top[0] if single else staging / "tree"
    _check_tree(root, f"the unpacked {archive.name}")
    os.rename(root, out / "tree")
    shutil.rmtree(staging)
    return {"kernel_version": kernel_version(out / "tree")}


KERNEL_TREE_FILES = 84000  # linux 6.1: a progress estimate only


def _extract_tarball(tarball: Path, dest: Path, reporter: Reporter) -> None:
    with reporter.progress("source", f"unpacking {tarball.name}", KERNEL_TREE_FILES, "files") as bar:
        debpkg.unpack_archive(tarball, dest, bar.advance)


def peek(source: KernelSource, store: Store, cache_dir: Path) -> SourceTree | None:
    """The source tree if it is already available, without downloading or unpacking."""
    if source.kind == "tree":
        return _local_tree(Path(source.location))
    if source.kind == "debian":
        found = sorted((cache_dir / "debs" / debpkg.host_arch()).glob(f"{source.location}_*_all.deb"))
        if not found:
            return None
        identity: dict[str, Any] = {
            "kind": "debian",
            "package": source.location,
            "file": found[-1].name,
            "sha256": cached_file_sha256(found[-1]),
        }
    else:
        identity = {"kind": "tarball", "sha256": source.sha256}
    key = hash_inputs(identity)
    path = store.peek("source", key)
    if path is None:
        return None
    return SourceTree(path / "tree", identity, kernel_version(path / "tree"), None)
