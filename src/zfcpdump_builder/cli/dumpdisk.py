"""`dumpdisk inspect DEV|IMAGE`, `dumpdisk extract DEV|IMAGE OUT` and `dumpdisk prepare DEV`."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from .. import recipe
from ..core.events import JsonReporter, Reporter
from ..deploy import device, dumpdisk, prepare, zipl
from .common import common_options, layout_arguments, recipe_argument, recipe_name


def inspect_cmd(args: argparse.Namespace, reporter: Reporter) -> int:
    """0 when the disk is a valid zipl dump disk (whatever its dump state), else 7."""
    info = dumpdisk.inspect(args.device)
    if isinstance(reporter, JsonReporter):
        reporter.emit("dumpdisk", **info)
    else:
        reporter.table(f"dump disk {info['path']}", ["field", "value"], dumpdisk.rows(info))
    return dumpdisk.DumpDiskError.exit_code if info["error"] else 0


def extract_cmd(args: argparse.Namespace, reporter: Reporter) -> int:
    size = dumpdisk.extract(args.device, args.out, args.force)
    reporter.info(f"extracted {size / dumpdisk.MB:.1f} MB dump to {args.out}")
    return 0


def prepare_cmd(args: argparse.Namespace, reporter: Reporter) -> int:
    """Preflight, then `zipl -d DEV` (only printed with --dry-run)."""
    loaded = recipe.load(recipe_name(args))
    request = prepare.Request(
        args.device,
        args.zipl,
        args.layout,
        args.install_dir,
        args.from_dir,
        args.dry_run,
        args.force,
        args.secure,
    )
    _, checks, binary = prepare.preflight(request, loaded, reporter)
    device.report_checks(checks, reporter)
    device.raise_first_failure(checks)
    command = zipl.dump_command(args.device, str(binary or "zipl"), args.yes, args.secure)
    reporter.info(f"zipl command: {shlex.join(command)}")
    if args.dry_run:
        reporter.info("dry run: zipl was not run, nothing was changed")
        return 0
    prepare.run_zipl(command, reporter)
    disk = device.disk_of(args.device)
    reporter.info(
        f"dump record installed on {args.device}; check the disk with "
        f"`./build.py dumpdisk inspect {disk}` or `zgetdump -d {disk}`"
    )
    return 0


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="emit JSON-lines events on stdout")
    parser.add_argument("-v", "--verbose", action="store_true", help=argparse.SUPPRESS)


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dumpdisk", help="inspect, extract or prepare a zipl SCSI dump disk")
    sub = parser.add_subparsers(dest="dumpdisk_command", metavar="ACTION", required=True)
    ins = sub.add_parser("inspect", help="show the dump disk layout and dump state")
    ins.add_argument("device", metavar="DEV|IMAGE", help="dump disk (whole disk) or its image")
    _output_options(ins)
    ins.set_defaults(handler=inspect_cmd)
    ext = sub.add_parser("extract", help="copy the complete dump out as an ELF core")
    ext.add_argument("device", metavar="DEV|IMAGE", help="dump disk (whole disk) or its image")
    ext.add_argument("out", metavar="OUT", type=Path, help="output ELF core file (a new file)")
    ext.add_argument("--force", action="store_true", help="replace OUT if it is an existing regular file")
    _output_options(ext)
    ext.set_defaults(handler=extract_cmd)
    _add_prepare(sub)


def _add_prepare(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "prepare",
        help="preflight checks, then zipl -d DEV (install the SCSI dump record)",
        description="Check that the installed zfcpdump pair is complete and within budget.memory and "
        "that DEV is an unused partition, then run `zipl -d DEV`, which erases DEV and "
        "copies the image and ramdisk zipl reads onto it.",
    )
    parser.add_argument("device", metavar="DEV", help="the dump partition (not a whole disk)")
    recipe_argument(parser)
    common_options(parser)
    parser.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="OUT",
        help="also require the installed pair to be the build in OUT",
    )
    layout_arguments(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the checks and the zipl command only")
    parser.add_argument(
        "--force",
        action="store_true",
        help="go ahead although --dir differs from the directory compiled into zipl",
    )
    parser.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="pass -n to zipl (answer its 'all data will be lost' question with yes)",
    )
    parser.add_argument(
        "--secure",
        choices=("auto", "0", "1"),
        default=None,
        help="pass --secure to zipl; 1 refuses an image without a secure-IPL signature",
    )
    parser.set_defaults(handler=prepare_cmd)
