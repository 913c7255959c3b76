"""Progress and event reporting: rich on a TTY, plain lines otherwise, JSON lines for CI.

JSON-lines schema (one object per line on stdout, keys sorted, `"v": 1` on every event):
  {"event": "stage-start",  "stage": str, "key": str}
  {"event": "stage-finish", "stage": str, "key": str, "cached": bool, "seconds": float}
  {"event": "cache-hit",    "stage": str, "key": str}
  {"event": "progress",     "stage": str, "done": int, "total": int|null, "unit": str}
  {"event": "message",      "level": "info"|"warning", "text": str}
  {"event": "artifact",     "name": str, "path": str, "sha256": str, "size": int}
  {"event": "table",        "title": str, "columns": [str], "rows": [[str|int]]}
  {"event": "error",        "kind": str, "exit_code": int, "message": str,
                            "hint": str|null, "log": str|null}
  {"event": "result",       "status": "ok"|"failed", "exit_code": int}
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

SCHEMA_VERSION = 1
# Every event's required fields and their JSON types (None allowed where listed with it).
EVENT_SCHEMA: dict[str, dict[str, tuple[type, ...]]] = {
    "stage-start": {"stage": (str,), "key": (str,)},
    "stage-finish": {"stage": (str,), "key": (str,), "cached": (bool,), "seconds": (int, float)},
    "cache-hit": {"stage": (str,), "key": (str,)},
    "progress": {"stage": (str,), "done": (int,), "total": (int, type(None)), "unit": (str,)},
    "message": {"level": (str,), "text": (str,)},
    "artifact": {"name": (str,), "path": (str,), "sha256": (str,), "size": (int,)},
    "table": {"title": (str,), "columns": (list,), "rows": (list,)},
    "error": {
        "kind": (str,),
        "exit_code": (int,),
        "message": (str,),
        "hint": (str, type(None)),
        "log": (str, type(None)),
    },
    "result": {"status": (str,), "exit_code": (int,)},
    "dumpdisk": {"path": (str,), "error": (str, type(None))},
}


class Reporter:
    """Human output. Subclasses change the medium, never the calls."""

    def __init__(self, stream: TextIO | None = None, verbose: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.verbose = verbose

    def stage_start(self, stage: str, key: str) -> None:
        self.detail(f"[{stage}] checking")

    def stage_finish(self, stage: str, key: str, cached: bool, seconds: float) -> None:
        if cached:
            self.info(f"[{stage}] cached ({key[:12]})")
        else:
            self.info(f"[{stage}] done in {seconds:.1f}s")

    def info(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def warning(self, text: str) -> None:
        print(f"warning: {text}", file=self.stream, flush=True)

    def detail(self, text: str) -> None:
        if self.verbose:
            self.info(text)

    def artifact(self, name: str, path: str, sha256: str, size: int) -> None:
        self.info(f"{name}: {path} ({size} bytes, sha256 {sha256[:16]}…)")

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.info(title)
        widths = [
            max(len(str(c)), *(len(str(r[i])) for r in rows)) if rows else len(c)
            for i, c in enumerate(columns)
        ]
        self.info("  ".join(str(c).ljust(w) for c, w in zip(columns, widths, strict=False)))
        for row in rows:
            self.info("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=False)))

    def error(
        self, kind: str, exit_code: int, message: str, hint: str | None = None, log: str | None = None
    ) -> None:
        print(f"error: {message}", file=self.stream, flush=True)
        if hint:
            print(f"hint: {hint}", file=self.stream, flush=True)
        if log:
            print(f"full log: {log}", file=self.stream, flush=True)

    def result(self, exit_code: int) -> None:
        pass

    def progress_line(self, handle: ProgressHandle) -> None:
        total = f"/{handle.total}" if handle.total else ""
        self.info(f"[{handle.stage}] {handle.done}{total} {handle.unit}".rstrip())

    @contextmanager
    def progress(
        self, stage: str, description: str, total: int | None, unit: str = ""
    ) -> Iterator[ProgressHandle]:
        handle = ProgressHandle(self, stage, total, unit)
        self.info(f"[{stage}] {description}")
        yield handle


class ProgressHandle:
    """Advance a progress display; throttled so logs stay readable."""

    def __init__(
        self, reporter: Reporter, stage: str, total: int | None, unit: str, update: Any = None
    ) -> None:
        self.reporter = reporter
        self.stage = stage
        self.total = total
        self.unit = unit
        self.done = 0
        self._update = update
        self._last = 0.0

    def advance(self, amount: int = 1) -> None:
        self.set(self.done + amount)

    def set(self, done: int, total: int | None = None) -> None:
        self.done = done
        if total is not None:
            self.total = total
        if self._update is not None:
            self._update(self)
            return
        now = time.monotonic()
        if now - self._last >= 30.0:
            self._last = now
            self.reporter.progress_line(self)


class RichReporter(Reporter):
    """Colourful output with live progress bars for an interactive terminal."""

    def __init__(self, verbose: bool = False) -> None:
        super().__init__(sys.stderr, verbose)
        self.console = Console(stderr=True)

    def info(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def warning(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {text}", highlight=False)

    def stage_finish(self, stage: str, key: str, cached: bool, seconds: float) -> None:
        state = "[dim]cached[/]" if cached else f"[green]done[/] in {seconds:.1f}s"
        self.console.print(f"[bold]{stage}[/] {state}", highlight=False)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, justify="right" if column in ("bytes", "size", "MiB") else "left")
        for row in rows:
            table.add_row(*(str(v) for v in row))
        self.console.print(table)

    def error(
        self, kind: str, exit_code: int, message: str, hint: str | None = None, log: str | None = None
    ) -> None:
        self.console.print(f"[bold red]error:[/] {message}", highlight=False)
        if hint:
            self.console.print(f"[yellow]hint:[/] {hint}", highlight=False)
        if log:
            self.console.print(f"full log: {log}", highlight=False)

    @contextmanager
    def progress(
        self, stage: str, description: str, total: int | None, unit: str = ""
    ) -> Iterator[ProgressHandle]:
        columns = [
            TextColumn(f"[bold]{stage}[/] {description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=self.console, transient=True) as bar:
            task = bar.add_task(description, total=total)

            def update(handle: ProgressHandle) -> None:
                bar.update(task, completed=handle.done, total=handle.total)

            yield ProgressHandle(self, stage, total, unit, update)


class JsonReporter(Reporter):
    """JSON-lines events on stdout (schema in this module's docstring); human text on stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(sys.stderr)
        self.out = stream or sys.stdout

    def emit(self, event: str, **fields: Any) -> None:
        record = {"v": SCHEMA_VERSION, "event": event, **fields}
        self.out.write(json.dumps(record, sort_keys=True) + "\n")
        self.out.flush()

    def stage_start(self, stage: str, key: str) -> None:
        self.emit("stage-start", stage=stage, key=key)

    def stage_finish(self, stage: str, key: str, cached: bool, seconds: float) -> None:
        if cached:
            self.emit("cache-hit", stage=stage, key=key)
        self.emit("stage-finish", stage=stage, key=key, cached=cached, seconds=round(seconds, 3))

    def info(self, text: str) -> None:
        self.emit("message", level="info", text=text)

    def warning(self, text: str) -> None:
        self.emit("message", level="warning", text=text)

    def artifact(self, name: str, path: str, sha256: str, size: int) -> None:
        self.emit("artifact", name=name, path=path, sha256=sha256, size=size)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.emit("table", title=title, columns=list(columns), rows=[list(r) for r in rows])

    def error(
        self, kind: str, exit_code: int, message: str, hint: str | None = None, log: str | None = None
    ) -> None:
        self.emit("error", kind=kind, exit_code=exit_code, message=message, hint=hint, log=log)

    def result(self, exit_code: int) -> None:
        self.emit("result", status="ok" if exit_code == 0 else "failed", exit_code=exit_code)

    def progress_line(self, handle: ProgressHandle) -> None:
        self.emit("progress", stage=handle.stage, done=handle.done, total=handle.total, unit=handle.unit)

    @contextmanager
    def progress(
        self, stage: str, description: str, total: int | None, unit: str = ""
    ) -> Iterator[ProgressHandle]:
        yield ProgressHandle(self, stage, total, unit)


def make_reporter(json_mode: bool, verbose: bool = False) -> Reporter:
    if json_mode:
        return JsonReporter()
    if sys.stderr.isatty():
        return RichReporter(verbose)
    return Reporter(sys.stderr, verbose)
