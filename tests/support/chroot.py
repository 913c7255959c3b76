"""Run s390x programs in a chroot that holds nothing but the bundle under test.

A *static* qemu-s390x is copied into the root as /qemu-s390x-static, so no host library or
host file can stand in for a missing piece of the bundle. The static qemu comes from the
host-architecture qemu-user-static .deb: downloaded with `apt-get download` (through
debpkg's private apt state) and only the one binary is extracted; the package is never
installed (it would fight qemu-user's binfmt setup).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import libarchive

from zfcpdump_builder.core import debpkg

QEMU_MEMBER = "usr/bin/qemu-s390x-static"
QEMU_IN_ROOT = "qemu-s390x-static"
UNSHARE = "/usr/bin/unshare"
CHROOT = "/usr/sbin/chroot"


def host_arch() -> str:
    result = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True)
    return result.stdout.strip()


def qemu_static(cache_dir: Path) -> Path:
    """The path of a cached qemu-s390x-static binary (fetched and extracted once)."""
    deb = debpkg.fetch_packages(["qemu-user-static"], host_arch(), cache_dir)[0]
    dest = cache_dir / "qemu-static" / deb.stem / "qemu-s390x-static"
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    if not extract_member(deb, QEMU_MEMBER, partial):
        raise FileNotFoundError(f"{deb.name} has no {QEMU_MEMBER}")
    partial.chmod(0o755)
    partial.rename(dest)
    return dest


def extract_member(deb: Path, member: str, out: Path) -> bool:
    with libarchive.file_reader(str(deb)) as outer:
        for part in outer:
            if not part.pathname.startswith("data.tar"):
                continue
            with libarchive.memory_reader(b"".join(part.get_blocks())) as inner:
                for entry in inner:
                    if entry.pathname.lstrip("./") == member:
                        with open(out, "wb") as handle:
                            for block in entry.get_blocks():
                                handle.write(block)
                        return True
    return False


def install_qemu(root: Path, qemu: Path) -> None:
    shutil.copyfile(qemu, root / QEMU_IN_ROOT)
    (root / QEMU_IN_ROOT).chmod(0o755)


def shebang(script: Path) -> list[str]:
    """The interpreter argv of a `#!` line, split the way Linux binfmt_script splits it."""
    first = script.read_bytes().split(b"\n", 1)[0]
    if not first.startswith(b"#!"):
        raise ValueError(f"{script} has no #! line")
    parts = first[2:].strip().split(None, 1)
    return [p.decode() for p in parts]


def run(
    root: Path, argv: list[str], timeout: float = 300, cwd: str = "/", input_text: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run s390x *argv* (paths inside *root*) under the root's static qemu, with env -i."""
    inner = ["/" + QEMU_IN_ROOT, *argv]
    cmd = ["/usr/bin/env", "-i", UNSHARE, "-m", CHROOT, str(root), *inner]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input_text, check=False)


def run_script(
    root: Path, script: str, args: list[str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the in-root *script* as execve(2) would: its #! interpreter, the script, *args*."""
    return run(root, [*shebang(root / script.lstrip("/")), script, *args], timeout)


def available() -> str | None:
    """Why chroot tests cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "chroot needs root"
    for tool in (UNSHARE, CHROOT):
        if not os.access(tool, os.X_OK):
            return f"{tool} is missing"
    return None


def is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(path.lstat().st_mode)


def decompress(data: bytes) -> bytes:
    """Undo any of the initramfs compressions with the standard command-line tools."""
    magics = {
        b"\x1f\x8b": ["gzip", "-dc"],
        b"\xfd7zXZ": ["xz", "-dc"],
        b"\x28\xb5\x2f\xfd": ["zstd", "-dc"],
        b"\x02\x21\x4c\x18": ["lz4", "-dc"],
    }
    for magic, cmd in magics.items():
        if data.startswith(magic):
            return subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
    return data


def unpack_rd(rd: Path, dest: Path) -> Path:
    """Unpack an initramfs as root, device nodes included, with the builder's one safe extractor
    (the compression is undone by the standard tools, which also read the kernel's lz4 legacy)."""
    from zfcpdump_builder.core.debpkg import unpack_archive

    cpio = dest.parent / f"{dest.name}.cpio"
    cpio.write_bytes(decompress(rd.read_bytes()))
    try:
        unpack_archive(cpio, dest, devices=True)
    finally:
        cpio.unlink()
    return dest


def make_root(tree: Path, dest: Path, qemu: Path) -> Path:
    """A chroot holding a copy of *tree*, /dev/null and /dev/urandom, and the static qemu."""
    shutil.copytree(tree, dest, symlinks=True)
    (dest / "dev").mkdir(exist_ok=True)
    for name, minor in (("null", 3), ("urandom", 9)):
        if not (dest / "dev" / name).exists():
            os.mknod(dest / "dev" / name, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    install_qemu(dest, qemu)
    return dest
