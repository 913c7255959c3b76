"""Expected failures, each with a documented exit code. They are shown without a traceback."""

from __future__ import annotations

import errno


class BuildError(Exception):
    """Base class: an expected failure with a user-facing message."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None, log: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log = log


class RecipeError(BuildError):
    """The recipe is malformed, invalid, or asks for something the kernel cannot give."""

    exit_code = 2
    kind = "recipe"


class ConfigError(RecipeError):
    """The kernel configuration does not honour what the recipe requests."""

    kind = "config"


class SourceError(BuildError):
    """An input could not be obtained or verified (tarball, package, checksum)."""

    exit_code = 3
    kind = "source"


class OfflineMissingError(SourceError):
    """An offline build needs something the cache does not hold (a download would fetch it)."""


class HostError(BuildError):
    """The build host lacks a tool or resource (compiler, disk space, apt)."""

    exit_code = 4
    kind = "host"


class CompileError(BuildError):
    """A compile or packaging step failed; `log` names the full log."""

    exit_code = 5
    kind = "build"


class BudgetError(BuildError):
    """The artifacts do not fit the size or memory budget."""

    exit_code = 6
    kind = "budget"


class InstallError(BuildError):
    """Installing the artifacts or preparing a dump disk failed; nothing was changed."""

    exit_code = 7
    kind = "install"


class OwnershipError(BuildError):
    """A path the command would write, replace or delete is not one this tool made."""

    exit_code = 7
    kind = "ownership"


class SignatureError(BuildError):
    """A checksum, signature or key that does not check out."""

    exit_code = 9
    kind = "signature"


class TestBootError(BuildError):
    """A QEMU boot test did not reach its expected console markers."""

    exit_code = 8
    kind = "boot"


INTERRUPTED_EXIT = 130

EXIT_CODES: dict[str, int] = {
    "success": 0,
    "unexpected internal error": 1,
    "recipe or kernel-config error": RecipeError.exit_code,
    "source/download/checksum error": SourceError.exit_code,
    "host tool or resource missing": HostError.exit_code,
    "compile or packaging failure": CompileError.exit_code,
    "budget exceeded": BudgetError.exit_code,
    "install, dump-disk or ownership refusal": InstallError.exit_code,
    "boot test failed": TestBootError.exit_code,
    "checksum, signature or key refused": SignatureError.exit_code,
    "interrupted (Ctrl-C)": INTERRUPTED_EXIT,
}


HOST_ERRNO_HINTS: dict[int, str] = {
    errno.ENOSPC: "free some space there, or choose a path on a larger filesystem",
    errno.EDQUOT: "the disk quota is exhausted: free some space, or choose another path",
    errno.EROFS: "that filesystem is mounted read-only: choose a writable path",
    errno.EACCES: "permission denied: run as a user who may write there, or choose another path",
    errno.EPERM: "operation not permitted: run as a user who may write there, or choose another path",
    errno.ENOTDIR: "a part of that path is a file, not a directory: choose another path",
    errno.EISDIR: "that path is a directory where a file was expected: choose another path",
}


def from_os_error(exc: OSError) -> HostError:
    """An OSError that escaped the stages, as a host error naming the path (exit 4)."""
    where = " -> ".join(str(name) for name in (exc.filename, exc.filename2) if name is not None)
    what = exc.strerror or type(exc).__name__
    message = f"{what}: {where}" if where else f"{what} ({exc})"
    hint = HOST_ERRNO_HINTS.get(exc.errno or 0, "check the path and its filesystem, then rerun")
    return HostError(message, hint=hint)
