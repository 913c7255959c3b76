"""The target interpreter: found in the unpacked root, checked for the architecture, and probed
under qemu-user (when installed) for its magic, built-in and frozen module tables.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import elfdeps
from ...core.errors import CompileError, SourceError
from ...core.events import Reporter
from .. import pycompile
from .packages import Staged
from .spec import INTERPRETER_FLAGS, KNOWN_MAGIC, PROBE_CODE, QEMU_ARCH, RootLayout, RuntimeSpec


@dataclass(frozen=True)
class TargetPython:
    version: str
    magic: int
    builtins: frozenset[str]
    frozen: frozenset[str]
    ext_suffixes: tuple[str, ...]
    source: str


def find_python(staged: Staged, spec: RuntimeSpec) -> str:
    """The in-root path of the interpreter binary, checked for the target architecture."""
    layout = RootLayout(spec.python, spec.version)
    real = elfdeps.resolve_in_root(staged.root, layout.binary)
    if real is None:
        provider = f"{spec.python}-minimal" if staged.packages else "the sysroot"
        raise SourceError(
            f"/{layout.binary} is missing from the runtime ({provider} provides it)",
            hint=f"add {spec.python}-minimal to runtime.packages" if staged.packages else None,
        )
    info = elfdeps.read_elf(staged.root / real)
    elfdeps.check_arch(info, spec.arch, f"/{layout.binary} from {staged.origin_of(real)}")
    if not (staged.root / layout.stdlib / "encodings" / "__init__.py").is_file():
        raise SourceError(
            f"/{layout.stdlib}/encodings is missing from the runtime "
            f"(lib{spec.python}-minimal provides the core stdlib)"
        )
    return real


def qemu_command(arch: str) -> str | None:
    name = QEMU_ARCH.get(arch)
    if name is None:
        return None
    return shutil.which(f"qemu-{name}") or shutil.which(f"qemu-{name}-static")


def probe_target(root: Path, binary: str, arch: str) -> dict[str, Any] | None:
    """Run the target interpreter under qemu-user and read its tables; None if impossible."""
    qemu = qemu_command(arch)
    if qemu is None:
        return None
    cmd = [qemu, "-L", str(root), str(root / binary), *INTERPRETER_FLAGS, "-c", PROBE_CODE]
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, env={}, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def static_magic(root: Path, layout: RootLayout) -> int | None:
    """MAGIC_NUMBER from the target's importlib/_bootstrap_external.py, else the version table."""
    source = root / layout.stdlib / "importlib" / "_bootstrap_external.py"
    if source.is_file():
        found = re.search(
            r"^MAGIC_NUMBER = \((\d+)\)\.to_bytes", source.read_text("utf-8", "replace"), re.MULTILINE
        )
        if found:
            return int(found.group(1))
    return KNOWN_MAGIC.get(layout.version)


def describe_target(staged: Staged, spec: RuntimeSpec, binary: str, reporter: Reporter) -> TargetPython:
    layout = RootLayout(spec.python, spec.version)
    probed = probe_target(staged.root, binary, spec.arch) if spec.probe else None
    if probed is not None:
        return TargetPython(
            probed["version"],
            probed["magic"],
            frozenset(probed["builtins"]),
            frozenset(probed["frozen"]),
            tuple(probed["ext_suffixes"]),
            "qemu probe",
        )
    magic = static_magic(staged.root, layout)
    if magic is None:
        raise SourceError(
            f"cannot tell the bytecode magic of {spec.python}: no "
            f"importlib/_bootstrap_external.py and no table entry"
        )
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if spec.probe:
        reporter.warning(
            f"qemu-{QEMU_ARCH.get(spec.arch, spec.arch)} is not installed: the "
            f"target's built-in module table is assumed equal to the host's"
        )
    if host != spec.version:
        raise CompileError(
            f"cannot describe {spec.python} without running it, and the host Python is {host}",
            hint=f"install qemu-user, or run with Python {spec.version}",
        )
    import _imp

    multiarch = elfdeps.arch_info(spec.arch).multiarch
    suffixes = (f".cpython-{spec.version.replace('.', '')}-{multiarch}.so", ".abi3.so", ".so")
    return TargetPython(
        spec.version,
        magic,
        frozenset(sys.builtin_module_names),
        frozenset(getattr(_imp, "_frozen_module_names", tuple)()),  # private; typeshed omits it
        suffixes,
        "static tables",
    )


def check_magic(target: TargetPython, python: str) -> None:
    """Refuse to build when the host cannot write bytecode the target loads."""
    host = pycompile.host_magic()
    if host != target.magic:
        raise CompileError(
            f"bytecode magic mismatch: the host Python {sys.version.split()[0]} writes magic "
            f"{host}, but the target {python} {target.version} loads only magic {target.magic} "
            f"(read by {target.source})",
            hint=f"run the builder with a Python {target.version.rsplit('.', 1)[0]} interpreter",
        )
