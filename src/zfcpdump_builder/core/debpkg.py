"""Fetch foreign-arch Debian packages with a private apt state, and unpack .deb/.rpm payloads.

The host's dpkg database is never touched: apt gets its own lists and cache directories,
so `apt-get download` works for s390x on an x86_64 host.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import libarchive

from .errors import HostError, OfflineMissingError, SourceError
from .store import file_lock

SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_PARTS = "/etc/apt/sources.list.d"


def host_arch() -> str:
    """The host's Debian architecture name (amd64, arm64, s390x …)."""
    try:
        result = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        import platform

        return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def apt_options(arch: str, state_dir: Path) -> list[str]:
    """apt options that keep every piece of state under *state_dir*."""
    return [
        "-o",
        f"APT::Architecture={arch}",
        "-o",
        f"APT::Architectures={arch}",
        "-o",
        f"Dir::State::Lists={state_dir / 'lists'}",
        "-o",
        f"Dir::State::status={state_dir / 'status'}",
        "-o",
        f"Dir::Cache={state_dir / 'cache'}",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        "APT::Sandbox::User=root",
    ]


def _prepare_state(state_dir: Path) -> None:
    (state_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state_dir / "status").touch()


def _run_apt(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("apt-get") is None:
        raise HostError(
            "apt-get is not available on this host; use a runtime/kernel source of kind "
            "'debs' (a directory of .deb/.rpm files) or 'sysroot' instead"
        )
    return subprocess.run(["apt-get", *args], cwd=cwd, text=True, capture_output=True, check=False)


def update_lists(arch: str, state_dir: Path) -> None:
    """Run `apt-get update` for *arch* into the private state (once; `refresh` redoes it)."""
    _prepare_state(state_dir)
    marker = state_dir / "lists" / ".updated"
    if marker.exists():
        return
    result = _run_apt([*apt_options(arch, state_dir), "update"])
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-8:])
        raise SourceError(f"apt-get update for {arch} failed:\n{tail}")
    marker.touch()


def _download(names: list[str], arch: str, state_dir: Path, dest: Path) -> subprocess.CompletedProcess[str]:
    return _run_apt([*apt_options(arch, state_dir), "download", *names], cwd=dest)


def package_version(name: str, arch: str, state_dir: Path) -> str | None:
    """The candidate version apt would download, or None when unknown."""
    result = subprocess.run(
        ["apt-cache", *apt_options(arch, state_dir), "policy", name],
        text=True,
        capture_output=True,
        check=False,
    )
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            return None if version == "(none)" else version
    return None


def _find_downloaded(name: str, arch: str, dest: Path) -> Path | None:
    matches = sorted(dest.glob(f"{name}_*_{arch}.deb")) + sorted(dest.glob(f"{name}_*_all.deb"))
    return matches[-1] if matches else None


def cached_package(name: str, arch: str, cache_dir: Path) -> Path | None:
    """The newest downloaded *name* for *arch* (or arch all) in the cache, without fetching."""
    return _find_downloaded(name, arch, cache_dir / "debs" / arch)


def fetch_packages(
    names: list[str],
    arch: str,
    cache_dir: Path,
    reporter: object | None = None,
    offline: bool = False,
) -> list[Path]:
    """Download the named packages for *arch* into *cache_dir*/debs; return their paths.

    Already-downloaded packages are reused, so offline re-runs work once the cache is warm;
    with *offline*, a package missing from the cache is an error, and apt is never run.
    """
    dest = cache_dir / "debs" / arch
    if offline:  # a look in the cache only: no apt, no lock file, no directory made
        return _downloaded(names, arch, dest, offline=True)
    dest.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / f"apt-{arch}.lock"):
        missing = [n for n in names if _find_downloaded(n, arch, dest) is None]
        if missing:
            state_dir = cache_dir / f"apt-{arch}"
            _say(reporter, f"[fetch] downloading {', '.join(missing)} ({arch})")
            update_lists(arch, state_dir)
            result = _download(missing, arch, state_dir, dest)
            if result.returncode != 0:
                _raise_download_error(missing, arch, result.stderr)
        return _downloaded(names, arch, dest, offline=False)


def _downloaded(names: list[str], arch: str, dest: Path, offline: bool) -> list[Path]:
    found = {name: _find_downloaded(name, arch, dest) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing and offline:
        raise OfflineMissingError(
            f"offline build, but {len(missing)} {arch} package(s) are not in the "
            f"cache ({dest}): {', '.join(missing)}",
            hint="run the build once online with the same --cache-dir",
        )
    if missing:
        raise SourceError(f"package {missing[0]!r} ({arch}) was not downloaded")
    return [path for path in found.values() if path is not None]


def _say(reporter: object | None, text: str) -> None:
    info = getattr(reporter, "info", None)
    if info is not None:
        info(text)


def _raise_download_error(names: list[str], arch: str, stderr: str) -> None:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("E:")] or stderr.splitlines()[-4:]
    raise SourceError(
        f"could not download {', '.join(names)} for {arch}: "
        + " ".join(lines)
        + f"\n(check the package names exist for architecture {arch} in your apt sources)"
    )


def _payload_entries(pkg: Path) -> Iterator[libarchive.ArchiveEntry]:
    """Yield the entries of the data payload of a .deb (ar + data.tar.*) or an .rpm (cpio)."""
    if pkg.suffix == ".rpm":
        with libarchive.file_reader(str(pkg)) as archive:
            yield from archive
        return
    with libarchive.file_reader(str(pkg)) as outer:
        for member in outer:
            if member.pathname.startswith("data.tar"):
                data = b"".join(member.get_blocks())
                with libarchive.memory_reader(data) as inner:
                    yield from inner
                return
    raise SourceError(f"{pkg} has no data.tar member: not a Debian package?")


def unpack_package(pkg: Path, dest: Path) -> list[str]:
    """Extract the payload of *pkg* under *dest*; return the member paths (normalised, no './')."""
    return extract_entries(_payload_entries(pkg), dest, pkg.name)


def unpack_archive(
    archive: Path, dest: Path, advance: Callable[[], None] | None = None, devices: bool = False
) -> list[str]:
    """Extract any archive libarchive reads (tar.xz, tar.gz, cpio …) under *dest*.

    *devices*: also make its character/block device and FIFO nodes (an initramfs, as root)."""

    def entries() -> Iterator[libarchive.ArchiveEntry]:
        with libarchive.file_reader(str(archive)) as reader:
            yield from reader

    return extract_entries(entries(), dest, archive.name, advance, devices)


def extract_entries(
    entries: Iterator[libarchive.ArchiveEntry],
    dest: Path,
    what: str,
    advance: Callable[[], None] | None = None,
    devices: bool = False,
) -> list[str]:
    """Write *entries* under *dest*, refusing any member that could land outside it.

    This is the one extractor for every archive (kernel tarballs, .deb and .rpm payloads):
    an absolute path, a `..` component, a path through a symlink (a member `a -> /etc`
    then `a/passwd`) and a hard link to anything but a regular file already extracted are
    all refused, the checks libarchive's SECURE_NOABSOLUTEPATHS, SECURE_NODOTDOT and
    SECURE_SYMLINKS flags make. Files are written with plain I/O so that a full disk raises
    instead of being logged as a warning (libarchive's own extractor only warns)."""
    dest.mkdir(parents=True, exist_ok=True)
    extractor = _SafeExtractor(dest.resolve(), what, devices)
    names: list[str] = []
    try:
        for entry in entries:
            rel = extractor.relpath(entry.pathname)
            if rel:
                extractor.write(entry, rel)
                names.append(rel)
            if advance is not None:
                advance()
    except libarchive.ArchiveError as exc:
        raise SourceError(f"cannot read {what}: {exc}") from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise HostError(
                f"no space left on device while unpacking {what} into {dest}",
                hint="free some space or choose another --cache-dir; the partial tree is removed",
            ) from exc
        raise HostError(f"cannot unpack {what} into {dest}: {exc.strerror}") from exc
    return names


class _SafeExtractor:
    """Member paths checked against *root*; directories it made itself are known safe."""

    def __init__(self, root: Path, what: str, devices: bool = False) -> None:
        self.root = root
        self.what = what
        self.devices = devices
        self.real_dirs: set[str] = {""}

    def refuse(self, name: str, why: str) -> SourceError:
        return SourceError(
            f"{self.what}: refusing member {name[:200]!r}: {why}",
            hint="the archive is unsafe or corrupt; nothing outside the cache was "
            "written, and the partial tree is removed",
        )

    def relpath(self, name: str | None) -> str:
        if not name or "\0" in name:
            raise self.refuse(name or "", "it has no usable path")
        if name.startswith("/"):
            raise self.refuse(name, "it has an absolute path")
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise self.refuse(name, "its path has a '..' component")
        return "/".join(parts)

    def parent_dir(self, name: str, rel: str) -> Path:
        """Make the member's parent directories, refusing a path through a symlink."""
        parent = rel.rpartition("/")[0]
        if parent in self.real_dirs:
            return self.root / parent
        done = ""
        for part in parent.split("/"):
            done = f"{done}/{part}" if done else part
            if done in self.real_dirs:
                continue
            path = self.root / done
            if path.is_symlink():
                raise self.refuse(name, f"its path goes through the symlink {done} -> {os.readlink(path)}")
            if os.path.lexists(path) and not path.is_dir():
                raise self.refuse(name, f"its path goes through the non-directory {done}")
            path.mkdir(exist_ok=True)
            self.real_dirs.add(done)
        return self.root / parent

    def write(self, entry: libarchive.ArchiveEntry, rel: str) -> None:
        name = entry.pathname
        self.parent_dir(name, rel)
        target = self.root / rel
        if entry.isdir:
            if target.is_symlink() or (os.path.lexists(target) and not target.is_dir()):
                raise self.refuse(name, "a directory member replaces a link or file")
            target.mkdir(exist_ok=True)
            self.real_dirs.add(rel)
            return
        if os.path.lexists(target):
            if target.is_dir() and not target.is_symlink():
                raise self.refuse(name, "it replaces a directory")
            target.unlink()
        if entry.issym:
            os.symlink(entry.linkpath, target)
        elif entry.islnk:
            self._hard_link(entry, target)
        elif entry.isreg:
            with open(target, "xb") as out:
                for block in entry.get_blocks():
                    out.write(block)
            os.chmod(target, entry.mode & 0o7777)
        elif self.devices and (entry.ischr or entry.isblk or entry.isfifo):
            os.mknod(target, entry.mode, os.makedev(entry.rdevmajor, entry.rdevminor))

    def _hard_link(self, entry: libarchive.ArchiveEntry, target: Path) -> None:
        # A hard link names another member of the same payload; copy that file's bytes.
        linked = self.relpath(entry.linkpath)
        source = self.root / linked
        parent = linked.rpartition("/")[0]
        if parent not in self.real_dirs or source.is_symlink() or not source.is_file():
            raise self.refuse(
                entry.pathname,
                f"it hard-links {entry.linkpath[:200]!r}, which is not a regular file extracted before it",
            )
        shutil.copyfile(source, target, follow_symlinks=False)
        os.chmod(target, source.stat(follow_symlinks=False).st_mode & 0o7777)
