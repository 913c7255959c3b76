"""The command line: a thin layer over the builder; no domain module imports it."""

from .main import main

__all__ = ["main"]
