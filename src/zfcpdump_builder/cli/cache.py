"""`cache list|prune`: see what the stage cache holds, and free what is not used."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.events import Reporter
from ..core.store import CacheEntry, Store
from .argtypes import finite_float
from .common import cache_dir, common_options

DAY = 86400.0


def add_arguments(sub: argparse._SubParsersAction) -> None:

    parser = sub.add_parser(
        "cache",
        help="list or prune the stage cache",
        description="Stage objects and kernel O= trees pile up as recipes, "
        "sources and the builder change. 'list' shows each with its size and "
        "last use; 'prune' deletes those not used for --older-than days (or "
        "--all). Downloaded packages are kept. An entry a running build holds "
        "is skipped, but a build may still read an object it has finished "
        "with, so prune between builds.",
    )
    parser.add_argument("action", choices=("list", "prune"))
    common_options(parser)
    parser.add_argument(
        "--older-than",
        type=finite_float(0.0, inclusive=True),
        default=30.0,
        metavar="DAYS",
        help="prune: entries last used more than DAYS ago (default: 30)",
    )
    parser.add_argument("--all", action="store_true", help="prune: every object and O= tree")
    parser.add_argument("--dry-run", action="store_true", help="prune: only list what would go")
    parser.set_defaults(handler=cmd_cache)


def cmd_cache(args: argparse.Namespace, reporter: Reporter) -> int:

    store = Store(cache_dir(args))
    entries = store.entries()
    debris = store.debris()
    if args.action == "list":
        sizes = {e.path: e.size() for e in entries}
        _show(reporter, f"stage cache {store.root}", entries, sizes)
        for path in debris:
            reporter.info(
                f"cache: {path.name} in tmp/ is left over from a killed build or prune; "
                "`cache prune` removes it"
            )
        reporter.info(
            f"cache: {len(entries)} entries, {_mib(sum(sizes.values()))}"
            + (f"; {len(debris)} left-overs in tmp/" if debris else "")
        )
        return 0
    if debris and not args.dry_run:
        store.clean_stale_tmp()
        reporter.info(f"cache: removed {len(debris)} left-overs of killed builds or prunes from tmp/")
    cutoff = time.time() - args.older_than * DAY
    doomed = entries if args.all else [e for e in entries if e.last_used < cutoff]
    sizes = {e.path: e.size() for e in doomed}
    removed = doomed if args.dry_run else [e for e in doomed if store.remove(e)]
    for entry in doomed:
        if entry not in removed:
            reporter.warning(f"cache: {entry.path.name} is in use by a running build; kept")
    verb = "would free" if args.dry_run else "freed"
    _show(reporter, f"pruned from {store.root}" if not args.dry_run else "would prune", removed, sizes)
    reporter.info(
        f"cache: {verb} {_mib(sum(sizes[e.path] for e in removed))} in {len(removed)} entries; "
        f"{len(entries) - len(removed)} kept"
    )
    return 0


def _show(reporter: Reporter, title: str, entries: list[CacheEntry], sizes: dict[Path, int]) -> None:
    now = time.time()
    rows = [
        [
            entry.kind,
            entry.stage,
            entry.path.name,
            _mib(sizes[entry.path]),
            f"{(now - entry.last_used) / DAY:.1f}",
        ]
        for entry in entries
    ]
    reporter.table(title, ["kind", "stage", "name", "size", "days since use"], rows)


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
