"""`install`: put a build's zfcpdump.image + zfcpdump.rd where the target's zipl reads them.

The pair is installed under the mission's names (`zfcpdump.image`, `zfcpdump.rd`) and, when
the target's zipl reads other names (see `zipl.LAYOUTS`), under those too, as relative
symlinks or as copies. Both files are first checked against the build's manifest.json. The
files land in one journaled transaction (transaction.py): both or neither.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import signing
from ..core.errors import InstallError, SignatureError
from ..core.events import Reporter
from ..core.ownership import read_manifest
from ..core.store import file_sha256
from ..recipe.loader import Recipe
from ..stages import placement
from . import zipl
from .transaction import Fault, InstallPlan, Transaction, env_fault, host_hint, locked, make_plan, recover
from .zipl import BASE_IMAGE, BASE_RD

# --- file system primitives ------------------------------------------------------------


# --- the transaction -------------------------------------------------------------------


# --- from artifacts to an installed pair -----------------------------------------------


@dataclass
class Options:
    """The command-line choices of `install` (None = the recipe's value)."""

    directory: str | None = None
    destdir: Path | None = None
    layout: str | None = None
    link: str | None = None
    zipl: Path | None = None
    dry_run: bool = False
    fault: Fault | None = None
    cert: Path | None = None  # the signer's certificate, to check SHA256SUMS.sig against
    require_signature: bool = False


def artifacts(out_dir: Path) -> tuple[Path, Path | None]:
    """OUT/zfcpdump.image and OUT/zfcpdump.rd, each exactly as OUT's manifest.json records it.

    Both or an error (zipl drops a lone image's rd), and never a file that differs from what
    the build published: an empty or truncated rd would make a dump disk without user space.
    A build whose initramfs is built into the image has no rd: then None."""
    image, rd = out_dir / BASE_IMAGE, out_dir / BASE_RD
    manifest = read_manifest(out_dir)
    builtin = manifest is not None and placement.of_manifest(manifest) == "builtin"
    wanted = (image,) if builtin else (image, rd)
    missing = [p.name for p in wanted if not p.is_file()]
    if missing:
        raise InstallError(
            f"{out_dir} lacks {' and '.join(missing)}: nothing was installed "
            "(the image and the ramdisk are installed together or not at all)",
            hint="build first: ./build.py build [RECIPE], or name the output with --from",
        )
    if manifest is None:
        raise InstallError(
            f"{out_dir} has no build manifest.json of ours: nothing was installed "
            "(install checks every file against the build's manifest)",
            hint="install the output of ./build.py build, which writes manifest.json",
        )
    for path in wanted:
        verify_artifact(path, manifest["outputs"].get(path.name))
    return image, None if builtin else rd


def verify_artifact(path: Path, record: Any) -> None:
    """*path* has the size and sha256 its manifest record names, or InstallError."""
    if not isinstance(record, dict):
        raise InstallError(
            f"{path.name} is not listed in {path.parent / 'manifest.json'}: nothing was installed",
            hint="rebuild: ./build.py build [RECIPE]",
        )
    size = path.stat().st_size
    if size != record.get("size"):
        raise InstallError(
            f"{path} is {size} bytes, but the build's manifest says {record.get('size')}: "
            "it changed after the build; nothing was installed",
            hint="rebuild: ./build.py build [RECIPE]",
        )
    if file_sha256(path) != record.get("sha256"):
        raise InstallError(
            f"{path} does not match the sha256 in the build's manifest: it changed "
            "after the build; nothing was installed",
            hint="rebuild: ./build.py build [RECIPE]",
        )


def choice(loaded: Recipe, opts: Options) -> zipl.Choice:
    machine = platform.machine()
    return zipl.Choice(
        layout=opts.layout,
        directory=opts.directory,
        zipl=opts.zipl,
        recipe_layout=loaded.plan.install.zipl_layout,
        recipe_dir=loaded.plan.install.directory,
        destdir=opts.destdir,
        host_detection=machine == "s390x",
        why_no_host=f"this is a cross build (the build host is {machine}, not s390x)",
    )


def host_folder(directory: str, destdir: Path | None) -> Path:
    return (destdir / directory.lstrip("/")) if destdir is not None else Path(directory)


def escapes(folder: Path, destdir: Path) -> bool:
    """True when the existing part of *folder* resolves outside *destdir* (an absolute symlink)."""
    path = folder
    while path not in (destdir, path.parent) and not os.path.lexists(path):
        path = path.parent
    return os.path.lexists(path) and not zipl.inside(path, destdir)


def prepare_folder(folder: Path, destdir: Path | None) -> None:
    """Create *folder* (0755) and check it is a writable directory inside DESTDIR."""
    if destdir is not None and escapes(folder, destdir):
        raise InstallError(
            f"{folder} leads outside DESTDIR {destdir} (through an absolute symlink?)",
            hint="make the symlinks inside DESTDIR relative",
        )
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    except OSError as exc:
        raise InstallError(
            f"cannot create the zfcpdump directory {folder}: {exc.strerror}",
            hint=host_hint(exc, folder)
            or "choose a DESTDIR that is a directory you may write, or none to install on this host",
        ) from None
    if not os.access(folder, os.W_OK):
        raise InstallError(
            f"the zfcpdump directory {folder} is not writable: nothing was changed",
            hint=f"run as root, make {folder} writable, or stage with --destdir",
        )
    for name in zipl.KNOWN_NAMES:
        if (folder / name).is_dir() and not (folder / name).is_symlink():
            raise InstallError(f"{folder / name} is a directory: refusing to replace it")


def install_artifacts(out_dir: Path, loaded: Recipe, reporter: Reporter, opts: Options) -> InstallPlan:
    """Install OUT's pair as the recipe and *opts* say; return what was (or would be) done."""
    image, rd = artifacts(out_dir)
    check_signature(out_dir, opts, reporter)
    target = zipl.resolve(choice(loaded, opts))
    for note in target.notes:
        reporter.warning(note)
    plan = make_plan(
        image,
        rd,
        host_folder(target.directory, opts.destdir),
        target,
        opts.link or loaded.plan.install.link,
    )
    report_plan(plan, reporter)
    if opts.dry_run:
        reporter.info("dry run: nothing was changed")
        return plan
    prepare_folder(plan.folder, opts.destdir)
    with locked(plan.folder):
        if recover(plan.folder):
            reporter.warning(f"an interrupted install in {plan.folder} was rolled back first")
        Transaction(plan).run(opts.fault or env_fault())
    report_done(plan, reporter, opts.destdir)
    return plan


def check_signature(out_dir: Path, opts: Options, reporter: Reporter) -> None:
    """A signed output (or any, with --require-signature) is verified before anything is installed."""
    if not (opts.require_signature or (out_dir / signing.SIGNATURE).exists()):
        return
    try:
        verified = signing.verify_output(out_dir, opts.cert, opts.require_signature)
    except SignatureError as exc:
        raise SignatureError(f"{exc.message}; nothing was installed", hint=exc.hint) from None
    trust = "checked against " + str(opts.cert) if verified.trusted else "signer not checked: pass --cert"
    reporter.info(f"{out_dir / signing.SUMS} verified, signed by {verified.signer} ({trust})")


def report_plan(plan: InstallPlan, reporter: Reporter) -> None:
    target = plan.target
    detected = target.detected
    if detected is not None:
        reporter.table(f"zipl {detected.binary}", ["field", "value"], detected.rows())
    reads = f"{target.image_path()} and {target.rd_path()}"
    if any(e.remove for e in plan.entries):
        reads = f"{target.image_path()} (the initramfs is built in; no {target.rd_path()} may be left)"
    reporter.info(
        f"layout {target.layout.name} ({target.layout.versions}; {target.reason}): zipl reads {reads}"
    )
    reporter.table(
        f"install into {plan.folder}", ["name", "what"], [[e.name, e.describe()] for e in plan.entries]
    )


def report_done(plan: InstallPlan, reporter: Reporter, destdir: Path | None) -> None:
    for entry in plan.entries:
        path = plan.folder / entry.name
        if entry.source is not None and entry.name in (BASE_IMAGE, BASE_RD):
            reporter.artifact(entry.name, str(path), file_sha256(path), path.stat().st_size)
    aliases = [e.name for e in plan.entries if e.name not in (BASE_IMAGE, BASE_RD) and not e.remove]
    how = f" and {', '.join(aliases)} ({plan.link})" if aliases else ""
    installed = [e.name for e in plan.entries if e.name in (BASE_IMAGE, BASE_RD) and not e.remove]
    reporter.info(f"installed {', '.join(installed)}{how} in {plan.folder}")
    removed = [e.name for e in plan.entries if e.remove]
    if removed:
        reporter.info(f"no ramdisk is left for zipl to load: {', '.join(removed)} removed where present")
    for line in zipl.next_steps(plan.target, destdir, with_rd=not removed):
        reporter.info(line)


# --- command line ----------------------------------------------------------------------
