"""Load, layer (`extends:`) and strictly validate YAML recipes.

Errors name the file, the line, the key path and what was expected, and suggest the
closest valid key. Layering merges mappings key by key; lists are appended (parent first),
so a child recipe adds fragments or overlays rather than restating the parent's.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..core import paths
from ..core.errors import RecipeError
from ..core.ownership import safe_name
from ..core.store import canonical_json
from .schema import SCHEMA, Key, Section

SYMBOL_RE = re.compile(r"^[A-Z0-9_]+$")
SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|K|M|G|KB|MB|GB)?\s*$")
SIZE_UNITS = {None: 1, "B": 1, "K": 1024, "KiB": 1024, "M": 1 << 20, "MiB": 1 << 20,
              "G": 1 << 30, "GiB": 1 << 30, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
Positions = dict[tuple[str, ...], int]


@dataclass
class Recipe:
    """A fully resolved recipe: defaults filled in, parents merged, values checked."""

    name: str
    path: Path
    chain: list[Path]
    data: dict[str, Any]
    raw_sha256: str = ""
    origins: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def get(self, dotted: str) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            node = node[part]
        return node

    @property
    def resolved_sha256(self) -> str:
        """Hash of the resolved recipe, with the checkout's location factored out."""
        return hashlib.sha256(canonical_json(_portable(self.data)).encode()).hexdigest()

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
        return "$PROJECT/" + value[len(root):]
    return value


MAX_RECIPE_BYTES = 256 << 10
KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{1,40}")
RECIPE_SUFFIXES = (".yaml", ".yml")


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and aliases.

    Aliases are refused outright: a few hundred bytes of nested aliases (a "billion laughs")
    expand to a tree that takes forever to walk. Recipes share settings with `extends:`.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not allowed in recipes; use extends: "
                "to share settings", event.start_mark)
        return super().compose_node(parent, index)  # type: ignore[no-any-return, misc]


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_short(key)}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _short(value: Any, limit: int = 60) -> str:
    """repr(value), cut to *limit* characters: error messages never echo a whole file."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key_lines(node: yaml.Node, prefix: tuple[str, ...], out: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            out[path] = key_node.start_mark.line + 1
            _key_lines(value_node, path, out)


def _read_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_RECIPE_BYTES:
            raise RecipeError(f"{path}: {path.stat().st_size} bytes is too large for a recipe "
                              f"(at most {MAX_RECIPE_BYTES >> 10} KiB)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); a recipe is "
                          f"a UTF-8 YAML file") from None
    if "\0" in text:
        raise RecipeError(f"{path}: holds NUL bytes ({len(raw)} bytes): not a YAML text file")
    return text


def read_yaml(path: Path) -> tuple[dict[str, Any], Positions, str]:
    """Parse one recipe file: its mapping, the line of every key, and its text's sha256."""
    text = _read_text(path)
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise RecipeError(f"{where}: malformed YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: malformed YAML ({type(exc).__name__})") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a recipe must be a mapping of keys; this file ({len(text)} "
                          f"characters) holds a YAML {type(data).__name__} at the top level")
    lines: Positions = {}
    if node is not None:
        _key_lines(node, (), lines)
    return data, lines, hashlib.sha256(text.encode()).hexdigest()


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
                raise RecipeError(f"{candidate} is not a recipe: recipes are .yaml or .yml files "
                                  f"(this is a {candidate.stat().st_size}-byte file named "
                                  f"{candidate.suffix or 'without a suffix'})",
                                  hint="name a recipe in recipes/ or a path to a .yaml file")
            return candidate.resolve()
    available = sorted(p.stem for p in paths.data_dir("recipes").glob("*.yaml"))
    raise RecipeError(f"recipe {name} not found (looked in: "
                      f"{', '.join(str(c) for c in candidates)})",
                      hint=f"available recipes: {', '.join(available)}")


def _where(path: Path, lines: Positions, key: tuple[str, ...]) -> str:
    line = lines.get(key)
    return f"{path}:{line}" if line else str(path)


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(options)}"


def validate(data: dict[str, Any], path: Path, lines: Positions,
             schema: Section = SCHEMA, prefix: tuple[str, ...] = ()) -> None:
    """Check *data* against *schema*; raise RecipeError on the first problem."""
    for name, value in data.items():
        key = (*prefix, str(name))
        dotted = ".".join(key)
        spec = schema.get(str(name))
        if spec is None:
            if not KEY_LIKE.fullmatch(str(name)):  # not a key at all: describe, never quote it
                raise RecipeError(f"{_where(path, lines, key)}: a {len(str(name))}-character key that is "
                                  f"not a recipe key; valid keys here: {', '.join(schema)}")
            raise RecipeError(f"{_where(path, lines, key)}: unknown key {_short(dotted)}"
                              + _suggest(str(name), list(schema)))
        if isinstance(spec, Key):
            _check_value(value, spec, f"{_where(path, lines, key)}: {dotted}")
        elif not isinstance(value, dict):
            raise RecipeError(f"{_where(path, lines, key)}: '{dotted}' must be a mapping "
                              f"with keys {', '.join(spec)}, got {_type_name(value)}")
        else:
            validate(value, path, lines, spec, key)


def _type_name(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {_short(value)}"


def _check_value(value: Any, spec: Key, where: str) -> None:
    if value is None and spec.default is None:
        return  # null clears an optional key inherited from a parent
    checker = _CHECKERS[spec.kind]
    problem = checker(value)
    if problem:
        raise RecipeError(f"{where}: expected {problem}, got {_type_name(value)}")
    if spec.choices and value not in spec.choices:
        raise RecipeError(f"{where}: expected one of {', '.join(map(str, spec.choices))}, "
                          f"got {_short(value)}" + _suggest(str(value), [str(c) for c in spec.choices]))


def _is_str(v: Any) -> str | None:
    return None if isinstance(v, str) else "a string"


def _is_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) else "an integer"


def _is_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "true or false"


def _is_auto_bool(v: Any) -> str | None:
    return None if isinstance(v, bool) or v == "auto" else "true, false or auto"


def _is_auto_int(v: Any) -> str | None:
    ok = v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and v > 0)
    return None if ok else "a positive integer or auto"


def _is_list_str(v: Any) -> str | None:
    ok = isinstance(v, list) and all(isinstance(i, str) for i in v)
    return None if ok else "a list of strings"


def _is_sha256(v: Any) -> str | None:
    ok = isinstance(v, str) and re.fullmatch(r"[0-9a-fA-F]{64}", v) is not None
    return None if ok else "64 hex digits (a sha256)"


def _is_size(v: Any) -> str | None:
    try:
        parse_size(v)
    except ValueError:
        return "a size such as 32MiB, 2.5MiB or a byte count"
    return None


def _is_symbols(v: Any) -> str | None:
    if not isinstance(v, dict):
        return "a mapping of SYMBOL: value"
    for symbol, value in v.items():
        if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol) or symbol.startswith("CONFIG_"):
            hint = f" (write {symbol[7:]!r} without the CONFIG_ prefix)" if str(symbol).startswith("CONFIG_") else ""
            return f"kconfig symbol names in capitals, digits and _{hint}; bad name {symbol!r}"
        if normalise_symbol_value(value) is None:
            return f"y, n, m, a number or a quoted string for {symbol}"
    return None


_CHECKERS = {
    "str": _is_str, "path": _is_str, "int": _is_int, "bool": _is_bool,
    "auto-bool": _is_auto_bool, "auto-int": _is_auto_int, "list[str]": _is_list_str,
    "sha256": _is_sha256, "size": _is_size, "symbols": _is_symbols,
}


def normalise_symbol_value(value: Any) -> str | None:
    """The .config spelling of a recipe value: y/n/m, a number, or a quoted string."""
    if value is True:
        return "y"
    if value is False:
        return "n"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        if value in ("y", "n", "m"):
            return value
        if re.fullmatch(r"0x[0-9a-fA-F]+", value):
            return value
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return None


def parse_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if not isinstance(value, str):
        raise ValueError(value)
    match = SIZE_RE.match(value)
    if not match:
        raise ValueError(value)
    return int(float(match.group(1)) * SIZE_UNITS[match.group(2)])


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
    parent, chain, parent_digest = _load_chain(parent_path, [*seen, path])
    combined = hashlib.sha256(f"{parent_digest}{digest}".encode()).hexdigest()
    return merge(parent, data), chain, combined


def _absolutise_paths(data: dict[str, Any], base: Path) -> None:
    """Make recipe-relative paths absolute, so a child recipe elsewhere keeps its parent's meaning."""
    source = data.get("kernel", {}).get("source", {})
    for key in ("tree", "tarball"):
        value = source.get(key)
        if isinstance(value, str) and "://" not in value:
            source[key] = str((base / value).resolve()) if not Path(value).is_absolute() else value
    runtime = data.get("runtime", {})
    if isinstance(runtime.get("path"), str):
        runtime["path"] = str((base / runtime["path"]).resolve())
    config = data.get("kernel", {}).get("config", {})
    for key in ("base",):
        if isinstance(config.get(key), str):
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
    defaults["kernel"]["config"]["base"] = str(paths.find_config(defaults["kernel"]["config"]["base"], path.parent))
    resolved = _fill(defaults, data)
    _check_cross_field(resolved, path)
    name = safe_name(path.stem, f"recipe file {path.name}: the name")
    return Recipe(name=name, path=path, chain=chain, data=resolved, raw_sha256=digest)


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
    kinds = [k for k in ("debian", "tarball", "tree") if source.get(k)]
    if len(kinds) != 1:
        found = ", ".join(kinds) or "none"
        raise RecipeError(f"{path}: kernel.source needs exactly one of debian, tarball or tree "
                          f"(found: {found})")
    if source.get("tarball") and not source.get("sha256"):
        raise RecipeError(f"{path}: kernel.source.tarball needs kernel.source.sha256",
                          hint="run `sha256sum` on the tarball and add `sha256: <hex>`")
    runtime = data["runtime"]
    if runtime["kind"] in ("debs", "sysroot") and not runtime.get("path"):
        raise RecipeError(f"{path}: runtime.kind {runtime['kind']} needs runtime.path")
