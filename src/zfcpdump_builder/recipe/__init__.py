"""Recipes: the schema of every key, and the loader (YAML, extends, merge, validation)."""

from .loader import Recipe, load, parse_size

__all__ = ["Recipe", "load", "parse_size"]
