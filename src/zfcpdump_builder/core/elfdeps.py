"""ELF inspection with pyelftools: architecture checks, PT_INTERP and the DT_NEEDED closure.

All paths handled here are paths *inside a root* (a staged sysroot), written without a leading
slash ("lib/s390x-linux-gnu/libc.so.6"). Symlinks are followed the way the target's loader
would see them after a chroot: absolute link targets are taken relative to the root.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection, DynamicTag
from elftools.elf.elffile import ELFFile
from elftools.elf.segments import InterpSegment

from .errors import SourceError

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ArchInfo:
    """What a Debian architecture name means at the ELF level."""

    machine: str
    elfclass: int
    big_endian: bool
    multiarch: str


ARCHES: dict[str, ArchInfo] = {
    "s390x": ArchInfo("EM_S390", 64, True, "s390x-linux-gnu"),
    "amd64": ArchInfo("EM_X86_64", 64, False, "x86_64-linux-gnu"),
    "arm64": ArchInfo("EM_AARCH64", 64, False, "aarch64-linux-gnu"),
    "ppc64el": ArchInfo("EM_PPC64", 64, False, "powerpc64le-linux-gnu"),
    "i386": ArchInfo("EM_386", 32, False, "i386-linux-gnu"),
}


@dataclass(frozen=True)
class ElfInfo:
    """The facts about one ELF file that the closure needs."""

    machine: str
    elfclass: int
    big_endian: bool
    interp: str | None
    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None

    def describe(self) -> str:
        order = "big-endian" if self.big_endian else "little-endian"
        return f"{self.machine} {self.elfclass}-bit {order}"


def arch_info(arch: str) -> ArchInfo:
    try:
        return ARCHES[arch]
    except KeyError:
        raise SourceError(f"unknown architecture {arch!r}; known: {', '.join(sorted(ARCHES))}") from None


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """Parse *path*; raise SourceError if it is not a readable ELF file."""
    try:
        with open(path, "rb") as handle:
            elf = ELFFile(handle)
            return ElfInfo(
                machine=elf["e_machine"],
                elfclass=elf.elfclass,
                big_endian=not elf.little_endian,
                interp=_interp(elf),
                **dataclasses.asdict(_dynamic(elf)),
            )
    except (ELFError, OSError) as exc:
        raise SourceError(f"{path} is not a readable ELF file: {exc}") from exc


def _interp(elf: ELFFile) -> str | None:
    for segment in elf.iter_segments():
        if isinstance(segment, InterpSegment):
            return segment.get_interp_name()
    return None


def _tag_string(tag: DynamicTag, name: str) -> str:
    """A string-valued tag's value: pyelftools sets it as an attribute named after the tag."""
    return str(getattr(tag, name))


@dataclasses.dataclass(frozen=True)
class DynamicFacts:
    """What the dynamic section says about an ELF's dependencies."""

    needed: tuple[str, ...]
    runpath: tuple[str, ...]
    soname: str | None


def _dynamic(elf: ELFFile) -> DynamicFacts:
    needed: list[str] = []
    runpath: list[str] = []
    soname = None
    for section in elf.iter_sections():
        if not isinstance(section, DynamicSection):
            continue
        for tag in section.iter_tags():
            kind = tag.entry.d_tag
            if kind == "DT_NEEDED":
                needed.append(_tag_string(tag, "needed"))
            elif kind in ("DT_RUNPATH", "DT_RPATH"):
                runpath += _tag_string(tag, "runpath" if kind == "DT_RUNPATH" else "rpath").split(":")
            elif kind == "DT_SONAME":
                soname = _tag_string(tag, "soname")
    return DynamicFacts(tuple(needed), tuple(p for p in runpath if p), soname)


def check_arch(info: ElfInfo, arch: str, what: str) -> None:
    """Raise SourceError naming *what* unless *info* is an ELF object for *arch*."""
    want = arch_info(arch)
    if (info.machine, info.elfclass, info.big_endian) != (want.machine, want.elfclass, want.big_endian):
        order = "big-endian" if want.big_endian else "little-endian"
        raise SourceError(
            f"{what} is built for {info.describe()}, but the target architecture {arch} needs "
            f"{want.machine} {want.elfclass}-bit {order}",
            hint=f"use packages or a sysroot for {arch} (Debian arch name, e.g. *_{arch}.deb)",
        )


def resolve_in_root(root: Path, path: str, limit: int = 40) -> str | None:
    """Follow symlinks of in-root *path* chroot-style; the final in-root path, or None if absent."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if candidate.is_symlink():
            hops += 1
            if hops > limit:
                return None
            target = os.readlink(candidate)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        if not candidate.exists():
            return None
        done.append(part)
    return "/".join(done)


def default_libdirs(arch: str) -> tuple[str, ...]:
    """The trusted directories a Debian multiarch ld.so searches, in order."""
    multiarch = arch_info(arch).multiarch
    return (f"lib/{multiarch}", f"usr/lib/{multiarch}", "lib64", "usr/lib64", "lib", "usr/lib")


@dataclass
class ElfClosure:
    """Result of `elf_closure`: where each object lives in the image and why it is there."""

    interp: str | None = None
    interp_real: str | None = None
    objects: dict[str, str] = field(default_factory=dict)  # image path -> in-root real path
    why: dict[str, list[str]] = field(default_factory=dict)  # image path -> reasons
    sonames: dict[str, str] = field(default_factory=dict)  # soname -> image path

    def add(self, image_path: str, real: str, reason: str) -> bool:
        """Record *reason*; True when *image_path* is new."""
        self.why.setdefault(image_path, [])
        if reason not in self.why[image_path]:
            self.why[image_path].append(reason)
        if image_path in self.objects:
            return False
        self.objects[image_path] = real
        return True


def elf_closure(
    root: Path, start: Iterable[str], arch: str, override: dict[str, Path] | None = None
) -> ElfClosure:
    """The PT_INTERP and DT_NEEDED closure of the in-root objects *start*, checked for *arch*.

    Libraries are placed at the path where the loader finds them (symlinks resolved into a
    real file at that path). The interpreter is placed at its PT_INTERP path as a real file.
    *override* maps image paths to host files that replace the root's (a custom build); their
    entry in `objects` is then the absolute host path.
    """
    closure = ElfClosure()
    todo = [(path, "requested") for path in start]
    while todo:
        image_path, reason = todo.pop(0)
        replaced = (override or {}).get(image_path)
        real = str(replaced) if replaced is not None else resolve_in_root(root, image_path)
        if real is None:
            raise SourceError(f"{image_path} is not in the staged root ({reason})")
        if not closure.add(image_path, real, reason):
            continue
        info = read_elf(root / real)
        check_arch(info, arch, f"/{image_path} (in-root file /{real})")
        if info.soname:
            closure.sonames.setdefault(info.soname, image_path)
        todo += _interp_step(closure, root, image_path, info)
        todo += _needed_steps(closure, root, image_path, info, arch)
    return closure


def _interp_step(closure: ElfClosure, root: Path, image_path: str, info: ElfInfo) -> list[tuple[str, str]]:
    if not info.interp:
        return []
    interp = info.interp.lstrip("/")
    if closure.interp is None:
        closure.interp = interp
        closure.interp_real = resolve_in_root(root, interp)
        if closure.interp_real is None:
            raise SourceError(
                f"the program interpreter {info.interp} of /{image_path} is missing "
                "from the packages (libc6 provides it)"
            )
    return [(interp, f"PT_INTERP of /{image_path}")]


def _needed_steps(
    closure: ElfClosure, root: Path, image_path: str, info: ElfInfo, arch: str
) -> list[tuple[str, str]]:
    steps = []
    for soname in info.needed:
        reason = f"DT_NEEDED {soname} of /{image_path}"
        provider = closure.sonames.get(soname)
        if provider is None and closure.interp and os.path.basename(closure.interp) == soname:
            provider = closure.interp  # ld.so satisfies its own soname
        if provider is not None:
            closure.add(provider, closure.objects.get(provider, ""), reason)
            continue
        found = find_library(root, soname, _search_dirs(image_path, info, arch))
        if found is None:
            raise SourceError(
                f"/{image_path} needs {soname} (DT_NEEDED), which is in none of "
                f"{', '.join('/' + d for d in _search_dirs(image_path, info, arch))}",
                hint="add the package that ships it to the runtime packages",
            )
        steps.append((found, reason))
    return steps


def _search_dirs(image_path: str, info: ElfInfo, arch: str) -> list[str]:
    origin = os.path.dirname(image_path)
    dirs = [
        p.replace("$ORIGIN", "/" + origin).replace("${ORIGIN}", "/" + origin).lstrip("/")
        for p in info.runpath
    ]
    return [os.path.normpath(d) for d in dirs] + list(default_libdirs(arch))


def find_library(root: Path, soname: str, dirs: Iterable[str]) -> str | None:
    for directory in dirs:
        candidate = f"{directory}/{soname}"
        if resolve_in_root(root, candidate) is not None:
            return candidate
    return None
