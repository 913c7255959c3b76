"""The initrd placement's image: an ext2 file system holding the rd's entries, made without root.

mke2fs makes an empty file system from our own mke2fs.conf (never the host's), an explicit
feature list, and a UUID and hash seed derived from the entries; debugfs then creates every
directory, file, symlink and device node and sets its mode, owner (0:0) and times to
SOURCE_DATE_EPOCH, and finally the superblock's times and flags. Only PATH is passed on from
the environment. So the image is a function of the entries, the epoch and the e2fsprogs
version (which is in the stage's key). The image is sized to its contents (the RAM disk holds every block
of it): it grows until debugfs reports no allocation failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

from ...core.errors import HostError
from .cpio import RdEntry

BLOCK = 1024
TOOLS = ("mke2fs", "debugfs", "e2fsck")
INODE_SIZE = 256  # 128-byte inodes cannot hold times past 2038
FEATURES = "none,sparse_super,large_file,filetype"  # what ext2 needs here, nothing from the host
# Our own mke2fs.conf: the host's /etc/mke2fs.conf (or $MKE2FS_CONFIG) must not shape the image.
MKE2FS_CONF = """\
[defaults]
	base_features = sparse_super,large_file,filetype
	default_mntopts = acl,user_xattr
	hash_alg = half_md4
	reserved_ratio = 0
	blocksize = 1024
	inode_size = 256
	inode_ratio = 4096
	lazy_itable_init = false

[fs_types]
	ext2 = {
		features = ^resize_inode
	}
	zfcpdump = {
		inode_ratio = 4096
	}
"""
ENV_KEPT = ("PATH",)  # everything else of the caller's environment stays out
SIGNED_HASH = 1  # EXT2_FLAGS_SIGNED_HASH: fixed, not the build host's char signedness
# No error line from debugfs means every command worked; these mean one did not.
FAILURES = (
    "Could not allocate",
    "No free space",
    "File exists",
    "already exists",
    "not found",
    "not a directory",
    "No space",
    "Usage:",
    "error",
)
_FS_TYPE = {"dir": 0o040000, "file": 0o100000, "symlink": 0o120000, "chr": 0o020000}


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def tool_versions() -> dict[str, str]:
    """What the image bytes depend on besides the entries (part of the stage's key)."""
    if shutil.which("mke2fs") is None:
        return {"mke2fs": "missing"}
    done = subprocess.run(["mke2fs", "-V"], capture_output=True, text=True, check=False)
    version = (done.stderr or done.stdout).splitlines()[0] if (done.stderr or done.stdout) else "?"
    return {"mke2fs": version, "mke2fs.conf": hashlib.sha256(MKE2FS_CONF.encode()).hexdigest()}


def fs_uuid(entries: Sequence[RdEntry], epoch: int) -> str:
    """A UUID derived from the contents, so two builds of the same rd give the same image."""
    names = "\n".join(f"{e.kind} {e.path} {e.mode:o}" for e in entries)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"zfcpdump-initrd:{epoch}:{names}"))


def estimate_blocks(entries: Sequence[RdEntry]) -> int:
    """Data blocks plus indirect blocks, directories, inode tables and a little slack."""
    data = sum(-(-len(e.content()) // BLOCK) for e in entries if e.kind in ("file", "symlink"))
    indirect = data // 256 + 2 * len(entries)
    inodes = (len(entries) + 16) * INODE_SIZE // BLOCK + 1
    return data + indirect + inodes + 64 + data // 50


def debugfs_script(entries: Sequence[RdEntry], files: dict[str, Path], epoch: int) -> str:
    """Commands that create *entries* (parents first) and fix every inode's metadata."""
    lines: list[str] = []
    for entry in sorted(entries, key=lambda e: (e.path.count("/"), e.path)):
        parent, _, name = entry.path.rpartition("/")
        lines.append(f"cd /{parent}")
        if entry.kind == "dir":
            lines.append(f"mkdir {name}")
        elif entry.kind == "file":
            lines.append(f"write {files[entry.path]} {name}")
        elif entry.kind == "symlink":
            lines.append(f"symlink {name} {entry.target}")
        else:
            lines.append(f"mknod {name} c {entry.rdev[0]} {entry.rdev[1]}")
    lines.append("cd /")
    for entry in entries:
        path = "/" + entry.path
        lines.append(f"sif {path} mode 0{_FS_TYPE[entry.kind] | entry.mode:o}")
        lines += [f"sif {path} {field} 0" for field in ("uid", "gid")]
        lines += [f"sif {path} {field} {epoch}" for field in ("atime", "mtime", "ctime")]
    for path in ("/", "/lost+found"):
        lines += [f"sif {path} {field} {epoch}" for field in ("atime", "mtime", "ctime")]
    lines += [f"ssv {field} {epoch}" for field in ("mtime", "wtime", "lastcheck", "mkfs_time")]
    lines.append(f"ssv flags {SIGNED_HASH}")
    return "\n".join(lines) + "\n"


def _check(command: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise HostError(
            f"{command[0]} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}"
        )
    return done.stdout + done.stderr


def _names_with_spaces(entries: Sequence[RdEntry]) -> list[str]:
    return [e.path for e in entries if any(c.isspace() for c in e.path + e.target)]


def ext2_image(entries: Sequence[RdEntry], epoch: int) -> bytes:
    """The ext2 image of *entries*, byte-identical for the same entries and *epoch*."""
    lacking = missing_tools()
    if lacking:
        raise HostError(
            f"the initrd placement needs {', '.join(lacking)} to make its ext2 image",
            hint="apt-get install e2fsprogs",
        )
    odd = _names_with_spaces(entries)
    if odd:
        raise HostError(f"the initrd image cannot hold names with white space: {', '.join(odd[:3])}")
    identity = fs_uuid(entries, epoch)
    with tempfile.TemporaryDirectory(prefix="zfcpdump-initrd-") as scratch:
        if any(c.isspace() for c in scratch):
            raise HostError(
                f"the temporary directory {scratch} has white space in its path, which debugfs cannot take",
                hint="set TMPDIR to a directory without spaces",
            )
        work = Path(scratch)
        (work / "mke2fs.conf").write_text(MKE2FS_CONF)
        env = {k: os.environ[k] for k in ENV_KEPT if k in os.environ}
        env |= {"MKE2FS_CONFIG": str(work / "mke2fs.conf"), "E2FSPROGS_FAKE_TIME": str(epoch), "LC_ALL": "C"}
        files: dict[str, Path] = {}
        for number, entry in enumerate(e for e in entries if e.kind == "file"):
            files[entry.path] = work / f"f{number}"
            files[entry.path].write_bytes(entry.content())
        script = work / "populate.debugfs"
        script.write_text(debugfs_script(entries, files, epoch))
        image = work / "initrd.ext2"
        blocks = estimate_blocks(entries)
        for _attempt in range(8):
            image.unlink(missing_ok=True)
            mke2fs = ["mke2fs", "-q", "-F", "-t", "ext2", "-b", str(BLOCK), "-m", "0", "-I", str(INODE_SIZE)]
            mke2fs += ["-N", str(len(entries) + 16), "-U", identity, "-E", f"hash_seed={identity}"]
            _check([*mke2fs, "-T", "zfcpdump", "-O", FEATURES, str(image), str(blocks)], env)
            log = _check(["debugfs", "-w", "-f", str(script), str(image)], env)
            failed = [ln for ln in log.splitlines() if any(f in ln for f in FAILURES) and "debugfs" not in ln]
            if not failed:
                break
            if not any("allocate" in ln or "space" in ln for ln in failed):
                raise HostError(f"debugfs could not build the initrd image: {failed[0]}")
            blocks = blocks * 5 // 4
        else:
            raise HostError(f"the initrd image did not fit in {blocks} blocks")
        fsck = subprocess.run(
            ["e2fsck", "-fn", str(image)], capture_output=True, text=True, env=env, check=False
        )
        if fsck.returncode != 0:
            raise HostError(f"e2fsck finds the initrd image damaged: {fsck.stdout.strip()[-400:]}")
        return image.read_bytes()
