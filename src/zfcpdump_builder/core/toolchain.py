"""Pick and identify the compiler: a cross toolchain off s390x, the native one on s390x."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from . import elfdeps
from .errors import HostError

CROSS_PREFIX = "s390x-linux-gnu-"
DEBIAN_PACKAGES = "gcc-s390x-linux-gnu binutils-s390x-linux-gnu"


@dataclass(frozen=True)
class Toolchain:
    prefix: str
    ccache: bool
    gcc_version: str
    binutils_version: str

    def identity(self) -> dict[str, Any]:
        """What changes compiled output: compiler and binutils versions, and the prefix."""
        return {"prefix": self.prefix, "gcc": self.gcc_version, "binutils": self.binutils_version}


def _first_line(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    return (result.stdout or result.stderr).splitlines()[0].strip() if result.returncode == 0 else ""


def resolve(cross_compile: str, ccache: bool | str | None) -> Toolchain:
    native = platform.machine() == "s390x"
    prefix = ("" if native else CROSS_PREFIX) if cross_compile == "auto" else cross_compile
    gcc = shutil.which(f"{prefix}gcc")
    if gcc is None:
        hint = (
            f"on Debian/Ubuntu: apt-get install {DEBIAN_PACKAGES}"
            if prefix == CROSS_PREFIX
            else "install gcc and binutils for s390x, or set toolchain.cross_compile"
        )
        raise HostError(f"the compiler {prefix}gcc was not found on PATH", hint=hint)
    use_ccache = bool(shutil.which("ccache")) if ccache in ("auto", None) else bool(ccache)
    if use_ccache and not shutil.which("ccache"):
        raise HostError(
            "toolchain.ccache is true but ccache is not installed",
            hint="apt-get install ccache, or set toolchain.ccache: auto",
        )
    return Toolchain(
        prefix, use_ccache, _first_line([gcc, "--version"]), _first_line([f"{prefix}ld", "--version"])
    )


def cross_tool(arch: str, tool: str, needed_for: str = "building the interpreter") -> str:
    """The target's binutils/gcc program *tool* (e.g. s390x-linux-gnu-gcc), or a HostError."""
    multiarch = elfdeps.arch_info(arch).multiarch
    found = shutil.which(f"{multiarch}-{tool}")
    if found is None:
        raise HostError(
            f"{multiarch}-{tool} is not installed (needed for {needed_for})",
            hint=f"apt-get install gcc-{multiarch}",
        )
    return found


def cross_gcc_version(arch: str) -> str:
    """The first line of the target gcc's --version (what changes its output)."""
    return _first_line([cross_tool(arch, "gcc"), "--version"]) or "unknown"
