"""`build [RECIPE]`: every stage, then publish the artifacts (and, with --install, install them)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from .. import recipe
from ..core import ownership
from ..core.events import Reporter
from ..deploy import install
from ..deploy.transaction import LINK_MODES
from ..stages import pipeline
from .argtypes import positive_int
from .common import (
    EPILOG,
    common_options,
    context,
    default_out,
    layout_arguments,
    recipe_argument,
    recipe_name,
)


def add_arguments(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "build",
        help="build zfcpdump.image and zfcpdump.rd from a recipe",
        description=textwrap.dedent("""\
        Build the kernel and the initramfs of RECIPE and publish them in OUT
        (default: out/<recipe>/): zfcpdump.image, zfcpdump.rd, System.map, kernel.config
        and manifest.json. Every stage is cached under a hash of its inputs, so an
        unchanged rerun does no work and a changed input redoes only what depends on it."""),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recipe_argument(parser)
    common_options(parser)
    parser.add_argument("--out", "-o", type=Path, default=None, help="output directory")
    parser.add_argument("--jobs", "-j", type=positive_int, default=None, help="override build.jobs")
    parser.add_argument(
        "--offline", action="store_true", help="never download: use only what the cache already holds"
    )
    parser.add_argument("--install", action="store_true", help="install after building")
    parser.add_argument("--destdir", type=Path, default=None, help="staging root for --install")
    parser.add_argument(
        "--link",
        choices=LINK_MODES,
        default=None,
        help="with --install: how zipl's names refer to the pair",
    )
    layout_arguments(parser)
    parser.set_defaults(handler=cmd_build)


def cmd_build(args: argparse.Namespace, reporter: Reporter) -> int:
    loaded = recipe.load(recipe_name(args))
    out_dir = default_out(args, loaded)
    ctx = context(args, reporter)
    ownership.check_output_dir(out_dir, ctx.cache_dir)  # before any work, and again at publish
    ownership.tag_cache_dir(ctx.cache_dir)
    ctx.store.clean_stale_tmp()  # what killed builds left; plan, which builds nothing, keeps it
    result = pipeline.build_all(loaded, ctx)
    ownership.check_output_dir(out_dir, ctx.cache_dir)
    pipeline.finish(result, out_dir, ctx)
    if args.install:
        install.install_artifacts(
            out_dir,
            loaded,
            reporter,
            install.Options(
                args.install_dir,
                args.destdir.resolve() if args.destdir else None,
                args.layout,
                args.link,
                args.zipl,
            ),
        )
    return 0
