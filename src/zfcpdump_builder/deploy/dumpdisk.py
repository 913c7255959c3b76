"""`build.py dumpdisk inspect DEV|IMAGE [--json]`, `dumpdisk extract DEV|IMAGE OUT`, `dumpdisk prepare DEV`.

A thin host-side adaptor over `zfcpdump_writer.diskinfo` (the same parsers the writer uses):
`inspect(path) -> dict`, `extract(path, out) -> int`, the handlers `inspect_cmd` and
`extract_cmd` (`handler(args, reporter) -> int`) and `add_arguments(subparsers)`.
"""

from __future__ import annotations

import os
import stat
from contextlib import suppress
from pathlib import Path
from typing import Any

from zfcpdump_writer import diskinfo
from zfcpdump_writer.errors import DumpError

from ..core.errors import BuildError, InstallError

MB = 1 << 20


class DumpDiskError(BuildError):
    """The disk is not a zipl dump disk, or it holds no complete dump to extract."""

    exit_code = InstallError.exit_code
    kind = "dumpdisk"


def inspect(path: str | Path) -> dict[str, Any]:
    """Layout and dump state of a dump disk or disk image (see diskinfo.inspect)."""
    return diskinfo.inspect(str(path))


def _backing_files(source: Path) -> list[Path]:
    """The files behind a loop device (or a partition of one): writing them rewrites *source*."""
    try:
        st = os.stat(source)
    except OSError:
        return []
    if not stat.S_ISBLK(st.st_mode):
        return []
    sysdir = Path(os.path.realpath(f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"))
    found = []
    for folder in (sysdir, sysdir.parent):
        with suppress(OSError):
            found.append(Path((folder / "loop" / "backing_file").read_text().strip()))
    return found


def check_extract_target(source: Path, out: Path, force: bool = False) -> None:
    """Refuse an OUT that is the dump itself, a file or device that would overwrite it, or
    (without *force*) any existing file."""
    hint = "name a new regular file for OUT, on another disk than the dump"
    if not os.path.lexists(out):
        return
    if os.path.exists(out) and os.path.samefile(source, out):
        raise DumpDiskError(
            f"OUT {out} is the dump disk {source} itself: refusing to overwrite it", hint=hint
        )
    if out.is_symlink() or not out.is_file():
        raise DumpDiskError(f"OUT {out} exists and is not a regular file: refusing to write to it", hint=hint)
    for backing in _backing_files(source):
        if os.path.exists(backing) and os.path.samefile(backing, out):
            raise DumpDiskError(
                f"OUT {out} is the file behind the dump device {source}: refusing to overwrite it", hint=hint
            )
    if not force:
        raise DumpDiskError(
            f"OUT {out} already exists: refusing to overwrite it",
            hint="pass --force to replace it, or name a new file",
        )


def extract(path: str | Path, out: str | Path, force: bool = False) -> int:
    """Write the complete dump on *path* to *out* as an ELF core; returns its size.

    The core is written beside OUT under a temporary name and renamed over OUT only when
    complete, so a failed extract never truncates OUT, and OUT can never be the source."""
    source, target = Path(path), Path(os.path.abspath(out))
    if not source.exists():
        raise DumpDiskError(f"{source} does not exist", hint="name the dump disk or its image")
    check_extract_target(source, target, force)
    partial = target.with_name(f".{target.name}.extract-{os.getpid()}")
    with suppress(FileNotFoundError):
        partial.unlink()  # a killed namesake's: never write through whatever it is now
    try:
        size = diskinfo.extract(str(source), str(partial))
        os.replace(partial, target)
    except DumpError as exc:
        raise DumpDiskError(str(exc), hint="run `dumpdisk inspect` to see the disk's state") from exc
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()
    return size


def rows(info: dict[str, Any]) -> list[list[str]]:
    """The inspect result as (field, value) rows for a table."""

    def mb(key: str) -> str:
        return f"{info[key] / MB:.1f} MB ({info[key]} bytes)" if key in info else "-"

    out = [["path", info["path"]], ["state", str(info.get("state") or "-")]]
    for key in ("error", "note"):
        if info.get(key):
            out.append([key, info[key]])
    for key in (
        "disk_size",
        "part_start",
        "part_size",
        "dump_start",
        "dump_size",
        "dump_bytes",
        "memory_bytes",
    ):
        if key in info:
            out.append([key, mb(key)])
    for key in ("partition", "sb_offset", "block", "cpus"):
        if key in info:
            out.append([key, str(info[key])])
    if "csum" in info:
        out.append(["checksum", f"{info['csum']:#010x} ({'ok' if info['csum_ok'] else 'MISMATCH'})"])
    for load in info.get("loads", []):
        out.append(
            [
                "PT_LOAD",
                f"paddr {load['paddr']:#x} size {load['size'] / MB:.1f} MB at offset {load['offset']:#x}",
            ]
        )
    return out
