#!/usr/bin/env python3
"""zfcpdump-build from a source checkout: `./build.py --help`.

Runs inside the checkout's .venv (made by `./setup.sh`) when the caller's Python lacks
the dependencies, so `./build.py` works from any shell.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def interrupted() -> None:
    """Ctrl-C while starting up: the documented exit code, and the JSON stream's last event."""
    if "--json" in sys.argv:
        print('{"event": "result", "exit_code": 130, "status": "failed", "v": 1}', flush=True)
    print("interrupted", file=sys.stderr)
    sys.exit(130)


try:
    import jinja2, libarchive, rich, yaml  # noqa: E401, F401, I001
except KeyboardInterrupt:
    interrupted()
except ImportError:
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    sys.exit("zfcpdump-build: missing Python dependencies; run `./setup.sh build` first (or `pip install .`)")

sys.path.insert(0, str(ROOT / "src"))

try:
    from zfcpdump_builder.cli import main
except KeyboardInterrupt:
    interrupted()

if __name__ == "__main__":
    sys.exit(main())
