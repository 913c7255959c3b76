"""`recipe-keys`: every recipe key with its type, default and meaning (from the schema)."""

from __future__ import annotations

import argparse

from ..core.events import Reporter
from ..recipe.schema import markdown_table, rows


def add_arguments(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("recipe-keys", help="list every recipe key with its type and default")
    parser.add_argument("--markdown", action="store_true", help="print the README's Markdown table")
    parser.set_defaults(handler=cmd_recipe_keys, json=False, verbose=False, cache_dir=None)


def cmd_recipe_keys(args: argparse.Namespace, reporter: Reporter) -> int:
    if args.markdown:
        print(markdown_table())
    else:
        reporter.table("recipe keys", ["key", "type", "default", "meaning"], rows())
    return 0
