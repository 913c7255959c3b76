"""The `zfcpdump-build` / `build.py` command line: the parser, and the one error boundary."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from typing import NoReturn

from ..core import crashlog, errors
from ..core.events import Reporter, make_reporter
from . import build, cache, dumpdisk, install, plan, qemu, recipe_keys, sign
from .common import EPILOG

# One module per verb, each with add_arguments(subparsers), in the order `--help` lists them.
VERBS = (build, plan, sign, install, dumpdisk, qemu, recipe_keys, cache)


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
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for verb in VERBS:
        verb.add_arguments(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and always end with a result (the JSON contract), whatever went wrong."""
    argv = sys.argv[1:] if argv is None else argv
    reporters = [make_reporter("--json" in argv, False)]
    try:
        code = _dispatch(argv, reporters)
    except KeyboardInterrupt:
        _quiet_signals()
        code = _interrupted(reporters[-1])
    except Exception as exc:  # noqa: BLE001 - the reporting itself failed (a closed stdout, say)
        _quiet_signals()
        log = crashlog.write(exc, None)
        print(f"zfcpdump-build: internal error: {type(exc).__name__}: {exc} (log: {log})", file=sys.stderr)
        code = 1
    _quiet_signals()  # done: a late Ctrl-C or SIGTERM must not lose the result
    with contextlib.suppress(OSError):  # stdout gone (`--json | head`): nobody reads the result
        reporters[-1].result(code)
    return code


def _dispatch(argv: list[str], reporters: list[Reporter]) -> int:
    """Parse *argv* and run its handler; the reporter in use is always reporters[-1]."""
    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(exc.usage, end="", file=sys.stderr)
        reporters[-1].error("usage", 2, exc.message, "see --help")
        return 2
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    reporters.append(make_reporter(getattr(args, "json", False), getattr(args, "verbose", False)))
    code = run(args, reporters[-1])
    _quiet_signals()
    return code


def _quiet_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM (CI cancelling a job) cleans up like Ctrl-C


def _interrupted(reporter: Reporter) -> int:
    reporter.error(
        "interrupted", errors.INTERRUPTED_EXIT, "interrupted; no partial stage was kept, the next run resumes"
    )
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
        reporter.error(
            "internal",
            1,
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in zfcpdump-build: please report it with the log",
            log,
        )
        return 1


def _report(reporter: Reporter, exc: errors.BuildError) -> int:
    reporter.error(exc.kind, exc.exit_code, exc.message, exc.hint, exc.log)
    return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
