"""Recipes: the schema of every key, and the loader (YAML, extends, merge, validation)."""

from .loader import Recipe, load
from .values import parse_size

__all__ = ["Recipe", "load", "parse_size"]
