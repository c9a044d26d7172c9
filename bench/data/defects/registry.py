"""The recipe registry: name -> class, and the lookup of plugins (a leaf: recipes import it)."""

from __future__ import annotations

import functools
import importlib
from importlib import metadata

from bench.data.defects.base import Recipe
from bench.errors import BenchError

RECIPES: dict[str, type[Recipe]] = {}
ENTRY_POINT_GROUP = "differnet_bench.recipes"


def register_recipe(cls: type[Recipe]) -> type[Recipe]:
    """Class decorator: make a recipe known by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    RECIPES[cls.name] = cls
    return cls


def recipe_class(name: str) -> type[Recipe]:
    """A recipe class by name, ``module.path:Class``, or entry point."""
    if name in RECIPES:
        return RECIPES[name]
    source = name if ":" in name else getattr(_entry_points().get(name), "value", None)
    if source is None:
        raise BenchError(f"unknown defect recipe {name!r}; choose from {', '.join(sorted(RECIPES))}"
                         ", a mix (`bench.py list` names them), or name a plugin as module.path:Class.")
    module, _, attr = source.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise BenchError(f"recipe {name!r}: cannot load {source} ({type(err).__name__}: {err}); "
                         "install the package that provides it or put it on PYTHONPATH.") from None
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise BenchError(f"recipe {name!r}: {source} is not a bench.data.defects.base.Recipe.")
    return cls


@functools.cache
def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {e.name: e for e in metadata.entry_points(group=ENTRY_POINT_GROUP)}
