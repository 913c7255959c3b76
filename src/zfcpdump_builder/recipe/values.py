"""Recipe values: each key kind's checker (str, int, size, symbols …), sizes, kconfig spellings,
and the schema walk that names file, line and key path on the first problem."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from ..core.errors import RecipeError
from .schema import SCHEMA, Key, Section
from .yamlfile import Positions, shorten

SYMBOL_RE = re.compile(r"^[A-Z0-9_]+$")


SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|K|M|G|KB|MB|GB)?\s*$")


SIZE_UNITS = {
    None: 1,
    "B": 1,
    "K": 1024,
    "KiB": 1024,
    "M": 1 << 20,
    "MiB": 1 << 20,
    "G": 1 << 30,
    "GiB": 1 << 30,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


KEY_LIKE = re.compile(r"[A-Za-z0-9_-]{1,40}")


def _where(path: Path, lines: Positions, key: tuple[str, ...]) -> str:
    line = lines.get(key)
    return f"{path}:{line}" if line else str(path)


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(options)}"


def validate(
    data: dict[str, Any], path: Path, lines: Positions, schema: Section = SCHEMA, prefix: tuple[str, ...] = ()
) -> None:
    """Check *data* against *schema*; raise RecipeError on the first problem."""
    for name, value in data.items():
        key = (*prefix, str(name))
        dotted = ".".join(key)
        spec = schema.get(str(name))
        if spec is None:
            if not KEY_LIKE.fullmatch(str(name)):  # not a key at all: describe, never quote it
                raise RecipeError(
                    f"{_where(path, lines, key)}: a {len(str(name))}-character key that is "
                    f"not a recipe key; valid keys here: {', '.join(schema)}"
                )
            raise RecipeError(
                f"{_where(path, lines, key)}: unknown key {shorten(dotted)}"
                + _suggest(str(name), list(schema))
            )
        if isinstance(spec, Key):
            _check_value(value, spec, f"{_where(path, lines, key)}: {dotted}")
        elif not isinstance(value, dict):
            raise RecipeError(
                f"{_where(path, lines, key)}: '{dotted}' must be a mapping "
                f"with keys {', '.join(spec)}, got {_type_name(value)}"
            )
        else:
            validate(value, path, lines, spec, key)


def _type_name(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {shorten(value)}"


def _check_value(value: Any, spec: Key, where: str) -> None:
    if value is None and spec.default is None:
        return  # null clears an optional key inherited from a parent
    if spec.kind == "str" and spec.choices and isinstance(value, list):
        raise RecipeError(
            f"{where}: expected one of {', '.join(map(str, spec.choices))}, got a list of "
            f"{len(value)}: a recipe takes exactly one",
            hint="write one recipe per choice; each can `extends:` a common one",
        )
    checker = _CHECKERS[spec.kind]
    problem = checker(value)
    if problem:
        raise RecipeError(f"{where}: expected {problem}, got {_type_name(value)}")
    if spec.choices and value not in spec.choices:
        raise RecipeError(
            f"{where}: expected one of {', '.join(map(str, spec.choices))}, "
            f"got {shorten(value)}" + _suggest(str(value), [str(c) for c in spec.choices])
        )
    if spec.check is not None:
        problem = spec.check(value)
        if problem:
            raise RecipeError(f"{where}: {problem}")


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
            hint = (
                f" (write {symbol[7:]!r} without the CONFIG_ prefix)"
                if str(symbol).startswith("CONFIG_")
                else ""
            )
            return f"kconfig symbol names in capitals, digits and _{hint}; bad name {symbol!r}"
        if normalise_symbol_value(value) is None:
            return f"y, n, m, a number or a quoted string for {symbol}"
    return None


_CHECKERS = {
    "str": _is_str,
    "path": _is_str,
    "int": _is_int,
    "bool": _is_bool,
    "auto-bool": _is_auto_bool,
    "auto-int": _is_auto_int,
    "list[str]": _is_list_str,
    "sha256": _is_sha256,
    "size": _is_size,
    "symbols": _is_symbols,
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
