"""Where an unexpected exception's traceback goes: a log file, not the terminal."""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

from .ownership import is_our_cache
from .store import default_cache_dir


def write(exc: BaseException, cache_dir: Path | None) -> str | None:
    """Write *exc*'s traceback to <cache>/logs/internal-error-*.log (else the temp dir)."""
    text = "".join(traceback.format_exception(exc))
    name = f"internal-error-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    cache = cache_dir or default_cache_dir()
    folders = [cache / "logs"] if is_our_cache(cache) else []  # never write where it is not ours
    for folder in [*folders, Path(tempfile.gettempdir())]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(text)
            return str(path)
        except OSError:
            continue
    return None
