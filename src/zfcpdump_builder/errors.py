"""Expected failures, each with a documented exit code. They are shown without a traceback."""

from __future__ import annotations


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
    "install or dump-disk failure": InstallError.exit_code,
    "boot test failed": TestBootError.exit_code,
    "interrupted (Ctrl-C)": INTERRUPTED_EXIT,
}
