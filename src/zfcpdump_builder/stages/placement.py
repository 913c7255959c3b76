"""Where the writer's root file system lives: the three placements the kernel's zfcpdump
document names.

- external: zfcpdump.rd is a compressed cpio that zipl loads as the ramdisk and the kernel
  unpacks into rootfs (the default);
- builtin: the same cpio, uncompressed, is linked into zfcpdump.image through
  CONFIG_INITRAMFS_SOURCE and compressed by the kernel's INITRAMFS_COMPRESSION_* choice. zipl
  then loads no ramdisk, so the build publishes none and install removes a stale one;
- initrd: zfcpdump.rd is an ext2 image. zipl's fixed dump command line says root=/dev/ram0,
  so the kernel copies the image to the RAM disk, mounts it as root and runs /sbin/init.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from ..core.errors import HostError, RecipeError

PLACEMENTS = ("external", "builtin", "initrd")
DEFAULT = "external"
# Relative to the kernel's O= tree, where make runs: the same path in every cache directory.
BUILTIN_CPIO = "zfcpdump-initramfs.cpio"
BUILTIN_AUTO_COMPRESSION = "xz"  # the smallest the kernel offers, as auto usually picks for an rd
# File systems the kernel can mount an initrd image of ours with (CONFIG_* symbol).
INITRD_FILESYSTEMS = ("EXT2_FS", "EXT4_USE_FOR_EXT2")
INITRD_INIT = "sbin/init"  # what the kernel runs from a mounted root (no rdinit=/init there)


def of_manifest(manifest: dict[str, Any]) -> str:
    """The initramfs.placement a build's manifest.json records (external before placements)."""
    plan = manifest.get("plan", {})
    section = plan.get("initramfs", {}) if isinstance(plan, dict) else {}
    return str(section.get("placement", DEFAULT)) if isinstance(section, dict) else DEFAULT


def publishes_rd(placement: str) -> bool:
    """True when zipl loads a separate zfcpdump.rd for *placement*."""
    return placement != "builtin"


def builtin_compression(compression: str) -> str:
    return BUILTIN_AUTO_COMPRESSION if compression == "auto" else compression


# The host tool the kernel's usr/Makefile compresses a built-in cpio with, per method.
KERNEL_COMPRESSORS = {"xz": "xz", "zstd": "zstd", "gzip": "gzip", "lz4": "lz4", "none": None}


def builtin_compressor(compression: str) -> dict[str, str]:
    """The method and host tool that will compress the built-in cpio, with its version (the
    kernel image's bytes depend on it); HostError before any build when the tool is missing."""
    method = builtin_compression(compression)
    tool = KERNEL_COMPRESSORS.get(method)
    if tool is None:
        return {"method": method}
    if shutil.which(tool) is None:
        raise HostError(
            f"the kernel compresses the built-in initramfs with {tool}, which is not installed",
            hint=f"install {tool} (Debian: {'xz-utils' if tool == 'xz' else tool}), or choose "
            "another initramfs.compression",
        )
    done = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    lines = (done.stdout or done.stderr).splitlines()
    return {"method": method, "tool": tool, "version": lines[0] if lines else "?"}


def kernel_symbols(placement: str, compression: str) -> tuple[tuple[str, str], ...]:
    """The config symbols *placement* needs in the kernel (requested and verified like the
    recipe's own)."""
    if placement != "builtin":
        return ()
    method = builtin_compression(compression).upper()
    return (("INITRAMFS_SOURCE", f'"{BUILTIN_CPIO}"'), (f"INITRAMFS_COMPRESSION_{method}", "y"))


def check_requests(requested: dict[str, str], placement: str, where: str) -> None:
    """A recipe asks for one placement: an INITRAMFS_SOURCE of its own is a second one."""
    value = requested.get("INITRAMFS_SOURCE", "").strip('"')
    if value and value != BUILTIN_CPIO:
        raise RecipeError(
            f"{where} sets CONFIG_INITRAMFS_SOURCE={value!r}, a second initramfs built into the "
            f"kernel beside initramfs.placement {placement}: a recipe has exactly one placement",
            hint="drop INITRAMFS_SOURCE and set initramfs.placement: builtin (the builder fills it in)",
        )


def initrd_filesystem(kernel_config: dict[str, str]) -> str:
    """The file system an initrd image is made with; RecipeError when the kernel has none."""
    if kernel_config.get("BLK_DEV_RAM") != "y":
        raise RecipeError(
            "initramfs.placement initrd needs CONFIG_BLK_DEV_RAM=y (the kernel loads an initrd into /dev/ram0)",
            hint="add BLK_DEV_RAM: y to kernel.config.set, or use placement external",
        )
    if not any(kernel_config.get(symbol) == "y" for symbol in INITRD_FILESYSTEMS):
        raise RecipeError(
            "initramfs.placement initrd needs a file system to mount /dev/ram0 with, but the kernel "
            "config has neither CONFIG_EXT2_FS=y nor CONFIG_EXT4_USE_FOR_EXT2=y",
            hint="add the fragment initrd-ext2.config to kernel.config.fragments (EXT2_FS=y and a "
            "BLK_DEV_RAM_SIZE the image fits)",
        )
    return "ext2"


def ram_disk_bytes(kernel_config: dict[str, str]) -> int:
    """CONFIG_BLK_DEV_RAM_SIZE (KiB) in bytes: the largest initrd image the RAM disk holds."""
    try:
        return int(kernel_config.get("BLK_DEV_RAM_SIZE", "4096"), 0) * 1024
    except ValueError:
        return 4096 * 1024


WHERE = {
    "external": "zfcpdump.rd, a cpio zipl loads as the ramdisk",
    "builtin": "inside zfcpdump.image (CONFIG_INITRAMFS_SOURCE); zipl loads no ramdisk",
    "initrd": "zfcpdump.rd, a file-system image the kernel mounts from /dev/ram0",
}


def describe(placement: str, kernel_config: dict[str, str]) -> dict[str, str]:
    """The manifest's record of where the writer lives."""
    record = {"name": placement, "where": WHERE[placement]}
    if placement == "builtin":
        chosen = [s for s, v in kernel_config.items() if s.startswith("INITRAMFS_COMPRESSION_") and v == "y"]
        record["kernel_compression"] = (
            chosen[0].removeprefix("INITRAMFS_COMPRESSION_").lower() if chosen else "?"
        )
    return record
