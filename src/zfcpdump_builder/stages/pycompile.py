"""Reproducible bytecode: compile sources into sourceless, unchecked-hash .pyc files.

The compiler runs in a fresh child interpreter with PYTHONHASHSEED=0: marshal writes the
elements of frozenset constants in hash order, and reference flags depend on the process'
history, so a fresh, seeded process is what makes two builds byte-identical.

The .pyc header is PEP 552's hash-based form with the "check_source" bit clear: the importer
never looks for a source file and never compares timestamps, and the bytes contain no time.
The file name recorded in the code objects (`dfile`) is the path inside the image, so no host
path leaks into the initramfs.

This file also runs as a script (the child): it reads a JSON job list on stdin.
"""

from __future__ import annotations

import importlib.util
import json
import marshal
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FLAG_HASH_BASED = 0b01  # PEP 552: hash-based pyc; bit 1 (check_source) left clear


@dataclass(frozen=True)
class Job:
    source: Path
    dfile: str
    output: Path


def host_magic() -> int:
    """The bytecode magic number of the Python running the builder."""
    return int.from_bytes(importlib.util.MAGIC_NUMBER[:2], "little")


def pyc_bytes(source: bytes, dfile: str, optimize: int) -> bytes:
    """An unchecked hash-based .pyc for *source* (compiled by this interpreter)."""
    code = compile(source, dfile, "exec", dont_inherit=True, optimize=optimize)
    header = importlib.util.MAGIC_NUMBER + FLAG_HASH_BASED.to_bytes(4, "little")
    return header + importlib.util.source_hash(source) + marshal.dumps(code)


def pyc_magic(data: bytes) -> int:
    return int.from_bytes(data[:2], "little")


class CompileFailure(Exception):
    """Raised by `compile_jobs` with the child's message."""


def compile_jobs(jobs: Sequence[Job], optimize: int = 0, python: str | None = None) -> None:
    """Compile *jobs* in a fresh seeded child interpreter; raise CompileFailure on error."""
    payload = json.dumps(
        {"optimize": optimize, "jobs": [[str(j.source), j.dfile, str(j.output)] for j in jobs]}
    )
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    result = subprocess.run(
        [python or sys.executable, "-P", "-s", "-S", "-B", __file__],
        input=payload,
        text=True,
        capture_output=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise CompileFailure(
            result.stderr.strip().splitlines()[-1]
            if result.stderr.strip()
            else f"bytecode compiler exited with {result.returncode}"
        )


def _child() -> int:
    request = json.load(sys.stdin)
    for source, dfile, output in request["jobs"]:
        with open(source, "rb") as handle:
            text = handle.read()
        try:
            data = pyc_bytes(text, dfile, request["optimize"])
        except SyntaxError as exc:
            print(f"{dfile}: syntax error at line {exc.lineno}: {exc.msg}", file=sys.stderr)
            return 1
        os.makedirs(os.path.dirname(output), exist_ok=True)
        with open(output, "wb") as handle:
            handle.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
