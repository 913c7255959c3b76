"""manifest.json: what went into a build and what came out, reproducibly.

Keys are sorted and nothing time-dependent is recorded except SOURCE_DATE_EPOCH, so two
builds of the same inputs give byte-identical manifests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core.store import StageOutput, file_sha256

MANIFEST_VERSION = 1


def _recipe_section(result: Any) -> dict[str, Any]:
    recipe = result.recipe
    return {
        "name": recipe.name,
        "layers": [p.name for p in recipe.chain],
        "sha256": recipe.raw_sha256,
        "resolved_sha256": recipe.resolved_sha256,
    }


def _kernel_section(result: Any) -> dict[str, Any]:
    kernel_meta = result.stages["kernel"].meta()["outputs"]
    identity = dict(result.source.identity)
    return {
        "source": identity,
        "version": result.source.version,
        "release": kernel_meta["kernel_release"],
        "config_sha256": file_sha256(result.stages["kconfig"].path / "config"),
        "defconfig_sha256": file_sha256(result.stages["kconfig"].path / "zfcpdump_defconfig"),
        "toolchain": result.toolchain.identity() | {"ccache": result.toolchain.ccache},
    }


def _stage_keys(stages: dict[str, StageOutput]) -> dict[str, str]:
    return {name: output.key for name, output in sorted(stages.items())}


def output_record(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "size": path.stat().st_size}


def _outputs(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {name: output_record(path) for name, path in sorted(files.items())}


def build_manifest(
    result: Any, files: dict[str, Path], epoch: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The manifest of *result*; *files* are the published artifacts (manifest excluded)."""
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "source_date_epoch": epoch,
        "recipe": _recipe_section(result),
        "plan": result.recipe.resolved,
        "kernel": _kernel_section(result),
        "stages": _stage_keys(result.stages),
        "outputs": _outputs(files),
    }
    manifest.update(extra or {})
    return manifest


def write(manifest: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
