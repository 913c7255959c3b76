"""The `zfcpdump-build` / `build.py` command line."""

from __future__ import annotations

import argparse
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from . import crashlog, errors, ownership, pipeline, recipe
from .argtypes import positive_int
from .cache import default_cache_dir
from .events import Reporter, make_reporter
from .zipl import layout_arguments

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
    parser.add_argument("--jobs", "-j", type=positive_int, default=None, help="override build.jobs")
    parser.add_argument("--offline", action="store_true",
                        help="never download: use only what the cache already holds")
    parser.add_argument("--install", action="store_true", help="install after building")
    parser.add_argument("--destdir", type=Path, default=None, help="staging root for --install")
    parser.add_argument("--link", choices=("symlink", "copy"), default=None,
                        help="with --install: how zipl's names refer to the pair")
    layout_arguments(parser)
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


def cache_dir(args: argparse.Namespace) -> Path:
    """--cache-dir (or the default), refused unless it is, or may become, our cache."""
    path = (args.cache_dir or default_cache_dir()).resolve()
    ownership.check_cache_dir(path)
    return path


def context(args: argparse.Namespace, reporter: Reporter) -> pipeline.BuildContext:
    return pipeline.BuildContext(cache_dir=cache_dir(args), reporter=reporter,
                                 offline=getattr(args, "offline", False), jobs=getattr(args, "jobs", None))


def cmd_build(args: argparse.Namespace, reporter: Reporter) -> int:
    loaded = recipe.load(recipe_name(args))
    out_dir = default_out(args, loaded)
    ownership.check_output_dir(out_dir, cache_dir(args))  # before any work, and again at publish
    ctx = context(args, reporter)
    ownership.tag_cache_dir(ctx.cache_dir)
    result = pipeline.build_all(loaded, ctx)
    ownership.check_output_dir(out_dir, ctx.cache_dir)
    pipeline.finish(result, out_dir, ctx)
    if args.install:
        from . import install

        install.install_artifacts(out_dir, loaded, reporter, install.Options(
            args.install_dir, args.destdir.resolve() if args.destdir else None, args.layout,
            args.link, args.zipl))
    return 0


# Sub-commands that live beside their stage; each module registers itself.
# command -> the module whose add_arguments() defines it
EXTENSIONS = {"plan": "plan", "install": "install", "dumpdisk": "dumpdisk", "qemu": "qemu",
              "cache": "cachecli"}


class UsageError(Exception):
    """A bad command line, raised instead of argparse's exit so --json still ends with a result."""

    def __init__(self, message: str, usage: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}", self.format_usage())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    """Parse, run, and always end with a result (the JSON contract), whatever went wrong."""
    argv = sys.argv[1:] if argv is None else argv
    reporter: Reporter = make_reporter("--json" in argv, False)
    try:
        signal.signal(signal.SIGTERM, _terminate)
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except UsageError as exc:
            print(exc.usage, end="", file=sys.stderr)
            reporter.error("usage", 2, exc.message, "see --help")
            reporter.result(2)
            return 2
        except SystemExit as exc:  # --help and --version
            code = exc.code if isinstance(exc.code, int) else 2
            reporter.result(code)
            return code
        if not getattr(args, "handler", None):
            parser.print_help()
            return 2
        reporter = make_reporter(getattr(args, "json", False), getattr(args, "verbose", False))
        code = run(args, reporter)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # done: a late Ctrl-C must not lose the result
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        code = _interrupted(reporter)
    reporter.result(code)
    return code


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (CI cancelling a job) cleans up like Ctrl-C


def _interrupted(reporter: Reporter) -> int:
    reporter.error("interrupted", errors.INTERRUPTED_EXIT,
                   "interrupted; no partial stage was kept, the next run resumes")
    return errors.INTERRUPTED_EXIT


def run(args: argparse.Namespace, reporter: Reporter) -> int:
    """The one error boundary: typed errors keep their exit code, OS errors become host
    errors (exit 4), and anything else is a bug (exit 1) whose traceback goes to a log."""
    try:
        return int(args.handler(args, reporter))
    except KeyboardInterrupt:
        return _interrupted(reporter)
    except errors.BuildError as exc:
        return _report(reporter, exc)
    except OSError as exc:
        return _report(reporter, errors.from_os_error(exc))
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug must still end cleanly
        log = crashlog.write(exc, getattr(args, "cache_dir", None))
        reporter.error("internal", 1, f"internal error: {type(exc).__name__}: {exc}",
                       "this is a bug in zfcpdump-build: please report it with the log", log)
        return 1


def _report(reporter: Reporter, exc: errors.BuildError) -> int:
    reporter.error(exc.kind, exc.exit_code, exc.message, exc.hint, exc.log)
    return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
