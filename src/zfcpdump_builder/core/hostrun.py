"""Long host commands (make, configure) with their output in a log and its tail on failure."""

from __future__ import annotations

import os
import re
import subprocess
from collections import deque
from pathlib import Path

from .errors import CompileError
from .events import ProgressHandle

LOG_TAIL_LINES = 25
PROGRESS_LINE = re.compile(r"^\s+(CC|AS|LD|AR|OBJCOPY|CPP|HOSTCC|GEN|UPD|SYNC)\b|^\S*gcc\s.*\s-c\s")


def run_logged(
    command: list[str],
    log: Path,
    env: dict[str, str],
    stage: str,
    progress: ProgressHandle | None = None,
    cwd: Path | None = None,
) -> None:
    """Run *command*, teeing output into *log*; on failure raise with the log's tail. Each
    line that looks like a build step (CC, LD, ...) advances *progress*."""
    log.parent.mkdir(parents=True, exist_ok=True)
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    full_env = {**os.environ, **env}
    with open(log, "w") as out:
        out.write("$ " + " ".join(command) + "\n")
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=full_env,
            cwd=cwd,
        )
        assert process.stdout is not None
        try:
            for line in process.stdout:
                out.write(line)
                tail.append(line.rstrip())
                if progress is not None and PROGRESS_LINE.match(line):
                    progress.advance()
        except BaseException:
            process.terminate()
            process.wait()
            raise
        code = process.wait()
    if code != 0:
        raise CompileError(
            f"{stage} failed ({os.path.basename(command[0])} exited {code}). Last lines:\n"
            + "\n".join(f"  {t}" for t in tail),
            log=str(log),
        )
