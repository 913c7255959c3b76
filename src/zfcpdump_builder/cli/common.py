"""What the verbs share: common options, the recipe argument, the cache and output paths."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import recipe
from ..core import errors, ownership
from ..core.events import Reporter
from ..core.store import default_cache_dir
from ..deploy.zipl import LAYOUT_CHOICES
from ..stages import graph

EPILOG = "exit codes:\n" + "\n".join(f"  {code:>3}  {what}" for what, code in errors.EXIT_CODES.items())


def common_options(parser: argparse.ArgumentParser) -> None:
    """--cache-dir, --json and -v."""
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="stage cache and downloads (default: $XDG_CACHE_HOME/zfcpdump-build or ~/.cache/zfcpdump-build)",
    )
    parser.add_argument(
        "--json", action="store_true", help="emit JSON-lines events on stdout (schema: README, 'JSON events')"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail")


def recipe_argument(parser: argparse.ArgumentParser) -> None:
    """RECIPE, as a positional argument or as --recipe."""
    parser.add_argument(
        "recipe_pos",
        nargs="?",
        metavar="RECIPE",
        help="recipe name in recipes/ or a path to a YAML file (default: default)",
    )
    parser.add_argument(
        "--recipe",
        "-r",
        dest="recipe_opt",
        metavar="RECIPE",
        help="the recipe, as an option (handy after other positional arguments)",
    )


def recipe_name(args: argparse.Namespace) -> str:
    return args.recipe_opt or args.recipe_pos or "default"


def default_out(args: argparse.Namespace, loaded: recipe.Recipe) -> Path:
    return (args.out or Path("out") / loaded.name).resolve()


def cache_dir(args: argparse.Namespace) -> Path:
    """--cache-dir (or the default), refused unless it is, or may become, our cache."""
    path = (args.cache_dir or default_cache_dir()).resolve()
    ownership.check_cache_dir(path)
    return path


def context(args: argparse.Namespace, reporter: Reporter) -> graph.BuildContext:
    return graph.BuildContext(
        cache_dir=cache_dir(args),
        reporter=reporter,
        offline=getattr(args, "offline", False),
        jobs=getattr(args, "jobs", None),
    )


def layout_arguments(parser: argparse.ArgumentParser) -> None:
    """--dir, --layout and --zipl, shared by `install` and `dumpdisk prepare`."""
    parser.add_argument(
        "--dir",
        dest="install_dir",
        metavar="DIR",
        help="the zfcpdump directory on the target (default: the one compiled into "
        "zipl, else the recipe's install.dir)",
    )
    parser.add_argument(
        "--layout",
        choices=LAYOUT_CHOICES,
        default=None,
        help="names the target's zipl reads (default: the recipe's install.zipl_layout)",
    )
    parser.add_argument(
        "--zipl",
        type=Path,
        default=None,
        metavar="PATH",
        help="detect the layout from this zipl binary (read, never run by install)",
    )
