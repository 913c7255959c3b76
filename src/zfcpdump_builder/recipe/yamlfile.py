"""One recipe file: read as bounded UTF-8 text, parsed as alias-free YAML with no duplicate keys,
with the line of every key kept for error messages."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import RecipeError

Positions = dict[tuple[str, ...], int]


MAX_RECIPE_BYTES = 256 << 10


RECIPE_SUFFIXES = (".yaml", ".yml")


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and aliases.

    Aliases are refused outright: a few hundred bytes of nested aliases (a "billion laughs")
    expand to a tree that takes forever to walk. Recipes share settings with `extends:`.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                "YAML aliases (*name) are not allowed in recipes; use extends: to share settings",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a key must be a plain word, not a YAML {type(key).__name__}",
                key_node.start_mark,
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {shorten(key)}", key_node.start_mark
            )
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def shorten(value: Any, limit: int = 60) -> str:
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
        with open(path, "rb") as handle:
            raw = handle.read(MAX_RECIPE_BYTES + 1)  # bounded, whatever stat says (a pipe, /proc)
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except OSError as exc:
        raise RecipeError(f"cannot read recipe {path}: {exc.strerror}") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise RecipeError(f"{path}: too large for a recipe (at most {MAX_RECIPE_BYTES >> 10} KiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeError(
            f"{path}: not UTF-8 text (invalid byte at offset {exc.start}); a recipe is a UTF-8 YAML file"
        ) from None
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
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply to be a recipe") from None
    finally:
        loader.dispose()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping of keys; this file ({len(text)} "
            f"characters) holds a YAML {type(data).__name__} at the top level"
        )
    lines: Positions = {}
    if node is not None:
        _key_lines(node, (), lines)
    return data, lines, hashlib.sha256(text.encode()).hexdigest()


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
