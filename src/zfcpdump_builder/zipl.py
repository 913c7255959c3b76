"""What the target's zipl reads, and the `dumpdisk prepare` wrapper around `zipl -d`.

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

import argparse
import errno
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section

from .cache import file_sha256
from .errors import BudgetError, BuildError, InstallError
from .events import Reporter
from .recipe import Recipe, parse_size

BASE_IMAGE = "zfcpdump.image"
BASE_RD = "zfcpdump.rd"
DEFAULT_DIR = "/lib/s390-tools/zfcpdump"
HOST_SEARCH_DIRS = ("/sbin", "/usr/sbin")
ROOT_SEARCH_DIRS = ("sbin", "usr/sbin", "bin", "usr/bin")
VERSION_RE = re.compile(r"^[12]\.\d{1,2}\.\d{1,2}(?:-build-\d{8})?$")
MAX_SCAN = 64 << 20
LAYOUT_HINT = ("choose the layout of the TARGET's s390-tools: --layout 2.7+ (s390-tools 2.7 and later, "
               "e.g. Debian 12 ships 2.16), --layout 2.0-2.6, or --layout pre-2.0; or set "
               "install.zipl_layout in the recipe; or pass --zipl PATH to the target's zipl binary "
               "(it is read, never run)")


@dataclass(frozen=True)
class Layout:
    """The file names one generation of zipl reads in the zfcpdump directory."""

    name: str
    image: str
    rd: str
    versions: str


LAYOUTS: dict[str, Layout] = {  # newest first: detection prefers the most specific names
    "2.7+": Layout("2.7+", "zfcpdump-image", "zfcpdump-initrd", "s390-tools 2.7 and later"),
    "2.0-2.6": Layout("2.0-2.6", "zfcpdump_part.image", "zfcpdump_part.rd", "s390-tools 2.0 to 2.6"),
    "pre-2.0": Layout("pre-2.0", BASE_IMAGE, BASE_RD, "s390-tools before 2.0"),
}
LAYOUT_CHOICES = ("auto", *LAYOUTS)
KNOWN_NAMES = tuple(dict.fromkeys(n for lay in LAYOUTS.values() for n in (lay.image, lay.rd)))


@dataclass(frozen=True)
class Detected:
    """What one zipl binary says about itself."""

    binary: Path
    layout: Layout
    image_path: str
    rd_path: str | None
    directory: str | None
    version: str | None

    def rows(self) -> list[list[str]]:
        return [["zipl binary", str(self.binary)], ["layout", f"{self.layout.name} ({self.layout.versions})"],
                ["image path", self.image_path], ["ramdisk path", self.rd_path or "(not found)"],
                ["zfcpdump dir", self.directory or "(not compiled in)"],
                ["version string", self.version or "(not found)"]]


# --- reading a binary ------------------------------------------------------------------

def _is_data_section(section: Section) -> bool:
    flags = section["sh_flags"]
    return (section["sh_type"] == "SHT_PROGBITS"
            and bool(flags & SH_FLAGS.SHF_ALLOC) and not flags & SH_FLAGS.SHF_EXECINSTR)


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
    raise InstallError(f"{binary} names no zfcpdump image (none of "
                       f"{', '.join(lay.image for lay in LAYOUTS.values())}): is it zipl?",
                       hint=LAYOUT_HINT)


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

    layout: Layout
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

    layout: str | None = None      # --layout
    directory: str | None = None   # --dir
    zipl: Path | None = None       # --zipl
    recipe_layout: str = "auto"
    recipe_dir: str = DEFAULT_DIR
    destdir: Path | None = None
    host_detection: bool = True    # False on a cross build
    why_no_host: str = ""


def _explicit_layout(choice: Choice) -> tuple[Layout, str] | None:
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
            raise InstallError(f"install.zipl_layout is auto, and DESTDIR {choice.destdir} holds no zipl "
                               "(looked in sbin, usr/sbin, bin, usr/bin); with --destdir the build "
                               "host's zipl is never consulted", hint=LAYOUT_HINT)
        return found
    if not choice.host_detection:
        raise InstallError(f"install.zipl_layout is auto, but {choice.why_no_host}: the build host's "
                           "zipl says nothing about the target's", hint=LAYOUT_HINT)
    found = find_zipl()
    if found is None:
        raise InstallError("install.zipl_layout is auto, but no zipl was found (PATH, /sbin, /usr/sbin)",
                           hint=LAYOUT_HINT)
    return found


def _directory(choice: Choice, detected: Detected | None) -> tuple[str, tuple[str, ...]]:
    compiled = detected.directory if detected else None
    if choice.directory:
        if compiled and _norm(compiled) != _norm(choice.directory):
            return choice.directory, (f"--dir {choice.directory} differs from the directory compiled "
                                      f"into {detected.binary}: {compiled}; that zipl will not find "  # type: ignore[union-attr]
                                      "these files unless both paths are the same directory",)
        return choice.directory, ()
    if compiled and _norm(compiled) != _norm(choice.recipe_dir):
        return compiled, (f"zipl reads {compiled}, not the recipe's install.dir {choice.recipe_dir}: "
                          f"installing into {compiled}",)
    return compiled or choice.recipe_dir, ()


def _norm(path: str) -> str:
    return os.path.normpath(path)


def _disagreement(choice: Choice, layout: Layout) -> tuple[str, ...]:
    """A note when an explicitly chosen layout is not what the given zipl binary reads."""
    if choice.zipl is None:
        return ()
    try:
        detected = detect(choice.zipl)
    except InstallError:
        return ()
    if detected.layout == layout:
        return ()
    return (f"{detected.binary} reads {detected.image_path}, not {layout.image} ({layout.name}): "
            "that zipl will not find the image",)


def resolve(choice: Choice) -> Target:
    """Layout and directory: explicit choice > recipe > detection from a zipl binary."""
    explicit = _explicit_layout(choice)
    if explicit is not None:
        directory, notes = _directory(choice, None)
        return Target(explicit[0], directory, explicit[1], None, notes + _disagreement(choice, explicit[0]))
    detected = detect(_zipl_to_read(choice))
    directory, notes = _directory(choice, detected)
    if detected.rd_path is None:
        notes += (f"{detected.binary} names the image {detected.image_path} but no ramdisk "
                  f"{detected.layout.rd}: check the layout",)
    return Target(detected.layout, directory, f"detected from {detected.binary}", detected, notes)


# --- the next step ---------------------------------------------------------------------

def dump_command(device: str, zipl: str = "zipl", yes: bool = False) -> list[str]:
    """`zipl -d DEV` (= `--dumpto DEV`) installs the SCSI dump record on partition DEV.

    zipl takes no size for a SCSI partition dump; `-n` answers its y/n question with yes.
    """
    return [zipl, "-d", device, *(["-n"] if yes else [])]


def next_steps(target: Target, destdir: Path | None = None) -> list[str]:
    """What the admin does after `install`: put the dump record on a SCSI partition."""
    lines = []
    if destdir is not None:
        lines.append(f"the files are staged under {destdir}; once they are on the target in "
                     f"{target.directory}:")
    part = "/dev/mapper/<WWID>-part1"
    return lines + [
        f"next step: put the dump record on a SCSI dump partition with zipl. It copies "
        f"{target.image_path()} and {target.rd_path()} onto the partition, so rerun it after "
        "every install:",
        f"  {' '.join(dump_command(part))}    (= zipl --dumpto={part}; a plain /dev/sdX1 works too)",
        f"  ./build.py dumpdisk prepare {part} --dry-run    (the preflight checks, then the command)",
        "zipl -d erases that partition. Check the result on the whole disk: "
        "`zgetdump -d DISK` or `./build.py dumpdisk inspect DISK`.",
    ]


# --- the dump device -------------------------------------------------------------------

@dataclass
class Check:
    """One preflight check: status is ok, warn or FAIL."""

    name: str
    status: str
    detail: str
    error: type[BuildError] = InstallError
    hint: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def fail(name: str, detail: str, hint: str | None = None,
         error: type[BuildError] = InstallError) -> Check:
    return Check(name, "FAIL", detail, error, hint)


@dataclass
class Device:
    """A block device and its sysfs directory."""

    path: Path
    rdev: int
    sysdir: Path

    @property
    def majmin(self) -> str:
        return f"{os.major(self.rdev)}:{os.minor(self.rdev)}"


@dataclass
class Sys:
    """Where the kernel's views live (overridable for tests)."""

    sysfs: Path = Path("/sys")
    mountinfo: Path = Path("/proc/self/mountinfo")
    swaps: Path = Path("/proc/swaps")


def open_device(name: str, sys_: Sys) -> Device | Check:
    path = Path(os.path.realpath(name))
    try:
        st = os.stat(path)
    except OSError as exc:
        return fail("block device", f"{name}: {exc.strerror}")
    if not stat.S_ISBLK(st.st_mode):
        return fail("block device", f"{name} is not a block device")
    sysdir = sys_.sysfs / "dev" / "block" / f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return Device(path, st.st_rdev, Path(os.path.realpath(sysdir)))


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def whole_disk(dev: Device) -> str:
    """The /dev name of the disk holding partition *dev* (its sysfs parent)."""
    return f"/dev/{dev.sysdir.parent.name}"


def partition_check(dev: Device) -> Check:
    """A plain partition has sysfs `partition`; a multipath partition a dm uuid `partN-…`."""
    number = _read(dev.sysdir / "partition")
    if number:
        return ok("partition", f"{dev.path} is partition {number} of {whole_disk(dev)}")
    uuid = _read(dev.sysdir / "dm" / "uuid")
    if re.match(r"part\d+-", uuid):
        return ok("partition", f"{dev.path} is device-mapper partition {uuid.split('-', 1)[0]}")
    return fail("partition", f"{dev.path} is a whole disk, not a partition",
                hint="zipl -d needs the dump PARTITION (e.g. /dev/sda1 or /dev/mapper/<WWID>-part1); "
                     "create one with fdisk/sfdisk first")


def mount_points(dev: Device, mountinfo: Path) -> list[str]:
    """Mount points of *dev* in mountinfo (by major:minor, and by source path)."""
    found = []
    for line in _read(mountinfo).splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        source = fields[fields.index("-") + 2] if "-" in fields else ""
        if fields[2] == dev.majmin or _same_device(source, dev.rdev):
            found.append(fields[4])
    return found


def _same_device(source: str, rdev: int) -> bool:
    if not source.startswith("/"):
        return False
    try:
        st = os.stat(source)
    except OSError:
        return False
    return stat.S_ISBLK(st.st_mode) and st.st_rdev == rdev


def swap_check(dev: Device, swaps: Path) -> Check | None:
    for line in _read(swaps).splitlines()[1:]:
        name = line.split()[0] if line.split() else ""
        if _same_device(name, dev.rdev):
            return fail("not swap", f"{dev.path} is an active swap area ({name})",
                        hint=f"swapoff {name}, and remove it from /etc/fstab")
    return None


def use_checks(dev: Device, sys_: Sys) -> list[Check]:
    """Not mounted, not swap, not held by device-mapper/md/LVM, and openable exclusively."""
    points = mount_points(dev, sys_.mountinfo)
    if points:
        return [fail("not mounted", f"{dev.path} is mounted on {', '.join(points)}",
                     hint=f"unmount it first (umount {points[0]}); zipl -d erases the partition")]
    swap = swap_check(dev, sys_.swaps)
    if swap is not None:
        return [swap]
    holders = sorted(p.name for p in (dev.sysdir / "holders").glob("*"))
    if holders:
        return [fail("not in use", f"{dev.path} is held by {', '.join(holders)}",
                     hint="use the device-mapper (multipath) partition instead, or release it")]
    return [ok("not mounted", "not in /proc/self/mountinfo or /proc/swaps, no holders"), _exclusive(dev)]


def _exclusive(dev: Device) -> Check:
    try:
        fd = os.open(dev.path, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return fail("not in use", f"{dev.path} is busy (an exclusive open failed): in use by the kernel")
        return Check("not in use", "warn", f"cannot open {dev.path} exclusively: {exc.strerror}")
    os.close(fd)
    return ok("not in use", "exclusive open succeeded")


def device_checks(name: str, sys_: Sys | None = None) -> list[Check]:
    """Every check on the dump device, stopping at the first that fails."""
    sys_ = sys_ or Sys()
    dev = open_device(name, sys_)
    if isinstance(dev, Check):
        return [dev]
    checks = [ok("block device", f"{dev.path} ({dev.majmin})"), partition_check(dev)]
    if checks[-1].failed:
        return checks
    return checks + use_checks(dev, sys_)


# --- the artifacts ---------------------------------------------------------------------

sha256 = file_sha256


def _file_check(label: str, path: Path, missing: str) -> Check:
    if not path.is_file():
        what = "a dangling symlink" if path.is_symlink() else "missing"
        return fail(label, f"{path} is {what}: {missing}",
                    hint="install the pair first: ./build.py install [RECIPE]")
    mode = path.stat().st_mode & 0o777
    return ok(label, f"{path} ({path.stat().st_size} bytes, mode {mode:o})")


def artifact_checks(folder: Path, target: Target) -> list[Check]:
    """The names zipl reads exist, and match zfcpdump.image/.rd when those are installed too."""
    image, rd = folder / target.layout.image, folder / target.layout.rd
    checks = [_file_check("image", image, "zipl refuses to prepare a dump disk without it"),
              _file_check("ramdisk", rd, "zipl would SILENTLY drop it, leaving a dump disk "
                                         "without user space")]
    if any(c.failed for c in checks) or target.layout.name == "pre-2.0":
        return checks
    for alias, base in ((image, folder / BASE_IMAGE), (rd, folder / BASE_RD)):
        if base.is_file() and sha256(alias) != sha256(base):
            checks.append(fail("pair", f"{alias.name} differs from {base.name}: a half-updated install",
                               hint="reinstall: ./build.py install [RECIPE]"))
    return checks


def out_checks(folder: Path, target: Target, out: Path) -> list[Check]:
    """With --from OUT: the installed files are OUT's build."""
    checks = []
    for name, built in ((target.layout.image, out / BASE_IMAGE), (target.layout.rd, out / BASE_RD)):
        if not built.is_file():
            checks.append(fail("build output", f"{built} is missing"))
        elif sha256(folder / name) != sha256(built):
            checks.append(fail("installed = OUT", f"{folder / name} is not {built}",
                               hint=f"install that build first: ./build.py install --from {out}"))
    return checks or [ok("installed = OUT", f"the installed pair is the build in {out}")]


def budget_check(image: Path, rd: Path, memory: int) -> Check:
    """The kernel image and the compressed ramdisk alone must fit the dump memory (HSA)."""
    total = image.stat().st_size + rd.stat().st_size
    detail = f"image + rd = {total / (1 << 20):.1f} MiB of budget.memory {memory / (1 << 20):.0f} MiB"
    if total > memory:
        return fail("budget", detail + ": they cannot even be loaded", error=BudgetError,
                    hint="shrink the initramfs or raise budget.memory if the machine's HSA is larger")
    return ok("budget", detail)


# --- running zipl ----------------------------------------------------------------------

def run_zipl(command: list[str], reporter: Reporter) -> None:
    """Run zipl interactively (it asks before erasing the partition, unless -n)."""
    reporter.info(f"running: {shlex.join(command)}")
    try:
        result = subprocess.run(command, check=False)
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc.strerror}") from None
    if result.returncode != 0:
        raise InstallError(f"zipl failed with exit code {result.returncode}; see its messages above",
                           hint="nothing else was changed; check the device and rerun")


def report_checks(checks: list[Check], reporter: Reporter) -> None:
    reporter.table("preflight", ["check", "status", "detail"],
                   [[c.name, c.status, c.detail] for c in checks])
    for check in checks:
        if check.status == "warn":
            reporter.warning(f"{check.name}: {check.detail}")


def raise_first_failure(checks: list[Check]) -> None:
    for check in checks:
        if check.failed:
            raise check.error(f"{check.name}: {check.detail}", hint=check.hint)


def layout_arguments(parser: argparse.ArgumentParser) -> None:
    """--dir, --layout and --zipl, shared by `install` and `dumpdisk prepare`."""
    parser.add_argument("--dir", dest="install_dir", metavar="DIR",
                        help="the zfcpdump directory on the target (default: the one compiled into "
                             "zipl, else the recipe's install.dir)")
    parser.add_argument("--layout", choices=LAYOUT_CHOICES, default=None,
                        help="names the target's zipl reads (default: the recipe's install.zipl_layout)")
    parser.add_argument("--zipl", type=Path, default=None, metavar="PATH",
                        help="detect the layout from this zipl binary (read, never run by install)")


# --- `dumpdisk prepare` ----------------------------------------------------------------

def _manifest_pair(manifest: Any) -> tuple[Any, Any]:
    outputs = manifest.get("outputs", {}) if isinstance(manifest, dict) else {}
    return tuple(outputs.get(name, {}).get("sha256") for name in (BASE_IMAGE, BASE_RD))  # type: ignore[return-value]


def find_manifest(image: Path, rd: Path, candidates: list[Path]) -> tuple[Path, dict[str, Any]] | None:
    """The first build manifest whose zfcpdump.image/.rd are exactly *image* and *rd*."""
    wanted = (sha256(image), sha256(rd))
    for path in candidates:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _manifest_pair(manifest) == wanted:
            return path, manifest
    return None


def memory_budget_check(image: Path, rd: Path, loaded: Recipe, out: Path | None,
                        reporter: Reporter) -> Check:
    """The build's full memory budget (budget.check) for the installed pair, from its manifest."""
    from . import budget

    candidates = [out / "manifest.json"] if out else [Path("out") / loaded.name / "manifest.json"]
    found = find_manifest(image, rd, candidates)
    if found is None or not found[1].get("memory_budget"):
        return Check("memory budget", "warn", f"no build manifest ({', '.join(map(str, candidates))}) "
                     "matches the installed pair: only image + rd were checked (pass --from OUT)")
    path, manifest = found
    memory = parse_size(loaded.get("budget.memory"))
    figures = manifest["memory_budget"]
    entries = [budget.BudgetItem(name, int(size), "from the build") for name, size in figures.items()
               if name not in ("total", "memory")]
    try:
        totals = budget.check(entries, memory, reporter)
    except BudgetError as exc:
        return fail("memory budget", exc.message, exc.hint, BudgetError)
    built_for = f"; the build assumed {figures['memory'] >> 20} MiB" if figures.get("memory") != memory else ""
    return ok("memory budget", f"{totals['total'] / (1 << 20):.1f} MiB of {memory >> 20} MiB "
                               f"(figures from {path}{built_for})")


def _zipl_check(binary: Path | None, dry_run: bool) -> Check:
    if binary is not None:
        return ok("zipl", str(binary))
    if dry_run:
        return Check("zipl", "warn", "no zipl on this host (PATH, /sbin, /usr/sbin): the real run needs it")
    return fail("zipl", "no zipl found (PATH, /sbin, /usr/sbin)",
                hint="install s390-tools, or name the binary with --zipl PATH")


def _artifact_stage(folder: Path, target: Target, loaded: Recipe, out: Path | None,
                    reporter: Reporter) -> list[Check]:
    from .install import JOURNAL, pending

    if pending(folder):
        return [fail("install state", f"an interrupted install left {folder / JOURNAL}",
                     hint="rerun ./build.py install: it rolls back to the previous pair first")]
    checks = artifact_checks(folder, target)
    if any(c.failed for c in checks):
        return checks
    image, rd = folder / target.layout.image, folder / target.layout.rd
    checks.append(budget_check(image, rd, parse_size(loaded.get("budget.memory"))))
    if not checks[-1].failed:
        checks.append(memory_budget_check(image, rd, loaded, out, reporter))
    return checks + (out_checks(folder, target, out) if out is not None else [])


def directory_check(binary: Path | None, target: Target, force: bool) -> Check | None:
    """zipl reads its compiled-in directory, whatever --dir says: a mismatch is refused."""
    if binary is None:
        return None
    try:
        compiled = detect(binary).directory
    except InstallError:
        return None
    if compiled is None or _norm(compiled) == _norm(target.directory):
        return None
    detail = (f"{binary} reads the pair from its compiled-in {compiled}, not from {target.directory}: "
              "the dump disk would get whatever is in the other directory")
    if force:
        return Check("zipl directory", "warn", detail + " (--force: going ahead, as asked; make sure "
                     f"{compiled} holds the pair you mean)")
    return fail("zipl directory", detail,
                hint=f"drop --dir (zipl reads {compiled}), install there first, or pass --force "
                     "if that directory is the same one by another path (a bind mount, say)")


def preflight(args: argparse.Namespace, loaded: Recipe,
              reporter: Reporter) -> tuple[Target, list[Check], Path | None]:
    """Every check `dumpdisk prepare` makes before it runs zipl."""
    binary = args.zipl or find_zipl()
    target = resolve(Choice(layout=args.layout, directory=args.install_dir, zipl=binary,
                            recipe_layout=loaded.get("install.zipl_layout"),
                            recipe_dir=loaded.get("install.dir")))
    checks = [_zipl_check(binary, args.dry_run),
              ok("layout", f"{target.layout.name} in {target.directory} ({target.reason})")]
    checks += [Check("layout", "warn", note) for note in target.notes
               if not note.startswith("--dir ")]  # the directory check below says it better
    mismatch = directory_check(binary, target, args.force)
    if mismatch is not None:
        checks.append(mismatch)
        if mismatch.failed:
            return target, checks, binary
    out = args.from_dir.resolve() if args.from_dir else None
    checks += _artifact_stage(Path(target.directory), target, loaded, out, reporter)
    checks += device_checks(args.device)
    return target, checks, binary


def prepare_cmd(args: argparse.Namespace, reporter: Reporter) -> int:
    """Preflight, then `zipl -d DEV` (only printed with --dry-run)."""
    from . import recipe
    from .cli import recipe_name

    loaded = recipe.load(recipe_name(args))
    _, checks, binary = preflight(args, loaded, reporter)
    report_checks(checks, reporter)
    raise_first_failure(checks)
    command = dump_command(args.device, str(binary or "zipl"), args.yes)
    reporter.info(f"zipl command: {shlex.join(command)}")
    if args.dry_run:
        reporter.info("dry run: zipl was not run, nothing was changed")
        return 0
    run_zipl(command, reporter)
    disk = _disk_of(args.device)
    reporter.info(f"dump record installed on {args.device}; check the disk with "
                  f"`./build.py dumpdisk inspect {disk}` or `zgetdump -d {disk}`")
    return 0


def _disk_of(device: str) -> str:
    dev = open_device(device, Sys())
    return whole_disk(dev) if isinstance(dev, Device) and _read(dev.sysdir / "partition") else "DISK"


def add_prepare_arguments(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    """Register `dumpdisk prepare DEV` under the `dumpdisk` sub-parsers *sub*."""
    from .cli import _common, _recipe_arg

    parser = sub.add_parser(
        "prepare", help="preflight checks, then zipl -d DEV (install the SCSI dump record)",
        description="Check that the installed zfcpdump pair is complete and within budget.memory and "
                    "that DEV is an unused partition, then run `zipl -d DEV`, which erases DEV and "
                    "copies the image and ramdisk zipl reads onto it.")
    parser.add_argument("device", metavar="DEV", help="the dump partition (not a whole disk)")
    _recipe_arg(parser)
    _common(parser)
    parser.add_argument("--from", dest="from_dir", type=Path, metavar="OUT",
                        help="also require the installed pair to be the build in OUT")
    layout_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the checks and the zipl command only")
    parser.add_argument("--force", action="store_true",
                        help="go ahead although --dir differs from the directory compiled into zipl")
    parser.add_argument("--yes", "-y", action="store_true",
                        help="pass -n to zipl (answer its 'all data will be lost' question with yes)")
    parser.set_defaults(handler=prepare_cmd)
    return parser
