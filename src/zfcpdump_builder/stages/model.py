"""What a prepared stage is: the inputs that key it, and the producer that fills its output.

A stage module's `prepare_*` function computes a `Prepared` from its own part of the plan and
its upstream outputs, cheaply and without building anything. `build` then produces it through
the object store; `plan` only hashes the same inputs and asks the store. Both go through the
one stage table in graph.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.store import StageOutput, Store, hash_inputs

Producer = Callable[[Path], dict[str, Any] | None]


@dataclass(frozen=True)
class InnerStage:
    """A stage a producer runs itself, only when it runs (the runtime's sysroot and cpython):
    `plan` lists it."""

    name: str
    inputs: dict[str, Any] | None  # None: not needed, for *reason*, unless *keyed_by* is set
    reason: str = ""
    keyed_by: str = ""  # needed, but its key is computed from this while the producer runs


@dataclass(frozen=True)
class Prepared:
    inputs: dict[str, Any]
    produce: Producer
    in_place: Path | None = None  # used where it is (a local kernel tree): nothing is stored
    check: Callable[[StageOutput], None] | None = None  # on a cached output as on a new one
    inner: tuple[InnerStage, ...] = ()

    @property
    def key(self) -> str:
        return hash_inputs(self.inputs)


def produce(stage: str, prepared: Prepared, store: Store) -> StageOutput:
    """The stage's output: found in the store, or produced and committed, then checked."""
    if prepared.in_place is not None:
        return StageOutput(stage, prepared.key, prepared.in_place, True, 0.0, prepared.inputs, in_place=True)
    output = store.produce(stage, prepared.inputs, prepared.produce)
    if prepared.check is not None:
        prepared.check(output)
    return output
