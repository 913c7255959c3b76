"""`install [RECIPE]`: put a build's zfcpdump.image + zfcpdump.rd where the target's zipl reads them."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from .. import recipe
from ..core.events import Reporter
from ..deploy.install import Options, install_artifacts
from ..deploy.transaction import LINK_MODES
from .common import EPILOG, common_options, layout_arguments, recipe_argument, recipe_name
from .sign import signature_arguments

DESCRIPTION = textwrap.dedent("""\
    Install OUT_DIR/zfcpdump.image and OUT_DIR/zfcpdump.rd (default OUT_DIR: out/<recipe>/)
    into the zfcpdump directory, under those names and under the names the target's zipl
    reads: zfcpdump-image/zfcpdump-initrd (s390-tools >= 2.7), zfcpdump_part.image/.rd
    (2.0-2.6), or the base names alone (< 2.0). The layout is detected from the zipl binary
    (this host's on s390x, DESTDIR's with --destdir, or --zipl PATH) unless --layout or the
    recipe's install.zipl_layout names it. Both files or neither: an interrupted install
    keeps the previous pair. A build with the initramfs built in (initramfs.placement:
    builtin) installs the image alone and removes any ramdisk there. A signed output (SHA256SUMS.sig) is verified first, and any
    file that changed after the build is refused.""")


def add_arguments(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "install",
        help="install zfcpdump.image + zfcpdump.rd for zipl",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recipe_argument(parser)
    common_options(parser)
    parser.add_argument(
        "--from",
        dest="from_dir",
        type=Path,
        metavar="OUT_DIR",
        help="the build output to install (default: out/<recipe>/)",
    )
    layout_arguments(parser)
    parser.add_argument(
        "--destdir",
        type=Path,
        default=None,
        help="staging root: install into DESTDIR/<dir>; the build host's zipl is never consulted",
    )
    parser.add_argument(
        "--link",
        choices=LINK_MODES,
        default=None,
        help="how zipl's names refer to the pair (default: the recipe's install.link)",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be installed")
    signature_arguments(parser)
    parser.set_defaults(handler=cmd_install)


def cmd_install(args: argparse.Namespace, reporter: Reporter) -> int:

    loaded = recipe.load(recipe_name(args))
    out_dir = (args.from_dir or Path("out") / loaded.name).resolve()
    destdir = args.destdir.resolve() if args.destdir else None
    install_artifacts(
        out_dir,
        loaded,
        reporter,
        Options(
            args.install_dir,
            destdir,
            args.layout,
            args.link,
            args.zipl,
            args.dry_run,
            cert=args.cert,
            require_signature=args.require_signature,
        ),
    )
    return 0
