"""What the target's zipl reads: its layouts, their detection from a binary, and `zipl -d`.

zipl finds the zfcpdump kernel and ramdisk at paths compiled into its binary (facts, section 2):

    s390-tools < 2.0   <distro dir>/zfcpdump.image       zfcpdump.rd
    s390-tools 2.0-2.6 /lib/s390-tools/zfcpdump/zfcpdump_part.image  zfcpdump_part.rd
    s390-tools >= 2.7  /lib/s390-tools/zfcpdump/zfcpdump-image       zfcpdump-initrd

`detect(binary)` reads those strings from the binary (the ELF's read-only data sections via
pyelftools, or a plain `strings` scan of any other file) and never runs it, so a target's s390x
zipl can be inspected on any build host. A missing image is a zipl error, but a missing ramdisk
is silently dropped, so preflight checks insist on both.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section

from ..core.errors import InstallError

BASE_IMAGE = "zfcpdump.image"
BASE_RD = "zfcpdump.rd"
DEFAULT_DIR = "/lib/s390-tools/zfcpdump"
HOST_SEARCH_DIRS = ("/sbin", "/usr/sbin")
ROOT_SEARCH_DIRS = ("sbin", "usr/sbin", "bin", "usr/bin")
VERSION_RE = re.compile(r"^[12]\.\d{1,2}\.\d{1,2}(?:-build-\d{8})?$")
MAX_SCAN = 64 << 20
LAYOUT_HINT = (
    "choose the layout of the TARGET's s390-tools: --layout 2.7+ (s390-tools 2.7 and later, "
    "e.g. Debian 12 ships 2.16), --layout 2.0-2.6, or --layout pre-2.0; or set "
    "install.zipl_layout in the recipe; or pass --zipl PATH to the target's zipl binary "
    "(it is read, never run)"
)


@dataclass(frozen=True)
class ZiplLayout:
    """The file names one generation of zipl reads in the zfcpdump directory."""

    name: str
    image: str
    rd: str
    versions: str


LAYOUTS: dict[str, ZiplLayout] = {  # newest first: detection prefers the most specific names
    "2.7+": ZiplLayout("2.7+", "zfcpdump-image", "zfcpdump-initrd", "s390-tools 2.7 and later"),
    "2.0-2.6": ZiplLayout("2.0-2.6", "zfcpdump_part.image", "zfcpdump_part.rd", "s390-tools 2.0 to 2.6"),
    "pre-2.0": ZiplLayout("pre-2.0", BASE_IMAGE, BASE_RD, "s390-tools before 2.0"),
}
LAYOUT_CHOICES = ("auto", *LAYOUTS)
KNOWN_NAMES = tuple(dict.fromkeys(n for lay in LAYOUTS.values() for n in (lay.image, lay.rd)))


@dataclass(frozen=True)
class Detected:
    """What one zipl binary says about itself."""

    binary: Path
    layout: ZiplLayout
    image_path: str
    rd_path: str | None
    directory: str | None
    version: str | None

    def rows(self) -> list[list[str]]:
        return [
            ["zipl binary", str(self.binary)],
            ["layout", f"{self.layout.name} ({self.layout.versions})"],
            ["image path", self.image_path],
            ["ramdisk path", self.rd_path or "(not found)"],
            ["zfcpdump dir", self.directory or "(not compiled in)"],
            ["version string", self.version or "(not found)"],
        ]


# --- reading a binary ------------------------------------------------------------------


def _is_data_section(section: Section) -> bool:
    flags = section["sh_flags"]
    return (
        section["sh_type"] == "SHT_PROGBITS"
        and bool(flags & SH_FLAGS.SHF_ALLOC)
        and not flags & SH_FLAGS.SHF_EXECINSTR
    )


def _elf_data(handle: BinaryIO) -> bytes | None:
    try:
        elf = ELFFile(handle)
        chunks = [s.data() for s in elf.iter_sections() if _is_data_section(s)]
    except (ELFError, ValueError):
        return None
    return b"\0".join(chunks) if chunks else None


def binary_data(path: Path) -> bytes:
    """The bytes to scan: the ELF's allocated non-code sections (.rodata, .data …), else the file."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) == b"\x7fELF":
                handle.seek(0)
                data = _elf_data(handle)
                if data is not None:
                    return data
            handle.seek(0)
            return handle.read(MAX_SCAN)
    except OSError as exc:
        raise InstallError(f"cannot read zipl binary {path}: {exc.strerror}") from None


def read_strings(path: Path, min_len: int = 4) -> list[str]:
    """Printable NUL- or control-delimited strings of *path*, like `strings -a`."""
    pattern = re.compile(rb"[\x20-\x7e]{%d,}" % min_len)
    return [m.group().decode("ascii") for m in pattern.finditer(binary_data(path))]


def _tokens(strings: Sequence[str]) -> list[str]:
    """The strings, then the words of those with spaces (a path inside a message or a script)."""
    words = [w.strip("'\"") for s in strings if " " in s for w in s.split()]
    return [*strings, *words]


def _find_name(strings: Sequence[str], name: str) -> str | None:
    """The compiled-in path ending in /NAME (preferred), or the bare NAME."""
    strings = _tokens(strings)
    full = [s for s in strings if s.startswith("/") and s.endswith("/" + name) and "%" not in s]
    if full:
        return full[0]
    return name if name in strings else None


def _find_dir(strings: Sequence[str]) -> str | None:
    dirs = [s for s in strings if re.fullmatch(r"/[\w./+-]*/zfcpdump", s)]
    return dirs[0] if dirs else None


def detect_strings(strings: Sequence[str], binary: Path) -> Detected:
    """Pick the newest layout whose image name appears among *strings*."""
    for layout in LAYOUTS.values():
        image = _find_name(strings, layout.image)
        if image is None:
            continue
        rd = _find_name(strings, layout.rd)
        directory = os.path.dirname(image) if "/" in image else _find_dir(strings)
        version = next((s for s in strings if VERSION_RE.match(s)), None)
        return Detected(binary, layout, image, rd, directory, version)
    raise InstallError(
        f"{binary} names no zfcpdump image (none of "
        f"{', '.join(lay.image for lay in LAYOUTS.values())}): is it zipl?",
        hint=LAYOUT_HINT,
    )


def detect(binary: Path) -> Detected:
    """Detect the layout and the zfcpdump directory compiled into the zipl at *binary*."""
    if not binary.is_file():
        raise InstallError(f"zipl binary {binary} does not exist", hint=LAYOUT_HINT)
    return detect_strings(read_strings(binary), binary)


def inside(path: Path, root: Path) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    return real == top or real.startswith(top.rstrip("/") + "/")


def find_zipl(root: Path | None = None) -> Path | None:
    """The zipl of this host (PATH, /sbin, /usr/sbin), or the one inside the target tree *root*."""
    if root is not None:
        for rel in ROOT_SEARCH_DIRS:
            candidate = root / rel / "zipl"
            if candidate.is_file() and inside(candidate, root):
                return candidate
        return None
    found = shutil.which("zipl")
    if found:
        return Path(found)
    for folder in HOST_SEARCH_DIRS:
        candidate = Path(folder) / "zipl"
        if candidate.is_file():
            return candidate
    return None


# --- which layout and directory --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where to install and which names the target's zipl reads, and why we think so."""

    layout: ZiplLayout
    directory: str
    reason: str
    detected: Detected | None = None
    notes: tuple[str, ...] = ()

    def image_path(self) -> str:
        return f"{self.directory.rstrip('/')}/{self.layout.image}"

    def rd_path(self) -> str:
        return f"{self.directory.rstrip('/')}/{self.layout.rd}"


@dataclass(frozen=True)
class Choice:
    """The user's inputs to `resolve`."""

    layout: str | None = None  # --layout
    directory: str | None = None  # --dir
    zipl: Path | None = None  # --zipl
    recipe_layout: str = "auto"
    recipe_dir: str = DEFAULT_DIR
    destdir: Path | None = None
    host_detection: bool = True  # False on a cross build
    why_no_host: str = ""


def _explicit_layout(choice: Choice) -> tuple[ZiplLayout, str] | None:
    if choice.layout and choice.layout != "auto":
        return LAYOUTS[choice.layout], f"--layout {choice.layout}"
    if choice.recipe_layout != "auto":
        return LAYOUTS[choice.recipe_layout], f"recipe install.zipl_layout: {choice.recipe_layout}"
    return None


def _zipl_to_read(choice: Choice) -> Path:
    if choice.zipl is not None:
        return choice.zipl
    if choice.destdir is not None:
        found = find_zipl(choice.destdir)
        if found is None:
            raise InstallError(
                f"install.zipl_layout is auto, and DESTDIR {choice.destdir} holds no zipl "
                "(looked in sbin, usr/sbin, bin, usr/bin); with --destdir the build "
                "host's zipl is never consulted",
                hint=LAYOUT_HINT,
            )
        return found
    if not choice.host_detection:
        raise InstallError(
            f"install.zipl_layout is auto, but {choice.why_no_host}: the build host's "
            "zipl says nothing about the target's",
            hint=LAYOUT_HINT,
        )
    found = find_zipl()
    if found is None:
        raise InstallError(
            "install.zipl_layout is auto, but no zipl was found (PATH, /sbin, /usr/sbin)", hint=LAYOUT_HINT
        )
    return found


def _directory(choice: Choice, detected: Detected | None) -> tuple[str, tuple[str, ...]]:
    compiled = detected.directory if detected else None
    if choice.directory:
        if compiled and norm_path(compiled) != norm_path(choice.directory):
            return choice.directory, (
                f"--dir {choice.directory} differs from the directory compiled "
                f"into {detected.binary}: {compiled}; that zipl will not find "  # type: ignore[union-attr]
                "these files unless both paths are the same directory",
            )
        return choice.directory, ()
    if compiled and norm_path(compiled) != norm_path(choice.recipe_dir):
        return compiled, (
            f"zipl reads {compiled}, not the recipe's install.dir {choice.recipe_dir}: "
            f"installing into {compiled}",
        )
    return compiled or choice.recipe_dir, ()


def norm_path(path: str) -> str:
    """*path* normalised, for comparing directory names."""
    return os.path.normpath(path)


def _disagreement(choice: Choice, layout: ZiplLayout) -> tuple[str, ...]:
    """A note when an explicitly chosen layout is not what the given zipl binary reads."""
    if choice.zipl is None:
        return ()
    try:
        detected = detect(choice.zipl)
    except InstallError:
        return ()
    if detected.layout == layout:
        return ()
    return (
        f"{detected.binary} reads {detected.image_path}, not {layout.image} ({layout.name}): "
        "that zipl will not find the image",
    )


def resolve(choice: Choice) -> Target:
    """Layout and directory: explicit choice > recipe > detection from a zipl binary."""
    explicit = _explicit_layout(choice)
    if explicit is not None:
        directory, notes = _directory(choice, None)
        return Target(explicit[0], directory, explicit[1], None, notes + _disagreement(choice, explicit[0]))
    detected = detect(_zipl_to_read(choice))
    directory, notes = _directory(choice, detected)
    if detected.rd_path is None:
        notes += (
            f"{detected.binary} names the image {detected.image_path} but no ramdisk "
            f"{detected.layout.rd}: check the layout",
        )
    return Target(detected.layout, directory, f"detected from {detected.binary}", detected, notes)


# --- the next step ---------------------------------------------------------------------


def dump_command(device: str, zipl: str = "zipl", yes: bool = False, secure: str | None = None) -> list[str]:
    """`zipl -d DEV` (= `--dumpto DEV`) installs the SCSI dump record on partition DEV.

    zipl takes no size for a SCSI partition dump; `-n` answers its y/n question with yes.
    """
    return [zipl, "-d", device, *(["-n"] if yes else []), *(["--secure", secure] if secure else [])]


def next_steps(target: Target, destdir: Path | None = None, with_rd: bool = True) -> list[str]:
    """What the admin does after `install`: put the dump record on a SCSI partition."""
    lines = []
    copies = (
        f"{target.image_path()} and {target.rd_path()}"
        if with_rd
        else f"{target.image_path()} (the initramfs is built in)"
    )
    if destdir is not None:
        lines.append(
            f"the files are staged under {destdir}; once they are on the target in {target.directory}:"
        )
    part = "/dev/mapper/<WWID>-part1"
    return lines + [
        f"next step: put the dump record on a SCSI dump partition with zipl. It copies "
        f"{copies} onto the partition, so rerun it after "
        "every install:",
        f"  {' '.join(dump_command(part))}    (= zipl --dumpto={part}; a plain /dev/sdX1 works too)",
        f"  ./build.py dumpdisk prepare {part} --dry-run    (the preflight checks, then the command)",
        "zipl -d erases that partition. Check the result on the whole disk: "
        "`zgetdump -d DISK` or `./build.py dumpdisk inspect DISK`.",
    ]
