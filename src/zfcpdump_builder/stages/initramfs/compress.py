"""Kernel-safe compression of the rd, for a kernel that unpacks in 32 MiB of memory.

gzip -9 without name or timestamp, xz with CRC32 and a 1 MiB dictionary, zstd -19 with a
1 MiB window, lz4 -12 in the legacy frame format (the only one the kernel reads), or none.
A method whose CONFIG_RD_* is off in the kernel is never chosen.
"""

from __future__ import annotations

import ctypes
import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import HostError, RecipeError
from .cpio import cpio_bytes

XZ_DICT = 1 << 20
ZSTD_WLOG = 20  # 1 MiB window


def _run_tool(cmd: list[str], data: bytes) -> bytes:
    if shutil.which(cmd[0]) is None:
        raise HostError(
            f"{cmd[0]} is not installed (needed for {cmd[0]} compression)",
            hint=f"apt-get install {cmd[0]}, or choose another initramfs.compression",
        )
    result = subprocess.run(cmd, input=data, capture_output=True, check=False)
    if result.returncode != 0:
        raise HostError(f"{' '.join(cmd)} failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def _xz(data: bytes) -> bytes:
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9, "dict_size": XZ_DICT}]
    return lzma.compress(data, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC32, filters=filters)


def _zstd(data: bytes) -> bytes:
    return _run_tool(["zstd", "-q", "-c", "-19", "-T1", f"--zstd=wlog={ZSTD_WLOG}", "--no-progress"], data)


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _lz4(data: bytes) -> bytes:
    return _run_tool(["lz4", "-q", "-c", "-l", "-12"], data)


@dataclass(frozen=True)
class Compression:
    """One kernel-safe compression method: a single entry in COMPRESSORS."""

    name: str
    kconfig: str | None  # the CONFIG_RD_* symbol the kernel needs to unpack it
    tool: str | None  # the program it runs, when it is not done in-process
    run: Callable[[bytes], bytes]

    def available(self) -> bool:
        return self.tool is None or shutil.which(self.tool) is not None


# Every method, in the 'auto' tie-break order.
COMPRESSORS: dict[str, Compression] = {
    c.name: c
    for c in (
        Compression("xz", "RD_XZ", None, _xz),
        Compression("zstd", "RD_ZSTD", "zstd", _zstd),
        Compression("gzip", "RD_GZIP", None, _gzip),
        Compression("lz4", "RD_LZ4", "lz4", _lz4),
        Compression("none", None, None, bytes),
    )
}
COMPRESSIONS = tuple(COMPRESSORS)


def compress(data: bytes, method: str) -> bytes:
    """*data* compressed with kernel-safe settings for *method* (see the module docstring)."""
    if method not in COMPRESSORS:
        raise RecipeError(f"unknown compression {method!r}; choose one of auto, {', '.join(COMPRESSIONS)}")
    return COMPRESSORS[method].run(data)


def tool_available(method: str) -> bool:
    return COMPRESSORS[method].available()


def compressor_versions() -> dict[str, str]:
    """What the compressed bytes depend on besides the input (part of the cache key)."""
    versions = {"zlib": zlib.ZLIB_RUNTIME_VERSION, "liblzma": _lzma_version()}
    for tool in (c.tool for c in COMPRESSORS.values() if c.tool):
        if shutil.which(tool):
            out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
            versions[tool] = (out.stdout or out.stderr).strip()
    return versions


def _lzma_version() -> str:
    try:
        lib = ctypes.CDLL("liblzma.so.5")
        lib.lzma_version_string.restype = ctypes.c_char_p
        return lib.lzma_version_string().decode()
    except OSError:
        return "unknown"


def pick_smallest(
    raw: bytes, methods: Sequence[str], advance: Callable[[int], None] | None = None
) -> tuple[str, bytes, dict[str, int]]:
    """Compress with each of *methods*; the smallest wins (ties: the earlier one).

    The candidates run side by side: lzma and zlib release the GIL and zstd/lz4 are processes,
    so 'auto' costs about the slowest method rather than the sum of all."""
    if not methods:
        raise RecipeError("no compression method is available")
    outputs: dict[str, bytes] = {}
    with ThreadPoolExecutor(max_workers=min(len(methods), len(os.sched_getaffinity(0)))) as pool:
        futures = {pool.submit(compress, raw, method): method for method in methods}
        for future in as_completed(futures):
            outputs[futures[future]] = future.result()
            if advance is not None:
                advance(1)
    sizes = {method: len(outputs[method]) for method in methods}
    best = min(methods, key=lambda method: (sizes[method], methods.index(method)))
    return best, outputs[best], sizes


@dataclass(frozen=True)
class CpioInfo:
    path: Path
    compression: str
    size: int
    cpio_size: int
    sha256: str
    candidates: dict[str, int] = field(default_factory=dict)


def write_cpio(entries: Iterable[Any], out_path: Path, compression: str = "none", mtime: int = 0) -> CpioInfo:
    """Write *entries* as a deterministic (compressed) newc archive at *out_path*.

    *compression* is one of xz, zstd, gzip, lz4, none, or auto (the smallest of those whose
    tool is installed).
    """
    raw = cpio_bytes(entries, mtime)
    if compression == "auto":
        methods = [m for m in COMPRESSIONS if tool_available(m)]
        method, data, sizes = pick_smallest(raw, methods)
    else:
        method, data, sizes = compression, compress(raw, compression), {}
        sizes[method] = len(data)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_bytes(data)
    return CpioInfo(out_path, method, len(data), len(raw), hashlib.sha256(data).hexdigest(), sizes)


def _config_value(kernel_config: dict[str, str], symbol: str) -> str | None:
    return kernel_config.get(symbol, kernel_config.get(f"CONFIG_{symbol}"))


def enabled_compressions(kernel_config: dict[str, str]) -> list[str]:
    return [
        c.name
        for c in COMPRESSORS.values()
        if c.kconfig is None or _config_value(kernel_config, c.kconfig) == "y"
    ]
