"""The `zfcpdump-build` / `build.py` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

from . import errors, pipeline, recipe
from .cache import default_cache_dir
from .events import Reporter, make_reporter

Handler = Callable[[argparse.Namespace, Reporter], int]

EPILOG = "exit codes:\n" + "\n".join(f"  {code:>3}  {what}" for what, code in errors.EXIT_CODES.items())


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="stage cache and downloads (default: $XDG_CACHE_HOME/zfcpdump-build "
                             "or ~/.cache/zfcpdump-build)")
    parser.add_argument("--json", action="store_true",
                        help="emit JSON-lines events on stdout (schema: README, 'JSON events')")
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail")


def _recipe_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe_pos", nargs="?", metavar="RECIPE",
                        help="recipe name in recipes/ or a path to a YAML file (default: default)")
    parser.add_argument("--recipe", "-r", dest="recipe_opt", metavar="RECIPE",
                        help="the recipe, as an option (handy after other positional arguments)")


def recipe_name(args: argparse.Namespace) -> str:
    return args.recipe_opt or args.recipe_pos or "default"


def _add_build(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("build", help="build zfcpdump.image and zfcpdump.rd from a recipe",
                            description=textwrap.dedent("""\
        Build the kernel and the initramfs of RECIPE and publish them in OUT
        (default: out/<recipe>/): zfcpdump.image, zfcpdump.rd, System.map, kernel.config
        and manifest.json. Every stage is cached under a hash of its inputs, so an
        unchanged rerun does no work and a changed input redoes only what depends on it."""),
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _recipe_arg(parser)
    _common(parser)
    parser.add_argument("--out", "-o", type=Path, default=None, help="output directory")
    parser.add_argument("--jobs", "-j", type=int, default=None, help="override build.jobs")
    parser.add_argument("--offline", action="store_true",
                        help="never download: use only what the cache already holds")
    parser.add_argument("--install", action="store_true", help="install after building")
    parser.add_argument("--destdir", type=Path, default=None, help="staging root for --install")
    parser.set_defaults(handler=cmd_build)


def _add_recipe_keys(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("recipe-keys", help="list every recipe key with its type and default")
    parser.add_argument("--markdown", action="store_true", help="print the README's Markdown table")
    parser.set_defaults(handler=cmd_recipe_keys, json=False, verbose=False, cache_dir=None)


def cmd_recipe_keys(args: argparse.Namespace, reporter: Reporter) -> int:
    from .schema import markdown_table, rows

    if args.markdown:
        print(markdown_table())
    else:
        reporter.table("recipe keys", ["key", "type", "default", "meaning"], rows())
    return 0


def default_out(args: argparse.Namespace, loaded: recipe.Recipe) -> Path:
    return (args.out or Path("out") / loaded.name).resolve()


def context(args: argparse.Namespace, reporter: Reporter) -> pipeline.BuildContext:
    return pipeline.BuildContext(cache_dir=(args.cache_dir or default_cache_dir()).resolve(),
                                 reporter=reporter, offline=getattr(args, "offline", False),
                                 jobs=getattr(args, "jobs", None))


def cmd_build(args: argparse.Namespace, reporter: Reporter) -> int:
    loaded = recipe.load(recipe_name(args))
    ctx = context(args, reporter)
    result = pipeline.build_all(loaded, ctx)
    out_dir = default_out(args, loaded)
    pipeline.finish(result, out_dir, ctx)
    if args.install:
        from . import install

        install.install_from_build(result, out_dir, loaded, args.destdir, reporter)
    return 0


# Sub-commands that live beside their stage; each module registers itself.
# command -> the module whose add_arguments() defines it
EXTENSIONS = {"plan": "plan", "install": "install", "dumpdisk": "dumpdisk", "qemu": "qemu",
              "cache": "cachecli"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zfcpdump-build",
        description="Build the IBM Z zfcpdump stand-alone dump tool from declarative recipes.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_build(sub)
    _add_recipe_keys(sub)
    for module in EXTENSIONS.values():
        _add_extension(sub, module)
    return parser


def _add_extension(sub: argparse._SubParsersAction, name: str) -> None:
    import importlib

    importlib.import_module(f"zfcpdump_builder.{name}").add_arguments(sub)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    reporter = make_reporter(getattr(args, "json", False), getattr(args, "verbose", False))
    code = run(args, reporter)
    reporter.result(code)
    return code


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (CI cancelling a job) cleans up like Ctrl-C


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args, reporter))
    except errors.BuildError as exc:
        reporter.error(exc.kind, exc.exit_code, exc.message, exc.hint, exc.log)
        return exc.exit_code
    except KeyboardInterrupt:
        reporter.error("interrupted", errors.INTERRUPTED_EXIT,
                       "interrupted; no partial stage was kept, the next run resumes")
        return errors.INTERRUPTED_EXIT


if __name__ == "__main__":
    sys.exit(main())
