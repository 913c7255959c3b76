"""The target CPython for the initramfs: acquisition, import closure and ELF closure.

`build_runtime` turns Debian packages (or a directory of .deb/.rpm files, or an unpacked
sysroot) plus the writer package into a minimal file tree:

    root/usr/bin/python3.11                 the interpreter (started with -I -S -B)
    root/lib/ld64.so.1                      PT_INTERP, a real file (the deb has a symlink)
    root/lib/s390x-linux-gnu/...            the DT_NEEDED closure, as real files
    root/usr/lib/python311.zip              bytecode, ZIP_STORED (bytecode='zip'), or
    root/usr/lib/python3.11/*.pyc           sourceless bytecode files (bytecode='files')
    root/usr/lib/python3.11/lib-dynload/    extension modules (also the exec_prefix landmark)
    files.json                              every file with size, sha256, origin and why

The module closure is computed, not listed: the writer's modules and the interpreter's
start-up modules are scanned with `modulefinder` against the *target's* stdlib. Imports
anywhere in the writer count (it imports ctypes lazily); in the stdlib only imports that run
at import time count (so `os.popen`'s lazy `import subprocess` does not drag in half the
stdlib). Imports under `if TYPE_CHECKING:` never count.
"""

from __future__ import annotations

import ast
import hashlib
import json
import modulefinder
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import libarchive

from ..core import debpkg, elfdeps
from ..core.errors import CompileError, HostError, RecipeError, SourceError
from ..core.events import Reporter
from ..core.store import StageOutput, Store, code_digest, file_sha256
from . import pycompile

DEFAULT_PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
                    "libc6", "zlib1g", "libexpat1", "libffi8")
STARTUP_MODULES = ("encodings", "encodings.aliases", "encodings.utf_8")
INTERPRETER_FLAGS = ("-I", "-S", "-B")
KINDS = ("debian", "debs", "sysroot")
INTERPRETERS = ("packaged", "custom")
BYTECODE_LAYOUTS = ("zip", "files")
FILES_JSON = "files.json"
ROOT_DIR = "root"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
# Fallback when the target cannot be run: bytecode magic per CPython minor version.
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


# ----------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class RuntimeSpec:
    """Where the target interpreter comes from and how its bytecode is laid out.

    kind: 'debian' (apt download of *packages*), 'debs' (the .deb/.rpm files in *path*; all of
    them, or those named in *packages*), 'sysroot' (an unpacked root at *path*).
    bytecode: 'zip' (one ZIP_STORED python311.zip) or 'files' (sourceless .pyc files).
    optimize: bytecode optimisation level for the stdlib (the writer always gets 0, so its
    asserts and docstrings stay). extra_modules: modules the writer imports dynamically.
    interpreter: 'packaged' (the distribution's binary) or 'custom' (relinked from
    libpythonX.Y.a with only the built-in modules the closure needs; see `custom_interpreter`).
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
            raise RecipeError(f"runtime.interpreter must be packaged or custom, not {self.interpreter!r}")
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
class Layout:
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


# ----------------------------------------------------------------------------- acquisition


@dataclass(frozen=True)
class PackageInfo:
    name: str
    version: str
    arch: str
    file: str
    sha256: str


@dataclass
class Staged:
    """An unpacked root and where each of its files came from."""

    root: Path
    packages: list[PackageInfo] = field(default_factory=list)
    origin: dict[str, str] = field(default_factory=dict)

    def origin_of(self, path: str) -> str:
        return self.origin.get(path, "sysroot" if not self.packages else "unknown")


def acquire(spec: RuntimeSpec, cache_dir: Path, reporter: Reporter, offline: bool = False) -> list[Path]:
    """The package files the runtime is made of (downloaded for kind 'debian', unless *offline*)."""
    if spec.kind == "sysroot":
        return []
    if spec.kind == "debian":
        names = list(spec.packages) + (list(dev_packages(spec)) if spec.interpreter == "custom" else [])
        reporter.detail(f"runtime: fetching {' '.join(names)} ({spec.arch})")
        return debpkg.fetch_packages(names, spec.arch, cache_dir, reporter, offline)
    return _packages_in_dir(Path(spec.path or "."), spec)


def _packages_in_dir(directory: Path, spec: RuntimeSpec) -> list[Path]:
    found = sorted(p for p in directory.iterdir() if p.suffix in (".deb", ".rpm"))
    if not found:
        raise SourceError(f"runtime.path {directory} holds no .deb or .rpm files")
    if spec.packages == DEFAULT_PACKAGES or not spec.packages:
        return found
    chosen = []
    for name in spec.packages:
        match = [p for p in found if _package_name(p) == name]
        if not match:
            raise SourceError(f"package {name!r} is not among the files in {directory}")
        chosen.append(match[-1])
    return chosen


def _package_name(pkg: Path) -> str:
    return pkg.name.split("_", 1)[0] if pkg.suffix == ".deb" else pkg.name.rsplit("-", 2)[0]


def package_info(pkg: Path) -> PackageInfo:
    """Name, version and architecture of a .deb (from its control file) or an .rpm (its name)."""
    if pkg.suffix == ".deb":
        control = _deb_control(pkg)
        name, version, arch = control.get("Package"), control.get("Version"), control.get("Architecture")
    else:
        stem = pkg.name.removesuffix(".rpm")
        rest, _, arch = stem.rpartition(".")
        name, version, release = rest.rsplit("-", 2) if rest.count("-") >= 2 else (rest, "", "")
        version = f"{version}-{release}" if release else version
    if not name or not arch:
        raise SourceError(f"{pkg} is not a package this builder can read (no name/architecture)")
    return PackageInfo(name, version or "", arch, pkg.name, file_sha256(pkg))


def _deb_control(pkg: Path) -> dict[str, str]:
    try:
        with libarchive.file_reader(str(pkg)) as outer:
            for member in outer:
                if member.pathname.startswith("control.tar"):
                    return _control_fields(b"".join(member.get_blocks()))
    except libarchive.ArchiveError as exc:
        raise SourceError(f"cannot read package {pkg}: {exc}") from exc
    raise SourceError(f"{pkg} has no control.tar member: not a Debian package?")


def _control_fields(data: bytes) -> dict[str, str]:
    with libarchive.memory_reader(data) as inner:
        for entry in inner:
            if entry.pathname.lstrip("./") == "control":
                text = b"".join(entry.get_blocks()).decode("utf-8", "replace")
                return dict(_field(line) for line in text.splitlines() if _field(line))
    return {}


def _field(line: str) -> tuple[str, str] | None:
    key, sep, value = line.partition(":")
    return (key.strip(), value.strip()) if sep and not line.startswith(" ") else None


def check_package_arch(info: PackageInfo, arch: str) -> None:
    if info.arch not in (arch, "all", "noarch"):
        raise SourceError(f"package {info.file} is for architecture {info.arch}, not {arch}",
                          hint=f"use the {arch} build of {info.name}")


def stage_packages(pkgs: list[Path], spec: RuntimeSpec, dest: Path) -> Staged:
    staged = Staged(dest)
    for pkg in pkgs:
        info = package_info(pkg)
        check_package_arch(info, spec.arch)
        staged.packages.append(info)
        for member in debpkg.unpack_package(pkg, dest):
            staged.origin[member] = info.name
    return staged


# ----------------------------------------------------------------------------- the target


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
    layout = Layout(spec.python, spec.version)
    real = elfdeps.resolve_in_root(staged.root, layout.binary)
    if real is None:
        provider = f"{spec.python}-minimal" if staged.packages else "the sysroot"
        raise SourceError(f"/{layout.binary} is missing from the runtime ({provider} provides it)",
                          hint=f"add {spec.python}-minimal to runtime.packages"
                          if staged.packages else None)
    info = elfdeps.read_elf(staged.root / real)
    elfdeps.check_arch(info, spec.arch, f"/{layout.binary} from {staged.origin_of(real)}")
    if not (staged.root / layout.stdlib / "encodings" / "__init__.py").is_file():
        raise SourceError(f"/{layout.stdlib}/encodings is missing from the runtime "
                          f"(lib{spec.python}-minimal provides the core stdlib)")
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


def static_magic(root: Path, layout: Layout) -> int | None:
    """MAGIC_NUMBER from the target's importlib/_bootstrap_external.py, else the version table."""
    source = root / layout.stdlib / "importlib" / "_bootstrap_external.py"
    if source.is_file():
        found = re.search(r"^MAGIC_NUMBER = \((\d+)\)\.to_bytes", source.read_text("utf-8", "replace"),
                          re.MULTILINE)
        if found:
            return int(found.group(1))
    return KNOWN_MAGIC.get(layout.version)


def describe_target(staged: Staged, spec: RuntimeSpec, binary: str,
                    reporter: Reporter) -> TargetPython:
    layout = Layout(spec.python, spec.version)
    probed = probe_target(staged.root, binary, spec.arch) if spec.probe else None
    if probed is not None:
        return TargetPython(probed["version"], probed["magic"], frozenset(probed["builtins"]),
                            frozenset(probed["frozen"]), tuple(probed["ext_suffixes"]),
                            "qemu probe")
    magic = static_magic(staged.root, layout)
    if magic is None:
        raise SourceError(f"cannot tell the bytecode magic of {spec.python}: no "
                          f"importlib/_bootstrap_external.py and no table entry")
    host = f"{sys.version_info[0]}.{sys.version_info[1]}"
    if spec.probe:
        reporter.warning(f"qemu-{QEMU_ARCH.get(spec.arch, spec.arch)} is not installed: the "
                         f"target's built-in module table is assumed equal to the host's")
    if host != spec.version:
        raise CompileError(f"cannot describe {spec.python} without running it, and the host "
                           f"Python is {host}", hint="install qemu-user, or run with Python "
                           f"{spec.version}")
    import _imp
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    suffixes = (f".cpython-{spec.version.replace('.', '')}-{multiarch}.so", ".abi3.so", ".so")
    return TargetPython(spec.version, magic, frozenset(sys.builtin_module_names),
                        frozenset(_imp._frozen_module_names()), suffixes, "static tables")


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


# ----------------------------------------------------------------------------- module closure


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError")


def _is_import_fallback(handler: ast.excepthandler) -> bool:
    """An `except ImportError:` (or a tuple naming it): runs only when an import failed."""
    kind = getattr(handler, "type", None)
    names = kind.elts if isinstance(kind, ast.Tuple) else [kind]
    return any(isinstance(n, ast.Name) and n.id in IMPORT_ERRORS for n in names)


FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
BLOCK_NODES = (ast.stmt, ast.excepthandler, ast.match_case)


def top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        else:
            for target in ast.walk(node):
                if isinstance(target, ast.Name) and isinstance(target.ctx, ast.Store):
                    names.add(target.id)
    return names


class ClosureFinder(modulefinder.ModuleFinder):
    """ModuleFinder resolving against the target's tables and scanning import statements."""

    def __init__(self, path: list[str], target: TargetPython, deep: tuple[str, ...]) -> None:
        super().__init__(path=path)
        self.target = target
        self.deep = tuple(deep)
        self.importers: dict[str, set[str]] = defaultdict(set)
        self._scanning: list[str] = []

    def find_module(self, name: str, path: list[str] | None, parent: Any = None) -> tuple:
        fullname = f"{parent.__name__}.{name}" if parent else name
        if fullname in self.excludes:
            raise ImportError(name)
        if path is None:
            if name in self.target.builtins:
                return None, None, ("", "", modulefinder._C_BUILTIN)
            path = self.path
        for entry in path:
            found = self._find_in(entry, name)
            if found is not None:
                return found
        raise ImportError(f"No module named {fullname}")

    def _find_in(self, entry: str, name: str) -> tuple | None:
        base = os.path.join(entry, name)
        if os.path.isfile(os.path.join(base, "__init__.py")):
            return None, base, ("", "", modulefinder._PKG_DIRECTORY)
        if os.path.isfile(base + ".py"):
            return open(base + ".py", "rb"), base + ".py", (".py", "rb", modulefinder._PY_SOURCE)
        for suffix in self.target.ext_suffixes:
            if os.path.isfile(base + suffix):
                return None, base + suffix, (suffix, "rb", modulefinder._C_EXTENSION)
        return None

    def import_module(self, partname: str, fqname: str, parent: Any) -> Any:
        importer = self._scanning[-1] if self._scanning else "(root)"
        if importer != fqname:
            self.importers[fqname].add(importer)
        return super().import_module(partname, fqname, parent)

    def scan_code(self, co: Any, m: Any) -> None:
        with open(m.__file__, "rb") as handle:
            tree = ast.parse(handle.read(), m.__file__)
        m.globalnames.update(dict.fromkeys(top_level_names(tree), 1))
        deep = m.__name__ in self.deep or m.__name__.startswith(tuple(d + "." for d in self.deep))
        self._scanning.append(m.__name__)
        try:
            self._scan_nodes(tree.body, m, deep)
        finally:
            self._scanning.pop()

    def _scan_nodes(self, nodes: Iterable[ast.AST], m: Any, deep: bool) -> None:
        """Follow the import statements that can run (see the module docstring)."""
        for node in nodes:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._scan_import(node, m)
            elif isinstance(node, ast.If) and _is_type_checking(node.test):
                self._scan_nodes(node.orelse, m, deep)
            elif isinstance(node, ast.Try) and any(_is_import_fallback(h) for h in node.handlers):
                self._scan_try(node, m, deep)
            elif isinstance(node, FUNCTION_NODES) and not deep:
                continue
            elif deep or isinstance(node, BLOCK_NODES):
                self._scan_nodes(ast.iter_child_nodes(node), m, deep)

    def _scan_try(self, node: ast.Try, m: Any, deep: bool) -> None:
        """`try: import a / except ImportError: import b` needs b only when a is missing."""
        before = self._failures(m)
        self._scan_nodes(node.body, m, deep)
        failed = self._failures(m) != before
        for handler in node.handlers:
            if failed or not _is_import_fallback(handler):
                self._scan_nodes(handler.body, m, deep)
        self._scan_nodes(node.orelse + node.finalbody, m, deep)

    def _failures(self, m: Any) -> set[str]:
        return {name for name, callers in self.badmodules.items() if m.__name__ in callers}

    def _scan_import(self, node: ast.Import | ast.ImportFrom, m: Any) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._safe_import_hook(alias.name, m, None, level=0)
            return
        fromlist = [a.name for a in node.names if a.name != "*"] or None
        if node.level == 0:
            self._safe_import_hook(node.module or "", m, fromlist, level=0)
        elif node.module:
            self._safe_import_hook(node.module, m, fromlist, level=node.level)
        else:
            parent = self.determine_parent(m, level=node.level)
            self._safe_import_hook(parent.__name__, m, fromlist, level=0)


@dataclass(frozen=True)
class ModuleRecord:
    name: str
    kind: str  # source | package | extension | builtin | frozen
    file: str | None
    importers: tuple[str, ...]


@dataclass
class ModuleClosure:
    modules: dict[str, ModuleRecord]
    missing: dict[str, list[str]]


def writer_modules(package_dir: Path) -> list[str]:
    """Dotted names of the writer package's modules (not __main__: /init imports main)."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts or "tests" in parts or parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def module_closure(target: TargetPython, search: list[Path], roots: list[str],
                   deep: tuple[str, ...]) -> ModuleClosure:
    finder = ClosureFinder([str(p) for p in search], target, deep)
    for name in roots:
        try:
            finder.import_hook(name)
        except ImportError as exc:
            raise SourceError(f"module {name} is not in the target runtime: {exc}") from exc
    modules = {}
    for name, module in sorted(finder.modules.items()):
        modules[name] = ModuleRecord(name, _kind(module, target), module.__file__,
                                     tuple(sorted(finder.importers.get(name, {"(root)"}))))
    missing, maybe = finder.any_missing_maybe()
    gone = {name: sorted(c for c in finder.badmodules.get(name, {}) if c != "-") for name in missing}
    return ModuleClosure(modules, gone)


def _kind(module: Any, target: TargetPython) -> str:
    if module.__name__ in target.frozen:
        return "frozen"
    if module.__file__ is None:
        return "builtin"
    if module.__path__:
        return "package"
    return "extension" if not module.__file__.endswith(".py") else "source"


# ----------------------------------------------------------------------------- the output tree


@dataclass
class FileRecord:
    path: str
    type: str
    mode: int
    size: int = 0
    sha256: str = ""
    category: str = ""
    origin: str = ""
    why: list[str] = field(default_factory=list)
    target: str = ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = "/" + self.path
        if self.type != "symlink":
            data.pop("target")
        return data


class TreeWriter:
    """Writes the output tree and remembers a FileRecord for everything it writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.records: dict[str, FileRecord] = {}

    def copy(self, src: Path, path: str, mode: int, category: str, origin: str,
             why: Iterable[str]) -> None:
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        self._record(path, mode, category, origin, why)

    def write(self, data: bytes, path: str, mode: int, category: str, origin: str,
              why: Iterable[str]) -> None:
        dest = self.root / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        self._record(path, mode, category, origin, why)

    def mkdir(self, path: str, why: str) -> None:
        (self.root / path).mkdir(parents=True, exist_ok=True)
        self.records[path] = FileRecord(path, "dir", 0o755, why=[why], category="directory")

    def _record(self, path: str, mode: int, category: str, origin: str,
                why: Iterable[str]) -> None:
        dest = self.root / path
        os.chmod(dest, mode)
        self.records[path] = FileRecord(path, "file", mode, dest.stat().st_size, file_sha256(dest),
                                        category, origin, list(why))


@dataclass(frozen=True)
class Bytecode:
    module: str
    member: str  # path relative to the bytecode root: "zfcpdump_writer/main.pyc"
    source: Path
    origin: str
    why: tuple[str, ...]


def bytecode_jobs(closure: ModuleClosure, writer_prefix: str, staged: Staged,
                  keep_frozen: tuple[str, ...]) -> list[Bytecode]:
    """One .pyc per source module that is neither frozen (unless kept) nor built in."""
    jobs = []
    for record in closure.modules.values():
        wanted = record.kind in ("source", "package") or record.name in keep_frozen
        if not wanted or record.file is None or not record.file.endswith(".py"):
            continue
        package = os.path.basename(record.file) == "__init__.py"
        member = record.name.replace(".", "/") + ("/__init__.pyc" if package else ".pyc")
        if record.name.split(".")[0] == writer_prefix:
            origin = "writer"
        else:
            origin = staged.origin_of(os.path.relpath(record.file, staged.root))
        jobs.append(Bytecode(record.name, member, Path(record.file), origin,
                             tuple(_import_reasons(record))))
    return jobs


def _import_reasons(record: ModuleRecord) -> list[str]:
    return [f"imported by {name}" if name != "(root)" else "closure root" for name in record.importers]


def compile_bytecode(jobs: list[Bytecode], layout: Layout, spec: RuntimeSpec,
                     writer_prefix: str, work: Path) -> dict[str, bytes]:
    """member -> .pyc bytes, compiled in a seeded child interpreter."""
    prefix = layout.zip if spec.bytecode == "zip" else layout.stdlib
    groups: dict[int, list[pycompile.Job]] = defaultdict(list)
    for job in jobs:
        level = 0 if job.origin == "writer" else spec.optimize
        dfile = "/" + prefix + "/" + job.member.removesuffix("c")
        groups[level].append(pycompile.Job(job.source, dfile, work / job.member))
    for level, group in sorted(groups.items()):
        try:
            pycompile.compile_jobs(group, level)
        except pycompile.CompileFailure as exc:
            raise CompileError(f"cannot compile the runtime's bytecode: {exc}") from exc
    return {job.member: (work / job.member).read_bytes() for job in jobs}


def stored_zip(members: dict[str, bytes]) -> bytes:
    """A deterministic ZIP_STORED archive of *members* (sorted, fixed dates and modes)."""
    with tempfile.SpooledTemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_STORED) as archive:
            for name in sorted(members):
                info = zipfile.ZipInfo(name, ZIP_DATE)
                info.external_attr = 0o100644 << 16
                info.create_system = 3
                archive.writestr(info, members[name], zipfile.ZIP_STORED)
        handle.seek(0)
        return handle.read()


# ----------------------------------------------------------------------------- custom interpreter


@dataclass(frozen=True)
class CustomBuild:
    binary: Path
    builtins: tuple[str, ...]
    exports: tuple[str, ...]


MAIN_C = '#include "Python.h"\nint main(int argc, char **argv) { return Py_BytesMain(argc, argv); }\n'
INITTAB = re.compile(r'\{"(\w+)", (\w+)\}')


def dev_packages(spec: RuntimeSpec) -> tuple[str, ...]:
    """What linking a custom interpreter needs besides the runtime packages."""
    return (f"lib{spec.python}-dev", "libc6-dev", "linux-libc-dev", "zlib1g-dev")


def cross_tool(arch: str, tool: str) -> str:
    name = f"{elfdeps.arch_info(arch).multiarch}-{tool}"
    found = shutil.which(name)
    if found is None:
        raise HostError(f"{name} is not installed (needed for runtime.interpreter: custom)",
                        hint=f"apt-get install gcc-{elfdeps.arch_info(arch).multiarch}")
    return found


def toolchain_version(arch: str) -> str:
    result = subprocess.run([cross_tool(arch, "gcc"), "--version"], capture_output=True, text=True,
                            check=False)
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


def config_dir(root: Path, spec: RuntimeSpec) -> Path:
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    path = root / "usr/lib" / spec.python / f"config-{spec.version}-{multiarch}"
    if not (path / f"lib{spec.python}.a").is_file():
        raise SourceError(f"/{path.relative_to(root)}/lib{spec.python}.a is missing: a custom "
                          f"interpreter needs lib{spec.python}-dev for {spec.arch}")
    return path


def inittab(config_c: str, keep: set[str]) -> list[tuple[str, str]]:
    """The config.c entries to keep: the core ones (after MARKER 2) and those named in *keep*."""
    head, _, core = config_c.partition("ADDMODULE MARKER 2")
    optional = [m.groups() for m in INITTAB.finditer(head) if m.group(1) in keep]
    return optional + [m.groups() for m in INITTAB.finditer(core)]


def bootstrap_modules(setup: Path) -> set[str]:
    """Modules CPython's Setup.bootstrap builds in: the interpreter's own start needs them."""
    names = set()
    for line in setup.read_text().splitlines():
        word = line.split("#", 1)[0].split()
        if word and not word[0].startswith("*") and "=" not in word[0]:
            names.add(word[0])
    return names


def render_config_c(entries: list[tuple[str, str]]) -> str:
    lines = ['#include "Python.h"']
    lines += [f"extern PyObject* {fn}(void);" for _, fn in entries if fn != "NULL"]
    lines += ["struct _inittab _PyImport_Inittab[] = {"]
    lines += [f'    {{"{name}", {fn}}},' for name, fn in entries] + ["    {0, 0}", "};"]
    return "\n".join(lines) + "\n"


def extension_imports(extensions: list[Path]) -> set[str]:
    """Symbols the extension modules expect the interpreter to export."""
    from elftools.elf.elffile import ELFFile

    names: set[str] = set()
    for path in extensions:
        with open(path, "rb") as handle:
            dynsym = ELFFile(handle).get_section_by_name(".dynsym")
            names |= {s.name for s in dynsym.iter_symbols() if s.name and s["st_shndx"] == "SHN_UNDEF"}
    return names


def archive_defines(nm: str, archive: Path) -> set[str]:
    result = subprocess.run([nm, "--defined-only", "-g", str(archive)], capture_output=True,
                            text=True, check=False)
    return {line.split()[-1] for line in result.stdout.splitlines() if len(line.split()) == 3}


def custom_interpreter(root: Path, spec: RuntimeSpec, closure: ModuleClosure,
                       extensions: list[Path], work: Path) -> CustomBuild:
    """Link lib<python>.a with a built-in module table cut to what the closure needs.

    Kept: the core entries, Setup.bootstrap's modules and the closure's built-in modules.
    Unused built-ins (unicodedata, pyexpat, the hashes, ...) and so their libraries drop out.
    The symbols the shipped extension modules import are forced in and exported.
    """
    conf = config_dir(root, spec)
    needed = {name for name, r in closure.modules.items() if r.kind == "builtin"}
    entries = inittab((conf / "config.c").read_text(), needed | bootstrap_modules(conf / "Setup.bootstrap"))
    work.mkdir(parents=True)
    (work / "config.c").write_text(render_config_c(entries))
    (work / "main.c").write_text(MAIN_C)
    library = conf / f"lib{spec.python}.a"
    exports = sorted(extension_imports(extensions) & archive_defines(cross_tool(spec.arch, "nm"), library))
    (work / "exports.list").write_text("{\n" + "".join(f"  {s};\n" for s in exports) + "};\n")
    (work / "link.rsp").write_text("\n".join(f"-Wl,--undefined={s}" for s in exports) + "\n")
    _compile_and_link(root, spec, work, library)
    return CustomBuild(work / spec.python, tuple(name for name, _ in entries), tuple(exports))


def _compile_and_link(root: Path, spec: RuntimeSpec, work: Path, library: Path) -> None:
    cc = cross_tool(spec.arch, "gcc")
    include = root / "usr/include" / spec.python
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    static = [p for p in (root / "usr/lib" / multiarch / "libz.a",) if p.is_file()]
    steps = [[cc, f"--sysroot={root}", "-O2", f"-I{include}", "-c", f"{name}.c", "-o", f"{name}.o"]
             for name in ("main", "config")]
    steps.append([cc, f"--sysroot={root}", "-no-pie", "-fno-lto", "-s", "-Wl,-O1", "-Wl,--gc-sections",
                  "-Wl,--dynamic-list=exports.list", "@link.rsp", "main.o",
                  "config.o", str(library), *map(str, static), "-lm", "-o", spec.python])
    for cmd in steps:
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-8:])
            raise CompileError(f"linking the custom {spec.python} failed:\n{tail}",
                               hint="use runtime.interpreter: packaged")


# ----------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class WriterPackage:
    path: Path
    name: str
    digest: str

    @classmethod
    def load(cls, path: Path) -> WriterPackage:
        path = Path(path).resolve()
        if not (path / "__init__.py").is_file() or not (path / "main.py").is_file():
            raise SourceError(f"{path} is not the writer package (needs __init__.py and main.py)")
        return cls(path, path.name, _source_digest(path))


def _source_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*.py")):
        rel = file.relative_to(path).as_posix()
        if "__pycache__" not in rel:
            digest.update(f"{rel}\0".encode() + file.read_bytes() + b"\0")
    return digest.hexdigest()


def builder_digest() -> str:
    """Hash of the code that shapes this stage's output, so code changes miss the cache."""
    return code_digest(Path(__file__), Path(elfdeps.__file__ or ""), Path(pycompile.__file__ or ""))


def _sysroot_fingerprint(root: Path, spec: RuntimeSpec) -> str:
    layout = Layout(spec.python, spec.version)
    multiarch = elfdeps.arch_info(spec.arch).multiarch
    digest = hashlib.sha256()
    for sub in (layout.binary, layout.stdlib, f"lib/{multiarch}", f"usr/lib/{multiarch}", "lib"):
        for path in sorted(_walk(root / sub)):
            stat = path.lstat()
            digest.update(f"{path.relative_to(root)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file() or path.is_symlink():
        yield path
    elif path.is_dir():
        for dirpath, _dirs, files in os.walk(path):
            yield from (Path(dirpath) / f for f in files)


def package_digests(pkgs: list[Path]) -> list[list[str]]:
    return [[p.name, file_sha256(p)] for p in pkgs]


def runtime_inputs(spec: RuntimeSpec, packages: list[list[str]], writer: WriterPackage) -> dict[str, Any]:
    inputs: dict[str, Any] = {
        "spec": spec.cache_inputs(),
        "packages": packages,
        "writer": writer.digest,
        "builder": builder_digest(),
        "host_magic": pycompile.host_magic(),
        "host_python": sys.version.split()[0],
        "qemu": qemu_command(spec.arch) is not None and spec.probe,
    }
    if spec.interpreter == "custom":
        inputs["toolchain"] = toolchain_version(spec.arch)
    if spec.kind == "sysroot":
        inputs["spec"]["path"] = None
        inputs["sysroot"] = _sysroot_fingerprint(Path(spec.path or "."), spec)
    return inputs


def build_runtime(spec: RuntimeSpec, writer_package_dir: Path, store: Store, reporter: Reporter,
                  cache_dir: Path, offline: bool = False) -> StageOutput:
    """The 'runtime' stage: output dir holds root/ (the file tree) and files.json."""
    spec.validate()
    writer = WriterPackage.load(writer_package_dir)
    pkgs = acquire(spec, cache_dir, reporter, offline)
    packages = package_digests(pkgs)

    def producer(out: Path) -> dict[str, Any]:
        staged = (Staged(Path(spec.path or ".").resolve()) if spec.kind == "sysroot"
                  else unpacked_packages(pkgs, packages, spec, store))
        return produce_runtime(spec, staged, writer, out, reporter)

    return store.produce("runtime", runtime_inputs(spec, packages, writer), producer)


def unpacked_packages(pkgs: list[Path], packages: list[list[str]], spec: RuntimeSpec,
                      store: Store) -> Staged:
    """The packages unpacked into one root, kept as its own object: a writer change then
    reuses it instead of unpacking libc and libpython again. Read-only once made.
    *packages* are the package digests (package_digests)."""
    unpacker = code_digest(Path(debpkg.__file__ or ""), Path(__file__))
    inputs = {"packages": packages, "arch": spec.arch, "unpacker": unpacker}

    def producer(out: Path) -> dict[str, Any]:
        staged = stage_packages(pkgs, spec, out / "root")
        (out / "origin.json").write_text(json.dumps(
            {"packages": [asdict(info) for info in staged.packages], "origin": staged.origin},
            indent=1, sort_keys=True) + "\n")
        return {"packages": len(staged.packages), "files": len(staged.origin)}

    output = store.produce("sysroot", inputs, producer)
    recorded = json.loads((output.path / "origin.json").read_text())
    return Staged(output.path / "root", [PackageInfo(**info) for info in recorded["packages"]],
                  recorded["origin"])


def produce_runtime(spec: RuntimeSpec, staged: Staged, writer: WriterPackage, out: Path,
                    reporter: Reporter) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="runtime-", dir=out.parent) as tmp:
        manifest = assemble(spec, staged, writer, out, Path(tmp), reporter)
    (out / FILES_JSON).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    totals = manifest["totals"]
    return {"files": totals["files"], "bytes": totals["bytes"], "modules": len(manifest["modules"])}


def assemble(spec: RuntimeSpec, staged: Staged, writer: WriterPackage, out: Path, work: Path,
             reporter: Reporter) -> dict[str, Any]:
    layout = Layout(spec.python, spec.version)
    binary = find_python(staged, spec)
    target = describe_target(staged, spec, binary, reporter)
    check_magic(target, spec.python)
    (work / "writer").mkdir()
    shutil.copytree(writer.path, work / "writer" / writer.name,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"))
    search = [work / "writer", staged.root / layout.stdlib, staged.root / layout.dynload]
    roots = [*STARTUP_MODULES, *writer_modules(work / "writer" / writer.name), *spec.extra_modules]
    closure = module_closure(target, search, roots, deep=(writer.name,))
    _warn_missing(closure, writer.name, reporter)
    tree = TreeWriter(out / ROOT_DIR)
    custom = None
    if spec.interpreter == "custom":
        extensions = [staged.root / _in_root(staged.root, r.file) for r in closure.modules.values()
                      if r.kind == "extension"]
        custom = custom_interpreter(staged.root, spec, closure, extensions, work / "custom")
        target = TargetPython(target.version, target.magic, frozenset(custom.builtins),
                              target.frozen, target.ext_suffixes, target.source)
    _emit_native(tree, staged, spec, layout, binary, closure, custom)
    jobs = bytecode_jobs(closure, writer.name, staged, landmark_modules(spec))
    pycs = compile_bytecode(jobs, layout, spec, writer.name, work / "pyc")
    _emit_bytecode(tree, spec, layout, jobs, pycs)
    manifest = _manifest(spec, staged, target, layout, tree, closure, jobs, pycs)
    if custom is not None:
        manifest["python"]["custom"] = {"builtins": sorted(custom.builtins),
                                        "exported_symbols": len(custom.exports)}
    return manifest


def _warn_missing(closure: ModuleClosure, writer: str, reporter: Reporter) -> None:
    for name, importers in sorted(closure.missing.items()):
        if any(i.split(".")[0] == writer for i in importers):
            reporter.warning(f"runtime: {name} (imported by {', '.join(importers)}) is not in the "
                             "target runtime; the writer must guard that import")


def _emit_native(tree: TreeWriter, staged: Staged, spec: RuntimeSpec, layout: Layout,
                 binary: str, closure: ModuleClosure, custom: CustomBuild | None) -> None:
    extensions = {f"{layout.dynload}/{os.path.basename(r.file or '')}": r
                  for r in closure.modules.values() if r.kind == "extension"}
    start = [layout.binary] + sorted(_in_root(staged.root, r.file) for r in extensions.values())
    override = {layout.binary: custom.binary} if custom is not None else None
    elf = elfdeps.elf_closure(staged.root, start, spec.arch, override)
    for image_path, real in elf.objects.items():
        category = _native_category(image_path, layout, elf.interp)
        why = list(elf.why[image_path])
        record = extensions.get(image_path)
        if record is not None:
            why = [f"extension module {record.name}"] + _import_reasons(record) + why[1:]
        elif image_path == layout.binary:
            why = [f"the interpreter, started by /init with {' '.join(INTERPRETER_FLAGS)}"]
        origin = staged.origin_of(real)
        if custom is not None and image_path == layout.binary:
            why.append(f"custom build: lib{spec.python}.a with {len(custom.builtins)} built-in modules")
            origin = "generated"
        tree.copy(staged.root / real, image_path, 0o755, category, origin, why)
    tree.mkdir(layout.dynload, "exec_prefix landmark (lib-dynload must be a directory)")


def _in_root(root: Path, file: str | None) -> str:
    return os.path.relpath(file or "", root)


def _native_category(path: str, layout: Layout, interp: str | None) -> str:
    if path == layout.binary:
        return "interpreter"
    if path == interp:
        return "loader"
    if path.startswith(layout.dynload + "/"):
        return "extension"
    return "library"


def _emit_bytecode(tree: TreeWriter, spec: RuntimeSpec, layout: Layout, jobs: list[Bytecode],
                   pycs: dict[str, bytes]) -> None:
    if spec.bytecode == "zip":
        why = ["all bytecode (ZIP_STORED); also the prefix landmark lib/python3X.zip"]
        tree.write(stored_zip(pycs), layout.zip, 0o644, "bytecode", "generated", why)
        return
    for job in jobs:
        why = list(job.why)
        if job.module == "os":
            why.append("prefix landmark (lib/python3.X/os.pyc)")
        category = "writer" if job.origin == "writer" else "bytecode"
        tree.write(pycs[job.member], f"{layout.stdlib}/{job.member}", 0o644, category, job.origin, why)


def landmark_modules(spec: RuntimeSpec) -> tuple[str, ...]:
    """Frozen modules that must still exist as files: os.pyc marks the prefix for 'files'."""
    return ("os",) if spec.bytecode == "files" else ()


def _manifest(spec: RuntimeSpec, staged: Staged, target: TargetPython, layout: Layout,
              tree: TreeWriter, closure: ModuleClosure, jobs: list[Bytecode],
              pycs: dict[str, bytes]) -> dict[str, Any]:
    files = [tree.records[p].as_json() for p in sorted(tree.records)]
    by_member = {j.member: j for j in jobs}
    modules = []
    for record in closure.modules.values():
        entry: dict[str, Any] = {"name": record.name, "kind": record.kind,
                                 "why": _import_reasons(record)}
        member = next((m for m, j in by_member.items() if j.module == record.name), None)
        if member is not None:
            job = by_member[member]
            entry.update(member=member, size=len(pycs[member]), origin=job.origin,
                         sha256=hashlib.sha256(pycs[member]).hexdigest(),
                         category="writer" if job.origin == "writer" else "bytecode")
        modules.append(entry)
    regular = [f for f in files if f["type"] == "file"]
    return {
        "python": {"name": spec.python, "version": target.version, "magic": target.magic,
                   "binary": "/" + layout.binary, "flags": list(INTERPRETER_FLAGS),
                   "bytecode": spec.bytecode, "optimize": spec.optimize,
                   "zip": "/" + layout.zip if spec.bytecode == "zip" else None,
                   "tables": target.source},
        "arch": spec.arch,
        "kind": spec.kind,
        "packages": [asdict(p) for p in staged.packages],
        "files": files,
        "modules": modules,
        "missing_modules": {k: v for k, v in sorted(closure.missing.items())},
        "totals": {"files": len(regular), "bytes": sum(f["size"] for f in regular)},
    }


def load_manifest(output: StageOutput | Path) -> dict[str, Any]:
    path = output.path if isinstance(output, StageOutput) else Path(output)
    return json.loads((path / FILES_JSON).read_text())
