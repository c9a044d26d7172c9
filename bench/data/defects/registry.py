"""The recipe registry: name -> class, and the lookup of plugins (a leaf: recipes import it)."""

from __future__ import annotations

from bench.data.defects.base import Recipe
from bench.errors import BenchError
from bench.plugins import entry_points, load_object

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
    source = name if ":" in name else getattr(entry_points(ENTRY_POINT_GROUP).get(name),
                                                "value", None)
    if source is None:
        raise BenchError(f"unknown defect recipe {name!r}; choose from {', '.join(sorted(RECIPES))}"
                         ", a mix (`bench.py list` names them), or name a plugin as module.path:Class.")
    cls = load_object(f"recipe {name!r}", source)
    if not (isinstance(cls, type) and issubclass(cls, Recipe)):
        raise BenchError(f"recipe {name!r}: {source} is not a bench.data.defects.base.Recipe.")
    return cls
