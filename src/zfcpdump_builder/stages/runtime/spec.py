"""What the runtime is made of (RuntimeSpec), and where its files go in the image (RootLayout)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ...core import elfdeps
from ...core.errors import RecipeError, SourceError

DEFAULT_PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "zlib1g",
    "libexpat1",
    "libffi8",
)


# What start-up imports before any user code (io for sys.std*, encodings for the codecs).
STARTUP_MODULES = ("io", "encodings", "encodings.aliases", "encodings.utf_8")


INTERPRETER_FLAGS = ("-I", "-S", "-B")


KINDS = ("debian", "debs", "sysroot")


INTERPRETERS = ("packaged", "custom", "static")


BYTECODE_LAYOUTS = ("zip", "files")


FILES_JSON = "files.json"


ROOT_DIR = "root"


ZIP_DATE = (1980, 1, 1, 0, 0, 0)


KNOWN_MAGIC = {"3.8": 3413, "3.9": 3425, "3.10": 3439, "3.11": 3495, "3.12": 3531, "3.13": 3571}


QEMU_ARCH = {"s390x": "s390x", "amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le"}


PROBE_CODE = r"""
import sys, _imp, _frozen_importlib_external as e
print(repr({"version": "%d.%d.%d" % sys.version_info[:3],
            "magic": int.from_bytes(e.MAGIC_NUMBER[:2], "little"),
            "builtins": sorted(sys.builtin_module_names),
            "frozen": sorted(_imp._frozen_module_names()),
            "ext_suffixes": list(e.EXTENSION_SUFFIXES),
            "startup": sorted(sys.modules)}))
"""


@dataclass(frozen=True)
class RuntimeSpec:
    """Where the target interpreter comes from and how its bytecode is laid out.

    kind: 'debian' (apt download of *packages*), 'debs' (the .deb/.rpm files in *path*; all of
    them, or those named in *packages*), 'sysroot' (an unpacked root at *path*).
    bytecode: 'zip' (one ZIP_STORED python311.zip) or 'files' (sourceless .pyc files).
    optimize: bytecode optimisation level for the stdlib (the writer always gets 0, so its
    asserts and docstrings stay). extra_modules: modules the writer imports dynamically.
    interpreter: 'packaged' (the distribution's binary), 'custom' (relinked from
    libpythonX.Y.a with only the built-in modules the closure needs; see `custom_interpreter`)
    or 'static' (CPython built from source, linked -static, every native module the closure
    needs built in; see runtime/static.py).
    probe: run the target interpreter under qemu-user (when installed) to read its magic,
    built-in and frozen module tables; otherwise these come from static tables.
    """

    kind: str = "debian"
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    path: Path | None = None
    python: str = "python3.11"
    arch: str = "s390x"
    bytecode: str = "zip"
    interpreter: str = "packaged"
    optimize: int = 0
    extra_modules: tuple[str, ...] = ()
    probe: bool = True

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise RecipeError(f"runtime.kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind != "debian" and self.path is None:
            raise RecipeError(f"runtime.kind {self.kind} needs runtime.path")
        if self.path is not None and not Path(self.path).is_dir():
            raise SourceError(f"runtime.path {self.path} is not a directory")
        if not re.fullmatch(r"python3\.\d+", self.python):
            raise RecipeError(f"runtime.python must look like python3.11, not {self.python!r}")
        if self.interpreter not in INTERPRETERS:
            raise RecipeError(
                f"runtime.interpreter must be one of {', '.join(INTERPRETERS)}, not {self.interpreter!r}"
            )
        if self.bytecode not in BYTECODE_LAYOUTS:
            raise RecipeError(f"runtime.bytecode must be zip or files, not {self.bytecode!r}")
        if self.optimize not in (0, 1, 2):
            raise RecipeError(f"runtime.optimize must be 0, 1 or 2, not {self.optimize!r}")
        if self.kind == "debian" and not self.packages:
            raise RecipeError("runtime.packages is empty")
        elfdeps.arch_info(self.arch)

    @property
    def version(self) -> str:
        return self.python.removeprefix("python")

    def cache_inputs(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path) if self.path is not None else None
        data["packages"] = list(self.packages)
        data["extra_modules"] = list(self.extra_modules)
        return data


@dataclass(frozen=True)
class RootLayout:
    """Paths inside the image for one interpreter name."""

    python: str
    version: str

    @property
    def binary(self) -> str:
        return f"usr/bin/{self.python}"

    @property
    def stdlib(self) -> str:
        return f"usr/lib/{self.python}"

    @property
    def dynload(self) -> str:
        return f"{self.stdlib}/lib-dynload"

    @property
    def zip(self) -> str:
        return f"usr/lib/python{self.version.replace('.', '')}.zip"


def dev_packages(spec: RuntimeSpec) -> tuple[str, ...]:
    """What linking a custom interpreter needs besides the runtime packages."""
    return (f"lib{spec.python}-dev", "libc6-dev", "linux-libc-dev", "zlib1g-dev")
