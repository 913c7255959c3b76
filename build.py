#!/usr/bin/env python3
"""zfcpdump-build from a source checkout: `./build.py --help`.

Runs inside the checkout's .venv (made by `./setup.sh`) when the caller's Python lacks
the dependencies, so `./build.py` works from any shell.
"""

import sys


def interrupted() -> None:
    """Ctrl-C while starting up: the documented exit code, and the JSON stream's last event."""
    if "--json" in sys.argv:
        print('{"event": "result", "exit_code": 130, "status": "failed", "v": 1}', flush=True)
    print("interrupted", file=sys.stderr)
    sys.exit(130)


def load_main():  # noqa: ANN201 - returns zfcpdump_builder.cli.main
    """Import the CLI (re-running under the checkout's .venv when dependencies are missing)."""
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parent
    venv_python = root / ".venv" / "bin" / "python"
    try:
        import jinja2, libarchive, rich, yaml  # noqa: E401, F401, I001
    except ImportError:
        if venv_python.exists() and Path(sys.executable).resolve() != venv_python.resolve():
            os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()), *sys.argv[1:]])
        sys.exit(
            "zfcpdump-build: missing Python dependencies; run `./setup.sh build` first (or `pip install .`)"
        )
    sys.path.insert(0, str(root / "src"))
    from zfcpdump_builder.cli import main

    return main


if __name__ == "__main__":
    try:
        entry = load_main()
    except KeyboardInterrupt:  # every import happens in there, and each may be interrupted
        interrupted()
    sys.exit(entry())
