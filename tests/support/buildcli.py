"""Run the CLI as users and CI do, and read its JSON events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def shared_cache_dir() -> Path:
    """Stage cache shared by the tests (and, by default, with the user's own builds)."""
    configured = os.environ.get("ZFCPDUMP_TEST_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zfcpdump-build"


def private_cache(tmp_path: Path) -> Path:
    """An empty stage cache that shares only the downloaded packages (hard links)."""
    from zfcpdump_builder.core import ownership

    cache = tmp_path / "cache"
    ownership.tag_cache_dir(cache)  # a seeded cache is still ours
    for folder in ("debs", "apt-s390x", "apt-amd64", "sources"):
        if (shared_cache_dir() / folder).is_dir():
            subprocess.run(["cp", "-al", str(shared_cache_dir() / folder), str(cache / folder)], check=True)
    return cache


@dataclass
class CliRun:
    code: int
    events: list[dict]
    stderr: str

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def error(self) -> dict:
        errors = self.of("error")
        assert errors, f"no error event; stderr:\n{self.stderr}"
        return errors[0]


def run_cli(
    *args: str, cache: Path | None = None, env: dict[str, str] | None = None, timeout: float = 1800
) -> CliRun:
    """Run `build.py ARGS --json` in a subprocess, as CI would, and parse its events.

    `--cache-dir` is added (*cache*, else the shared one) unless ARGS name it already, or
    the verb is `dumpdisk`, which reads and writes no cache."""
    needs_cache = "--cache-dir" not in args and args[:1] != ("dumpdisk",)
    own_cache = ["--cache-dir", str(cache or shared_cache_dir())] if needs_cache else []
    command = [sys.executable, str(ROOT / "build.py"), *args, "--json", *own_cache]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return CliRun(result.returncode, events, result.stderr)


@dataclass
class BuiltRecipe:
    out: Path
    run: CliRun
