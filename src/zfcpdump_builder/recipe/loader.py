"""Load, layer (`extends:`) and strictly validate YAML recipes.

Errors name the file, the line, the key path and what was expected, and suggest the
closest valid key. Layering merges mappings key by key; lists are appended (parent first),
so a child recipe adds fragments or overlays rather than restating the parent's.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import paths
from ..core.errors import RecipeError
from ..core.ownership import safe_name
from ..core.store import canonical_json
from ..stages.source import SOURCE_KINDS
from .resolved import BASE_FROM_SOURCE, BuildPlan, resolve
from .schema import SCHEMA, Key, Section
from .values import validate
from .yamlfile import RECIPE_SUFFIXES, read_yaml, shorten


@dataclass
class Recipe:
    """A fully resolved recipe: defaults filled in, parents merged, values checked."""

    name: str
    path: Path
    chain: list[Path]
    data: dict[str, Any]
    plan: BuildPlan
    raw_sha256: str = ""
    origins: dict[tuple[str, ...], Path] = field(default_factory=dict)

    @property
    def resolved(self) -> dict[str, Any]:
        """The resolved recipe (parents merged, defaults filled in), with paths inside the
        project written as $PROJECT/..., so it names no checkout: what `plan` prints and
        manifest.json records as its plan."""
        resolved: dict[str, Any] = _portable(self.data)
        return resolved

    @property
    def resolved_sha256(self) -> str:
        """Hash of the resolved recipe, with the checkout's location factored out."""
        return hashlib.sha256(canonical_json(self.resolved).encode()).hexdigest()

    def base_dir(self) -> Path:
        return self.path.parent


def _portable(value: Any) -> Any:
    """*value* with paths inside the project written relative to it (as $PROJECT/...)."""
    root = str(paths.project_root()) + "/"
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and value.startswith(root):
        return "$PROJECT/" + value[len(root) :]
    return value


def find_recipe(name: str | Path, relative_to: Path | None = None) -> Path:
    """Resolve a recipe argument: a path, or a name in the project's recipes/ directory."""
    candidates = []
    raw = Path(name)
    if relative_to is not None and not raw.is_absolute():
        candidates.append(relative_to / raw)
    candidates.append(raw)
    stem = raw.name if raw.suffix in (".yaml", ".yml") else f"{raw.name}.yaml"
    candidates.append(paths.data_dir("recipes") / stem)
    for candidate in candidates:
        if candidate.is_file():
            if candidate.suffix not in RECIPE_SUFFIXES:
                raise RecipeError(
                    f"{candidate} is not a recipe: recipes are .yaml or .yml files "
                    f"(this is a {candidate.stat().st_size}-byte file named "
                    f"{candidate.suffix or 'without a suffix'})",
                    hint="name a recipe in recipes/ or a path to a .yaml file",
                )
            return candidate.resolve()
    available = sorted(p.stem for p in paths.data_dir("recipes").glob("*.yaml"))
    raise RecipeError(
        f"recipe {name} not found (looked in: {', '.join(str(c) for c in candidates)})",
        hint=f"available recipes: {', '.join(available)}",
    )


# One-of mappings: a child's mapping replaces the parent's instead of merging into it.
REPLACED_WHOLE = {("kernel", "source")}


def merge(parent: dict[str, Any], child: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Any]:
    """Layer *child* over *parent*: mappings merge, lists append, scalars replace."""
    merged = copy.deepcopy(parent)
    for key, value in child.items():
        old = merged.get(key)
        if (*prefix, key) in REPLACED_WHOLE:
            merged[key] = copy.deepcopy(value)
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = merge(old, value, (*prefix, key))
        elif isinstance(old, list) and isinstance(value, list):
            merged[key] = old + [v for v in value if v not in old]
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _defaults(schema: Section) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, item in schema.items():
        out[name] = copy.deepcopy(item.default) if isinstance(item, Key) else _defaults(item)
    return out


def _load_chain(path: Path, seen: list[Path]) -> tuple[dict[str, Any], list[Path], str]:
    if path in seen:
        cycle = " -> ".join(str(p) for p in [*seen, path])
        raise RecipeError(f"extends cycle: {cycle}")
    data, lines, digest = read_yaml(path)
    validate(data, path, lines)
    _absolutise_paths(data, path.parent)
    parent_name = data.pop("extends", None)
    if parent_name is None:
        return data, [*seen, path], digest
    parent_path = find_recipe(parent_name, relative_to=path.parent)
    _check_search_path(parent_path, path, str(parent_name))
    parent, chain, parent_digest = _load_chain(parent_path, [*seen, path])
    combined = hashlib.sha256(f"{parent_digest}{digest}".encode()).hexdigest()
    return merge(parent, data), chain, combined


def _check_search_path(parent: Path, child: Path, name: str) -> None:
    """A parent recipe is beside (or below) its child, or one of the project's recipes/."""
    allowed = (child.parent.resolve(), paths.data_dir("recipes").resolve())
    if not any(parent.is_relative_to(top) for top in allowed):
        raise RecipeError(
            f"{child}: extends {shorten(name)} resolves to {parent}, outside the recipe search path "
            f"({allowed[0]} and {allowed[1]})",
            hint="put the parent beside the recipe, or name one in recipes/",
        )


def _absolutise_paths(data: dict[str, Any], base: Path) -> None:
    """Make recipe-relative paths absolute, so a child recipe elsewhere keeps its parent's meaning."""
    source = data.get("kernel", {}).get("source", {})
    for key in (k.name for k in SOURCE_KINDS.values() if k.local_path):
        value = source.get(key)
        if isinstance(value, str) and "://" not in value:
            source[key] = str((base / value).resolve()) if not Path(value).is_absolute() else value
    signing = data.get("signing", {})
    for key in ("key", "cert"):
        if isinstance(signing.get(key), str):
            signing[key] = str((base / signing[key]).resolve())
    runtime = data.get("runtime", {})
    if isinstance(runtime.get("path"), str):
        runtime["path"] = str((base / runtime["path"]).resolve())
    config = data.get("kernel", {}).get("config", {})
    for key in ("base",):
        if isinstance(config.get(key), str) and config[key] != BASE_FROM_SOURCE:
            config[key] = str(paths.find_config(config[key], base))
    if isinstance(config.get("fragments"), list):
        config["fragments"] = [str(paths.find_config(f, base)) for f in config["fragments"]]
    initramfs = data.get("initramfs", {})
    if isinstance(initramfs.get("overlay"), list):
        initramfs["overlay"] = [str(paths.find_overlay(o, base)) for o in initramfs["overlay"]]


def load(name: str | Path) -> Recipe:
    """Load a recipe by path or name, resolve its `extends:` chain, fill in defaults."""
    path = find_recipe(name)
    data, chain, digest = _load_chain(path, [])
    defaults = _defaults(SCHEMA)
    defaults.pop("extends")
    defaults["kernel"]["config"]["base"] = str(
        paths.find_config(defaults["kernel"]["config"]["base"], path.parent)
    )
    resolved = _fill(defaults, data)
    _check_cross_field(resolved, path)
    name = safe_name(path.stem, f"recipe file {path.name}: the name")
    return Recipe(name=name, path=path, chain=chain, data=resolved, plan=resolve(resolved), raw_sha256=digest)


def _fill(defaults: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(defaults)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key != "set":
            out[key] = _fill(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_cross_field(data: dict[str, Any], path: Path) -> None:
    source = data["kernel"]["source"]
    kinds = [k for k in SOURCE_KINDS if source.get(k)]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise RecipeError(
            f"{path}: kernel.source needs exactly one of {', '.join(SOURCE_KINDS)} (found: {found})"
        )
    for needed in SOURCE_KINDS[kinds[0]].required:
        if not source.get(needed):
            raise RecipeError(
                f"{path}: kernel.source.{kinds[0]} needs kernel.source.{needed}",
                hint="run `sha256sum` on the tarball and add `sha256: <hex>`" if needed == "sha256" else None,
            )
    runtime = data["runtime"]
    if runtime["kind"] in ("debs", "sysroot") and not runtime.get("path"):
        raise RecipeError(f"{path}: runtime.kind {runtime['kind']} needs runtime.path")
    signing = data["signing"]
    if bool(signing["key"]) != bool(signing["cert"]):
        given, missing = ("key", "cert") if signing["key"] else ("cert", "key")
        raise RecipeError(f"{path}: signing.{given} needs signing.{missing}", hint="name both, or neither")
