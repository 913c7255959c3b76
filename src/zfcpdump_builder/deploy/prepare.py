"""`dumpdisk prepare`'s preflight: every check made before `zipl -d DEV` runs.

The checks cover zipl itself (found, and reading the directory that is checked), the
installed pair (both names, equal to the base pair, within budget, not half-installed),
and the device (a partition, not mounted, not swap, not held, exclusively openable).
Any failed check stops prepare; warnings are shown and let it go on.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import modsig
from ..core.errors import BudgetError, InstallError
from ..core.events import Reporter
from ..core.ownership import read_manifest
from ..core.store import file_sha256
from ..recipe.loader import Recipe
from ..stages import budget, placement
from .device import Check, device_checks, fail, ok
from .transaction import JOURNAL, pending
from .zipl import BASE_IMAGE, BASE_RD, Choice, Target, detect, find_zipl, norm_path, resolve


def _file_check(label: str, path: Path, missing: str) -> Check:
    if not path.is_file():
        what = "a dangling symlink" if path.is_symlink() else "missing"
        return fail(
            label, f"{path} is {what}: {missing}", hint="install the pair first: ./build.py install [RECIPE]"
        )
    mode = path.stat().st_mode & 0o777
    return ok(label, f"{path} ({path.stat().st_size} bytes, mode {mode:o})")


def artifact_checks(folder: Path, target: Target, with_rd: bool = True) -> list[Check]:
    """The names zipl reads exist, and match zfcpdump.image/.rd when those are installed too.
    Without an rd (a built-in initramfs) no ramdisk may be there at all: zipl would load it."""
    image, rd = folder / target.layout.image, folder / target.layout.rd
    checks = [_file_check("image", image, "zipl refuses to prepare a dump disk without it")]
    if with_rd:
        checks.append(
            _file_check("ramdisk", rd, "zipl would SILENTLY drop it, leaving a dump disk without user space")
        )
    elif os.path.lexists(rd):
        checks.append(
            fail(
                "ramdisk",
                f"{rd} exists, but the recipe's initramfs is built into the image: zipl would load "
                "it and the kernel would unpack it over the built-in one (an old writer would run)",
                hint="reinstall: ./build.py install [RECIPE] removes it",
            )
        )
    else:
        checks.append(ok("ramdisk", f"none (built into the image; {rd.name} is absent)"))
    if any(c.failed for c in checks) or target.layout.name == "pre-2.0":
        return checks
    pairs = (
        ((image, folder / BASE_IMAGE), (rd, folder / BASE_RD)) if with_rd else ((image, folder / BASE_IMAGE),)
    )
    for alias, base in pairs:
        if base.is_file() and file_sha256(alias) != file_sha256(base):
            checks.append(
                fail(
                    "pair",
                    f"{alias.name} differs from {base.name}: a half-updated install",
                    hint="reinstall: ./build.py install [RECIPE]",
                )
            )
    return checks


def out_checks(folder: Path, target: Target, out: Path, with_rd: bool = True) -> list[Check]:
    """With --from OUT: the installed files are OUT's build."""
    checks = []
    pairs = ((target.layout.image, out / BASE_IMAGE), (target.layout.rd, out / BASE_RD))
    for name, built in pairs if with_rd else pairs[:1]:
        if not built.is_file():
            checks.append(fail("build output", f"{built} is missing"))
        elif file_sha256(folder / name) != file_sha256(built):
            checks.append(
                fail(
                    "installed = OUT",
                    f"{folder / name} is not {built}",
                    hint=f"install that build first: ./build.py install --from {out}",
                )
            )
    return checks or [ok("installed = OUT", f"the installed pair is the build in {out}")]


def budget_check(image: Path, rd: Path | None, memory: int) -> Check:
    """The kernel image and the compressed ramdisk alone must fit the dump memory (HSA)."""
    total = image.stat().st_size + (rd.stat().st_size if rd is not None else 0)
    detail = f"image + rd = {total / (1 << 20):.1f} MiB of budget.memory {memory / (1 << 20):.0f} MiB"
    if total > memory:
        return fail(
            "budget",
            detail + ": they cannot even be loaded",
            error=BudgetError,
            hint="shrink the initramfs or raise budget.memory if the machine's HSA is larger",
        )
    return ok("budget", detail)


def run_zipl(command: list[str], reporter: Reporter) -> None:
    """Run zipl interactively (it asks before erasing the partition, unless -n)."""
    reporter.info(f"running: {shlex.join(command)}")
    try:
        result = subprocess.run(command, check=False)
    except OSError as exc:
        raise InstallError(f"cannot run {command[0]}: {exc.strerror}") from None
    if result.returncode != 0:
        raise InstallError(
            f"zipl failed with exit code {result.returncode}; see its messages above",
            hint="nothing else was changed; check the device and rerun",
        )


def _manifest_pair(manifest: Any) -> tuple[Any, Any]:
    outputs = manifest.get("outputs", {}) if isinstance(manifest, dict) else {}
    return outputs.get(BASE_IMAGE, {}).get("sha256"), outputs.get(BASE_RD, {}).get("sha256")


def find_manifest(image: Path, rd: Path | None, candidates: list[Path]) -> tuple[Path, dict[str, Any]] | None:
    """The first build manifest whose zfcpdump.image/.rd are exactly *image* and *rd*."""
    wanted = (file_sha256(image), file_sha256(rd) if rd is not None else None)
    for path in candidates:
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _manifest_pair(manifest) == wanted:
            return path, manifest
    return None


def memory_budget_check(
    image: Path, rd: Path | None, loaded: Recipe, out: Path | None, reporter: Reporter
) -> Check:
    """The build's full memory budget (budget.check) for the installed pair, from its manifest."""
    candidates = [out / "manifest.json"] if out else [Path("out") / loaded.name / "manifest.json"]
    found = find_manifest(image, rd, candidates)
    if found is None or not found[1].get("memory_budget"):
        return Check(
            "memory budget",
            "warn",
            f"no build manifest ({', '.join(map(str, candidates))}) "
            "matches the installed pair: only image + rd were checked (pass --from OUT)",
        )
    path, manifest = found
    memory = loaded.plan.budget.memory
    figures = manifest["memory_budget"]
    entries = [
        budget.BudgetItem(name, int(size), "from the build")
        for name, size in figures.items()
        if name not in ("total", "memory")
    ]
    try:
        totals = budget.check(entries, memory, reporter)
    except BudgetError as exc:
        return fail("memory budget", exc.message, exc.hint, BudgetError)
    built_for = (
        f"; the build assumed {figures['memory'] >> 20} MiB" if figures.get("memory") != memory else ""
    )
    return ok(
        "memory budget",
        f"{totals['total'] / (1 << 20):.1f} MiB of {memory >> 20} MiB (figures from {path}{built_for})",
    )


def _zipl_check(binary: Path | None, dry_run: bool) -> Check:
    if binary is not None:
        return ok("zipl", str(binary))
    if dry_run:
        return Check("zipl", "warn", "no zipl on this host (PATH, /sbin, /usr/sbin): the real run needs it")
    return fail(
        "zipl",
        "no zipl found (PATH, /sbin, /usr/sbin)",
        hint="install s390-tools, or name the binary with --zipl PATH",
    )


def _artifact_stage(
    folder: Path, target: Target, loaded: Recipe, out: Path | None, reporter: Reporter
) -> list[Check]:
    if pending(folder):
        return [
            fail(
                "install state",
                f"an interrupted install left {folder / JOURNAL}",
                hint="rerun ./build.py install: it rolls back to the previous pair first",
            )
        ]
    chosen = loaded.plan.initramfs.placement
    built = read_manifest(out) if out is not None else None
    if built is not None:  # --from OUT: what was installed is that build, whatever the recipe says
        chosen = placement.of_manifest(built)
    with_rd = placement.publishes_rd(chosen)
    checks = artifact_checks(folder, target, with_rd)
    if any(c.failed for c in checks):
        return checks
    image = folder / target.layout.image
    rd = folder / target.layout.rd if with_rd else None
    checks.append(budget_check(image, rd, loaded.plan.budget.memory))
    if not checks[-1].failed:
        checks.append(memory_budget_check(image, rd, loaded, out, reporter))
    return checks + (out_checks(folder, target, out, with_rd) if out is not None else [])


def directory_check(binary: Path | None, target: Target, force: bool) -> Check | None:
    """zipl reads its compiled-in directory, whatever --dir says: a mismatch is refused."""
    if binary is None:
        return None
    try:
        compiled = detect(binary).directory
    except InstallError:
        return None
    if compiled is None or norm_path(compiled) == norm_path(target.directory):
        return None
    detail = (
        f"{binary} reads the pair from its compiled-in {compiled}, not from {target.directory}: "
        "the dump disk would get whatever is in the other directory"
    )
    if force:
        return Check(
            "zipl directory",
            "warn",
            detail + f" (--force: going ahead, as asked; make sure {compiled} holds the pair you mean)",
        )
    return fail(
        "zipl directory",
        detail,
        hint=f"drop --dir (zipl reads {compiled}), install there first, or pass --force "
        "if that directory is the same one by another path (a bind mount, say)",
    )


@dataclass(frozen=True)
class Request:
    """What `dumpdisk prepare` was asked: the device, and the choices of its options."""

    device: str
    zipl: Path | None = None  # --zipl
    layout: str | None = None  # --layout
    install_dir: str | None = None  # --dir
    from_dir: Path | None = None  # --from
    dry_run: bool = False
    force: bool = False
    secure: str | None = None  # --secure: passed to zipl; "1" needs a signed image


def secure_check(folder: Path, target: Target, secure: str | None) -> list[Check]:
    """With --secure 1, zipl would refuse (or the machine would not IPL) an unsigned image."""
    if secure != "1":
        return []
    image = folder / target.layout.image
    if image.is_file() and modsig.split_signature(image) is not None:
        return [ok("secure IPL", f"{image.name} carries an appended signature")]
    return [
        fail(
            "secure IPL",
            f"{image} has no secure-IPL signature, and --secure 1 was asked for",
            hint="build with signing.key and signing.cert in the recipe, then install again",
        )
    ]


def preflight(args: Request, loaded: Recipe, reporter: Reporter) -> tuple[Target, list[Check], Path | None]:
    """Every check `dumpdisk prepare` makes before it runs zipl."""
    binary = args.zipl or find_zipl()
    target = resolve(
        Choice(
            layout=args.layout,
            directory=args.install_dir,
            zipl=binary,
            recipe_layout=loaded.plan.install.zipl_layout,
            recipe_dir=loaded.plan.install.directory,
        )
    )
    checks = [
        _zipl_check(binary, args.dry_run),
        ok("layout", f"{target.layout.name} in {target.directory} ({target.reason})"),
    ]
    checks += [
        Check("layout", "warn", note) for note in target.notes if not note.startswith("--dir ")
    ]  # the directory check below says it better
    mismatch = directory_check(binary, target, args.force)
    if mismatch is not None:
        checks.append(mismatch)
        if mismatch.failed:
            return target, checks, binary
    out = args.from_dir.resolve() if args.from_dir else None
    checks += _artifact_stage(Path(target.directory), target, loaded, out, reporter)
    checks += secure_check(Path(target.directory), target, args.secure)
    checks += device_checks(args.device)
    return target, checks, binary
