"""Plugins by entry point or ``module.path:Class``: what methods and defect recipes share."""

from __future__ import annotations

import functools
import importlib
from importlib import metadata
from typing import Any

from bench.errors import BenchError


@functools.cache
def entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    """The installed entry points of ``group`` by name (none is imported)."""
    return {e.name: e for e in metadata.entry_points(group=group)}


def load_object(what: str, source: str) -> Any:
    """Import ``source`` (``module.path:Name``) and return the name; a failure is one line
    naming ``what`` asked for it."""
    module, _, attr = source.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise BenchError(f"{what}: cannot load {source} ({type(err).__name__}: {err}); install "
                         "the package that provides it or put it on PYTHONPATH.") from None
