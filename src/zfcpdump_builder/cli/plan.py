"""`plan [RECIPE]`: what a build would use and do, without building anything."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from .. import recipe
from ..core.events import Reporter
from ..stages import graph, kconfig, source
from ..stages.plan import defconfig_diff, describe_inputs, stock_defconfig
from .common import common_options, context, default_out, recipe_argument, recipe_name


def add_arguments(sub: argparse._SubParsersAction) -> None:

    parser = sub.add_parser(
        "plan",
        help="show what a build would do, without building",
        description="Print the resolved recipe (after extends), the rendered "
        "defconfig's diff against the kernel's stock zfcpdump_defconfig, the "
        "source, toolchain and runtime, which stages are cached and which "
        "would run, and the output and install paths. Builds nothing.",
    )
    recipe_argument(parser)
    common_options(parser)
    parser.add_argument("--out", "-o", type=Path, default=None, help="output directory")
    parser.set_defaults(handler=cmd_plan)


def cmd_plan(args: argparse.Namespace, reporter: Reporter) -> int:

    loaded = recipe.load(recipe_name(args))
    ctx = context(args, reporter)
    states, found = graph.survey(graph.StageEnv(loaded, ctx))
    tree = source.source_tree(found["source"]) if "source" in found else None
    reporter.info(f"recipe {loaded.name}: {' <- '.join(str(p) for p in loaded.chain)}")
    reporter.info("resolved recipe:\n" + yaml.safe_dump(loaded.resolved, sort_keys=False).rstrip())
    stock, label = stock_defconfig(tree, loaded)
    if loaded.plan.kernel.base is None and tree is None:
        rendered = ""  # the base is in the tree: nothing to compare before it is unpacked
    else:
        rendered = kconfig.render_defconfig(loaded.plan.kernel, tree.path if tree else None)
    diff = defconfig_diff(stock, rendered)
    reporter.info(f"defconfig changes against {label}:\n" + ("\n".join(diff) if diff else "  (none)"))
    reporter.table("inputs", ["what", "value"], describe_inputs(loaded, loaded.plan.kernel.source))
    reporter.table("stages", ["stage", "state", "key"], [s.row() for s in states])
    reporter.table(
        "paths",
        ["what", "path"],
        [
            ("output", str(default_out(args, loaded))),
            ("install dir", loaded.plan.install.directory),
            ("cache", str(ctx.cache_dir)),
        ],
    )
    return 0
