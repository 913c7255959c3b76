"""The harness's shared parts: options, figures (median, min, max, target, met), and a
private cache that reuses the warm one."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import reproducibility

MIB = 1 << 20


@dataclass
class Options:
    smoke: bool
    runs: int
    work: Path
    cache: Path
    qemu_out: Path | None
    writer_bytes: int


class NotMeasured(Exception):
    """A section cannot run here; the message is the reason shown in the report."""


# --- figures ------------------------------------------------------------------------------


def target(op: str, value: float, text: str) -> dict[str, Any]:
    return {"op": op, "value": value, "text": text}


def _met(value: float, goal: dict[str, Any] | None) -> bool | None:
    if goal is None:
        return None
    return value <= goal["value"] if goal["op"] == "<=" else value >= goal["value"]


def figure(
    fid: str,
    label: str,
    unit: str,
    values: list[float] | float | str | bool,
    goal: dict[str, Any] | None = None,
    smoke: bool = False,
    note: str = "",
    pairs: dict[str, list[float]] | None = None,
) -> dict[str, Any]:
    """One row of the table. *values*: the runs (median/min/max), or a single value or verdict.

    In smoke mode a numeric target is shown but not judged (tiny sizes, one run)."""
    fig: dict[str, Any] = {"id": fid, "label": label, "unit": unit, "target": goal, "note": note}
    if isinstance(values, list):
        fig.update(
            median=statistics.median(values),
            min=min(values),
            max=max(values),
            n=len(values),
            runs=list(values),
        )
        judged = fig["median"]
    else:
        fig.update(value=values, n=1)
        judged = values
    if pairs:
        fig["pairs"] = pairs
    if goal is None:
        fig["met"] = None
    elif isinstance(judged, bool | str):
        fig["met"] = judged == goal["value"]
    else:
        fig["met"] = None if smoke else _met(float(judged), goal)
    return fig


def not_measured(fid: str, label: str, reason: str, goal: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": fid,
        "label": label,
        "unit": "",
        "target": goal,
        "met": None,
        "not_measured": reason,
        "n": 0,
    }


# --- shared: a private cache that reuses the warm one -------------------------------------


def warm_stage_keys(cache: Path, work: Path) -> dict[str, str]:
    """Build the default recipe in the warm cache (cached: seconds); return its stage keys."""
    work.mkdir(parents=True, exist_ok=True)
    return reproducibility.warm_keys(cache, work)


def linked_cache(warm: Path, private: Path, keys: dict[str, str]) -> Path:
    """*private* with warm's debs/downloads and the default recipe's objects linked in."""
    reproducibility.seed_cache(warm, private, tuple(f"{s}-{k[:32]}" for s, k in keys.items()))
    return private
