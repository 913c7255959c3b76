"""Entry point: `main(argv) -> int`, hand-parsed options (no argparse).

    zfcpdump-writer [--root DIR] [--config FILE] [--system]

--root DIR     map every absolute system path under DIR; mount/reboot become recorded no-ops
               (lines in DIR/.zfcpdump-actions). For tests and benchmarks.
--config FILE  read FILE instead of the baked /etc/zfcpdump.conf (taken as given, not mapped).
--system       run on the real system although this is not PID 1 (it mounts, writes the dump
               disk and powers off or re-IPLs at the end: only inside the dump environment).
"""

from __future__ import annotations

import os
import sys

from .dump import Dump
from .system import RootedSystem, System

EXIT_USAGE = 3
USAGE = "usage: zfcpdump-writer [--root DIR] [--config FILE] [--system]"


def parse_args(argv: list[str]) -> dict[str, str | bool | None]:
    """Options as a dict; raises ValueError with a one-line message on a bad command line."""
    opts: dict[str, str | bool | None] = {"root": None, "config": None, "system": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--root", "--config"):
            if not eq:
                if not args:
                    raise ValueError(f"{name} needs a value")
                value = args.pop(0)
            opts[name[2:]] = value
        elif arg == "--system":
            opts["system"] = True
        elif arg in ("-h", "--help"):
            raise ValueError("help")
        else:
            raise ValueError(f"unknown argument {arg!r}")
    return opts


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(__doc__ if str(exc) == "help" else f"zfcpdump: {exc}\n{USAGE}", file=sys.stderr)
        return 0 if str(exc) == "help" else EXIT_USAGE
    root = opts["root"]
    if isinstance(root, str):
        sysm: System = RootedSystem(root)
    elif os.getpid() == 1 or opts["system"]:
        sysm = System()
    else:
        print(
            "zfcpdump: refusing to run on a live system (not PID 1): use --root DIR for tests, "
            "--system inside the dump environment",
            file=sys.stderr,
        )
        return EXIT_USAGE
    config = opts["config"]
    return Dump(sysm, config if isinstance(config, str) else None).run()
