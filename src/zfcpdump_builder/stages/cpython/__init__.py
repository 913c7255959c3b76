"""The 'cpython' stage: a static CPython for the target, built from source.

The source is the orig tarball of Debian's python3.11 (the release the target's packages ship,
so host-compiled bytecode matches), or a local tarball pinned by sha256. It is cross-compiled
with `-Os` and section garbage collection and linked with `-static`, so no loader and no
shared library goes into the rd. Only the built-in modules asked for are compiled in, plus
`_zfcpdump` (mount, umount, reboot: the writer needs no ctypes). The result must be a static
ELF for the target: a PT_INTERP or DT_NEEDED left in it is a build error.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import debpkg, debsource, elfdeps, toolchain
from ...core.errors import CompileError, HostError, SourceError
from ...core.events import Reporter
from ...core.hostrun import run_logged
from ...core.store import code_digest, file_sha256
from ..model import Prepared

NATIVE_MODULE = Path(__file__).with_name("_zfcpdump.c")
BUILD_PYTHON = "/usr/bin/python3.11"
BINARY = "python3.11"
BUILTINS_JSON = "builtins.json"
# What freezing the writer into an interpreter needs (stages/runtime/freeze.py): the library,
# the headers and the libraries the interpreter links with.
DEV_DIR = "dev"
ARCHIVE = "libpython3.11.a"
LINK_JSON = "link.json"
FROZEN_JSON = "frozen.json"
# CPython deep-freezes a dozen stdlib modules into .data (0.85 MB here, and pages the
# interpreter dirties). Only the import system stays so; the writer's stage freezes the
# modules its closure needs, marshalled, next to its own (stages/runtime/freeze.py).
KEPT_FROZEN = {
    "importlib._bootstrap": "_frozen_importlib",
    "importlib._bootstrap_external": "_frozen_importlib_external",
}
# Modules dropped when nothing imports them: start-up needs none of them.
DROPPABLE = ("_locale", "_sre", "_symtable", "pwd", "xxsubtype")  # not _tracemalloc: the core links it
# Stdlib modules that need a library outside CPython: the static interpreter never has them.
NEEDS_LIBRARY = frozenset(
    [
        "zlib",
        "_bz2",
        "_lzma",
        "_ctypes",
        "_dbm",
        "_gdbm",
        "_sqlite3",
        "_ssl",
        "_hashlib",
        "_uuid",
        "readline",
        "_curses",
        "_curses_panel",
        "_tkinter",
        "_crypt",
        "nis",
    ]
)
CFLAGS = "-Os -g0 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables"
LDFLAGS = "-static -Wl,--gc-sections"
# No /dev/ptmx probing when cross-compiling, and no external library: zlib's header would be
# found for the host, its static library for the target would not.
CONFIGURE_CACHE = (
    "ac_cv_file__dev_ptmx=no",
    "ac_cv_file__dev_ptc=no",
    "ac_cv_buggy_getaddrinfo=no",
    "ac_cv_header_zlib_h=no",
    # No dynamic loading: a static glibc's dlopen (and NSS, which dlopens) costs ~0.2 MB.
    "ac_cv_func_dlopen=no",
    "ac_cv_lib_dl_dlopen=no",
    "ac_cv_func_getgrouplist=no",
    "ac_cv_func_initgroups=no",
)


@dataclass(frozen=True)
class CPythonSource:
    """Where the CPython source comes from: a Debian source package's orig tarball, or a file."""

    package: str = "python3.11"
    filename: str = "python3.11_3.11.2.orig.tar.gz"
    path: Path | None = None  # a local tarball instead of the Debian one
    sha256: str | None = None  # mandatory with path

    def tarball(self, cache_dir: Path, offline: bool) -> tuple[Path, str]:
        """The tarball and its sha256, checked (Debian: against the Sources index)."""
        if self.path is None:
            found = debsource.orig_tarball(self.package, self.filename, cache_dir, offline)
            return found, file_sha256(found)
        if not self.path.is_file():
            raise SourceError(f"CPython tarball {self.path} does not exist")
        actual = file_sha256(self.path)
        if actual != self.sha256:
            raise SourceError(
                f"sha256 mismatch for {self.path}: expected {self.sha256}, got {actual}",
                hint="nothing was built; fix the sha256 or the file",
            )
        return self.path, actual


def toolchain_identity(arch: str) -> list[str]:
    libc = Path("/usr") / elfdeps.arch_info(arch).multiarch / "lib/libc.a"
    if not libc.is_file():
        raise HostError(
            f"{libc} is missing: a static interpreter needs it", hint="apt-get install libc6-dev-s390x-cross"
        )
    return [toolchain.cross_gcc_version(arch), file_sha256(libc)]


def cpython_inputs(source_sha256: str, modules: tuple[str, ...], arch: str) -> dict[str, Any]:
    return {
        "source_sha256": source_sha256,
        "modules": sorted(set(modules)),
        "arch": arch,
        "cflags": CFLAGS,
        "ldflags": LDFLAGS,
        "toolchain": toolchain_identity(arch),
        "code": code_digest(Path(__file__), NATIVE_MODULE),
    }


def prepare_cpython(
    source: CPythonSource,
    modules: tuple[str, ...],
    arch: str,
    cache_dir: Path,
    reporter: Reporter,
    offline: bool,
) -> Prepared:
    """The stage keyed by the source's sha256, the module set, the flags and the toolchain."""
    tarball, digest = source.tarball(cache_dir, offline)
    if not Path(BUILD_PYTHON).is_file():
        raise HostError(
            f"{BUILD_PYTHON} is missing: cross-building CPython 3.11 needs it as the build Python"
        )
    logs = cache_dir / "logs" / "cpython"

    def produce(out: Path) -> dict[str, Any]:
        work = out / "work"
        reporter.info(f"[cpython] building a static {BINARY} for {arch} (a few minutes, once)")
        tree = unpack(tarball, work / "src")
        trim_frozen(tree, logs / "freeze_modules.log")
        build = work / "build"
        build.mkdir()
        configure(tree, build, arch, logs / "configure.log")
        buildable = available_modules(build / "Makefile")
        wanted = {m for m in modules if buildable.get(m, "yes") == "yes"}
        setup = setup_local(tree, wanted)
        shutil.copy(NATIVE_MODULE, tree / "Modules" / NATIVE_MODULE.name)
        (build / "Modules").mkdir(exist_ok=True)
        (build / "Modules" / "Setup.local").write_text(setup)
        jobs = str(len(os.sched_getaffinity(0)))
        run_logged(
            ["make", f"-j{jobs}", "python", "LINKFORSHARED= "],
            logs / "make.log",
            _env(work),
            "CPython build",
            cwd=build,
        )
        binary = out / BINARY
        subprocess.run(
            [f"{elfdeps.arch_info(arch).multiarch}-strip", "-o", str(binary), str(build / "python")],
            check=True,
        )
        check_static(binary, arch)
        export_dev(tree, build, out / DEV_DIR)
        builtins = builtin_names(build / "Modules" / "config.c")
        (out / BUILTINS_JSON).write_text(json.dumps(builtins, indent=1) + "\n")
        (out / FROZEN_JSON).write_text(json.dumps(frozen_names(tree / "Python/frozen.c")) + "\n")
        shutil.rmtree(work)
        dropped = sorted(set(modules) - wanted)
        return {"size": binary.stat().st_size, "builtins": len(builtins), "not_built": dropped}

    return Prepared(cpython_inputs(digest, modules, arch), produce)


FREEZE_SCRIPT = "Tools/scripts/freeze_modules.py"


def trim_frozen(tree: Path, log: Path) -> None:
    """Cut CPython's frozen-module list down to KEPT_FROZEN and regenerate what depends on it
    (Python/frozen.c, Makefile.pre.in), as `make regen-frozen` would."""
    script = tree / FREEZE_SCRIPT
    text = script.read_text() if script.is_file() else ""
    start, bootstrap = text.find("\nFROZEN = [\n"), text.find("\nBOOTSTRAP = {\n")
    end = text.find("}\n", bootstrap) + 2
    empty_guard = "        if not lines[0]:"
    if min(start, bootstrap) < 0 or empty_guard not in text:
        raise SourceError(f"{FREEZE_SCRIPT} is not shaped as in CPython 3.11: cannot trim the frozen modules")
    specs = "".join(f"        '{source} : {name}',\n" for source, name in KEPT_FROZEN.items())
    kept = "".join(f"    '{source}',\n" for source in KEPT_FROZEN)
    text = (
        text[:start]
        + f"\nFROZEN = [\n    ('import system', [\n{specs}    ]),\n]\nBOOTSTRAP = {{\n{kept}}}\n"
        + text[end:]
    ).replace(empty_guard, "        if lines and not lines[0]:")  # the stdlib and test tables are empty
    script.write_text(text)
    run_logged([BUILD_PYTHON, FREEZE_SCRIPT], log, {"LC_ALL": "C"}, "CPython freeze_modules", cwd=tree)


FROZEN_ENTRY = re.compile(r'^\s*\{"([\w.]+)",', re.MULTILINE)


def frozen_names(frozen_c: Path) -> list[str]:
    """The names in the interpreter's frozen tables (Python/frozen.c), aliases excluded."""
    text = frozen_c.read_text()
    tables = text[: text.find("static const struct _module_alias")]
    return sorted(set(FROZEN_ENTRY.findall(tables)))


PRINT_LIBS = "print-link-libs:\n\t@echo $(LIBS) $(MODLIBS) $(SYSLIBS)\n"


def export_dev(tree: Path, build: Path, dev: Path) -> None:
    """libpython, its headers (with the configured pyconfig.h) and its link libraries."""
    dev.mkdir()
    shutil.copy(build / ARCHIVE, dev / ARCHIVE)
    shutil.copytree(tree / "Include", dev / "include")
    shutil.copy(build / "pyconfig.h", dev / "include" / "pyconfig.h")
    printed = subprocess.run(
        ["make", "-s", "--no-print-directory", "-f", "Makefile", "-f", "-", "print-link-libs"],
        input=PRINT_LIBS,
        cwd=build,
        capture_output=True,
        text=True,
        check=True,
    )
    (dev / LINK_JSON).write_text(json.dumps({"libs": printed.stdout.split()}) + "\n")


def unpack(tarball: Path, dest: Path) -> Path:
    debpkg.unpack_archive(tarball, dest)
    top = [p for p in dest.iterdir() if p.is_dir() and not p.is_symlink()]
    if (
        len(top) != 1
        or not (top[0] / "configure").is_file()
        or not (top[0] / "Modules/Setup.stdlib.in").is_file()
    ):
        raise SourceError(f"{tarball.name} does not hold one CPython source tree with configure")
    return top[0]


def _env(work: Path) -> dict[str, str]:
    # Fixed dates and paths, so two checkouts and two cache dirs give the same binary.
    return {
        "LC_ALL": "C",
        "CONFIG_SITE": "",
        "SOURCE_DATE_EPOCH": "0",
        "PYTHONHASHSEED": "0",  # the build Python marshals frozen modules: set order must not vary
        "PKG_CONFIG_LIBDIR": "/nonexistent",  # the host's .pc files describe host libraries
        "CFLAGS": f"{CFLAGS} -ffile-prefix-map={work}=/cpython",
        "LDFLAGS": LDFLAGS,
    }


def configure(tree: Path, build: Path, arch: str, log: Path) -> None:
    multiarch = elfdeps.arch_info(arch).multiarch
    toolchain.cross_tool(arch, "gcc", "runtime.interpreter: static")
    command = [
        # Relative, because configure bakes its own path into the binary as VPATH.
        os.path.join(os.path.relpath(tree, build), "configure"),
        f"--host={multiarch}",
        f"--build={os.uname().machine}-linux-gnu",
        f"--with-build-python={BUILD_PYTHON}",
        "--prefix=/usr",  # where Debian's python looks for its stdlib, and so the rd's layout
        "--disable-shared",
        "--without-ensurepip",
        "--disable-test-modules",
        "--without-doc-strings",
        *CONFIGURE_CACHE,
    ]
    run_logged(command, log, _env(build.parent), "CPython configure", cwd=build)


SETUP_LINE = re.compile(r"^(?:@MODULE_\w+_TRUE@)?(\w+)\s+(.+)$")


def stdlib_lines(tree: Path) -> dict[str, str]:
    """Module name -> its Setup line, from Modules/Setup.stdlib.in."""
    lines = {}
    for raw in (tree / "Modules/Setup.stdlib.in").read_text().splitlines():
        match = SETUP_LINE.match(raw.strip())
        if match and not raw.startswith(("#", "*")):
            lines[match.group(1)] = f"{match.group(1)} {match.group(2)}"
    return lines


def bootstrap_names(tree: Path) -> set[str]:
    names = set()
    for raw in (tree / "Modules/Setup.bootstrap.in").read_text().splitlines():
        match = SETUP_LINE.match(raw.strip())
        if match and not raw.startswith(("#", "*")):
            names.add(match.group(1))
    return names


MODULE_STATE = re.compile(r"^MODULE_(\w+)_STATE=(\S*)", re.MULTILINE)


def available_modules(makefile: Path) -> dict[str, str]:
    """configure's verdict per stdlib module (yes, missing, disabled, n/a). A module it found
    no library for is not built in; the closure computed against the binary then shows
    whether the writer needed it (a build error) or only some unused stdlib path did."""
    return {name.lower(): state for name, state in MODULE_STATE.findall(makefile.read_text())}


def core_names(tree: Path) -> set[str]:
    """The modules always in the interpreter (Modules/config.c.in's fixed entries)."""
    path = tree / "Modules/config.c.in"
    return set(INITTAB.findall(path.read_text())) - {"__main__"} if path.is_file() else set()


def setup_local(tree: Path, modules: set[str]) -> str:
    """Setup.local: the wanted modules compiled in, the droppable bootstrap ones disabled."""
    known = stdlib_lines(tree)
    bootstrap = bootstrap_names(tree)
    extra = sorted(modules - bootstrap - core_names(tree) - {NATIVE_MODULE.stem})
    unknown = [m for m in extra if m not in known]
    if unknown:
        raise CompileError(
            f"the static interpreter cannot build in {', '.join(unknown)}: Modules/Setup.stdlib.in has no such module",
            hint="the writer must not import it, or use runtime.interpreter: custom",
        )
    needs_libs = [m for m in extra if " -l" in known[m]]
    if needs_libs:
        raise CompileError(
            f"the static interpreter does not link external libraries, but {', '.join(needs_libs)} needs one",
            hint="the writer must not import it, or use runtime.interpreter: custom",
        )
    disabled = sorted(m for m in DROPPABLE if m not in modules)
    static = [known[m] for m in extra] + [f"_zfcpdump {NATIVE_MODULE.name}"]
    return "*static*\n" + "\n".join(static) + "\n\n*disabled*\n" + "\n".join(disabled) + "\n"


INITTAB = re.compile(r'\{"(\w+)",\s*\w+\}')


def builtin_names(config_c: Path) -> list[str]:
    """The interpreter's built-in module table, as compiled (config.c's _PyImport_Inittab)."""
    return sorted(set(INITTAB.findall(config_c.read_text())) - {"__main__"})


def check_static(binary: Path, arch: str) -> None:
    info = elfdeps.read_elf(binary)
    elfdeps.check_arch(info, arch, "the static interpreter")
    if info.interp or info.needed:
        raise CompileError(
            f"the static interpreter still needs a loader or shared objects "
            f"(PT_INTERP {info.interp or '-'}, DT_NEEDED {', '.join(info.needed) or '-'})",
            hint="check that libc6-dev-s390x-cross provides libc.a and that no module links a shared library",
        )
