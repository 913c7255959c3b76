"""Shared measuring helpers: medians with min/max, A/B pairs run alternately, machine info."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Series:
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: list[float]) -> Series:
        return cls(tuple(values))

    def as_dict(self) -> dict[str, object]:
        return {
            "median": statistics.median(self.values),
            "min": min(self.values),
            "max": max(self.values),
            "runs": list(self.values),
        }


@dataclass(frozen=True)
class Pairs:
    a: Series
    b: Series
    ratios: tuple[float, ...]

    def as_dict(self) -> dict[str, object]:
        return {"a": self.a.as_dict(), "b": self.b.as_dict(), "ratio_a_over_b": Series(self.ratios).as_dict()}


def paired(measure: Callable[[], tuple[float, float]], runs: int) -> Pairs:
    """Run *measure* (which times A then B) *runs* times: A B A B …, a ratio per pair."""
    results = [measure() for _ in range(runs)]
    a = [r[0] for r in results]
    b = [r[1] for r in results]
    return Pairs(Series.of(a), Series.of(b), tuple(x / y for x, y in zip(a, b, strict=True)))


def machine() -> dict[str, object]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "machine": platform.machine(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def python_cmd() -> list[str]:
    return [sys.executable]
