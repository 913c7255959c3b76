"""Helpers for the install / zipl / dumpdisk-prepare tests."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from support.loopdev import LoopDevice
from zfcpdump_builder.core.events import Reporter
from zfcpdump_builder.core.store import file_sha256
from zfcpdump_builder.deploy import install, transaction, zipl

MIB = 1 << 20
C_SOURCE = textwrap.dedent("""\
    #define STR_(x) #x
    #define STRINGIFY(x) STR_(x)
    const char *zfcpdump_paths[] = {
    #ifdef SEPARATE
        STRINGIFY(ZFCPDUMP_DIR), "%s/%s", STRINGIFY(IMG), STRINGIFY(RD),
    #else
        STRINGIFY(ZFCPDUMP_DIR) "/" STRINGIFY(IMG), STRINGIFY(ZFCPDUMP_DIR) "/" STRINGIFY(RD),
    #endif
    #ifdef EXTRA
        STRINGIFY(ZFCPDUMP_DIR) "/" STRINGIFY(EXTRA),
    #endif
        "Usage: zipl [OPTIONS] [SECTION]", "1.8.2",
    };
    int main(int argc, char **argv) { (void)argv; return zfcpdump_paths[argc % 4][0]; }
    """)


class TextReporter(Reporter):
    """A plain reporter whose output the test can read."""

    def __init__(self) -> None:
        super().__init__(io.StringIO(), verbose=True)

    @property
    def text(self) -> str:
        return self.stream.getvalue()  # type: ignore[attr-defined]


def make_out(folder: Path, tag: str = "v1", image_size: int = 3 * MIB // 2, rd_size: int = MIB) -> Path:
    """A fake build output: OUT/zfcpdump.image and OUT/zfcpdump.rd with recognisable bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    outputs = {}
    for name, size in (("zfcpdump.image", image_size), ("zfcpdump.rd", rd_size)):
        unit = f"<{tag}:{name}>".encode()
        (folder / name).write_bytes((unit * (size // len(unit) + 1))[:size])
        outputs[name] = {"sha256": file_sha256(folder / name), "size": size}
    write_build_manifest(folder, outputs)
    return folder


def write_build_manifest(folder: Path, outputs: dict, **extra: object) -> None:
    """The parts of a build's manifest.json that install and prepare read."""
    record = {"manifest_version": 1, "outputs": outputs, **extra}
    (folder / "manifest.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Every entry of *folder*: ('link', target) or ('file', content-hash + mode)."""
    state = {}
    for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
        if entry.is_symlink():
            state[entry.name] = ("link", os.readlink(entry))
        else:
            mode = entry.stat().st_mode & 0o7777
            state[entry.name] = ("file", f"{file_sha256(entry)} {mode:o}")
    return state


def plan_for(out: Path, folder: Path, layout: str, link: str) -> transaction.InstallPlan:
    target = zipl.Target(zipl.LAYOUTS[layout], "/lib/s390-tools/zfcpdump", "test")
    image, rd = install.artifacts(out)
    return transaction.make_plan(image, rd, folder, target, link)


def compile_fake_zipl(
    dest: Path, directory: str, image: str, rd: str, *, separate: bool = False, extra: str | None = None
) -> Path:
    """A synthetic zipl: an ELF whose .rodata holds the paths as s390-tools compiles them in.

    Linked without a libc (it is read, never run), so a bare cross compiler will do.
    """
    compiler = shutil.which("s390x-linux-gnu-gcc") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler for the synthetic zipl binaries")
    source = dest.with_suffix(".c")
    source.write_text(C_SOURCE)
    defines = [f"-DZFCPDUMP_DIR={directory}", f"-DIMG={image}", f"-DRD={rd}"]
    defines += ["-DSEPARATE"] if separate else []
    defines += [f"-DEXTRA={extra}"] if extra else []
    subprocess.run(
        [compiler, "-O1", "-nostdlib", "-static", "-Wl,-e,main", "-o", str(dest), str(source), *defines],
        check=True,
    )
    return dest


def fake_zipl_script(
    dest: Path, log: Path, exit_code: int = 0, directory: str = "/lib/s390-tools/zfcpdump"
) -> Path:
    """A stand-in zipl that records its arguments; its text names the >= 2.7 paths in *directory*."""
    dest.write_text(
        "#!/bin/sh\n"
        f"# {directory}/zfcpdump-image {directory}/zfcpdump-initrd\n"
        f'echo "$@" > {log}\nexit {exit_code}\n'
    )
    dest.chmod(0o755)
    return dest


def real_zipl() -> Path:
    """Debian's s390x zipl (s390-tools 2.16), from the shared test root or its own unpack."""
    from tests.support import zgetdump

    try:
        root = zgetdump.ensure_root()
        if (root / "sbin" / "zipl").is_file():
            return root / "sbin" / "zipl"
    except zgetdump.ZgetdumpUnavailable:
        pass
    from zfcpdump_builder.core.debpkg import fetch_packages, unpack_package

    base = zgetdump.cache_base()
    dest = base / "test-s390-tools-zipl"
    if not (dest / "sbin" / "zipl").is_file():
        try:
            debs = fetch_packages(["s390-tools"], "s390x", base)
        except Exception as exc:  # noqa: BLE001 - no apt or no network: skip, with the reason
            pytest.skip(f"cannot fetch s390-tools:s390x: {exc}")
        unpack_package(debs[0], dest)
    return dest / "sbin" / "zipl"


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


def mount(kind: str, where: Path, *options: str) -> None:
    opts = ["-o", ",".join(options)] if options else []
    res = subprocess.run(["mount", "-t", kind, *opts, kind, str(where)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount {kind}: {res.stderr.strip()}")


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


class LoopDisk(LoopDevice):
    """A disk image (64 MiB) with two DOS partitions on a loop device (root only), or a skip."""

    def __init__(self, image: Path, size: int = 64 * MIB, table: str = "label: dos\n,32M,L\n,,L\n") -> None:
        need_root()
        if shutil.which("sfdisk") is None:
            pytest.skip("sfdisk is not installed")
        with open(image, "wb") as handle:
            handle.truncate(size)
        subprocess.run(
            ["sfdisk", "-q", str(image)],
            input=table,
            text=True,
            check=True,
            capture_output=True,
        )
        self.mounts: list[Path] = []
        super().__init__(image)

    def part(self, number: int) -> str:  # type: ignore[override]
        return str(super().part(number))

    def mount_ext4(self, number: int, where: Path) -> None:
        part = self.part(number)
        if shutil.which("mkfs.ext4") is None:
            pytest.skip("mkfs.ext4 is not installed")
        subprocess.run(["mkfs.ext4", "-q", "-F", part], check=True, capture_output=True)
        where.mkdir(parents=True, exist_ok=True)
        res = subprocess.run(["mount", part, str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount {part}: {res.stderr.strip()}")
        self.mounts.append(where)

    def close(self) -> None:
        for where in self.mounts:
            umount(where)
        self.mounts = []
        super().close()
