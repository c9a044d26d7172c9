"""Synthetic defect recipes: plugins of one interface (``base.Recipe``), found by name as
methods are.

The built-in recipes (one module each, registered on import):

- ``classic``: the first validation split's four (``patch``, ``scratch``, ``blob``, ``dent``);
- ``cutpaste``: ``cutpaste`` and ``cutpaste_scar`` (Li et al., CVPR 2021);
- ``nsa``: a patch of another normal image, Poisson-blended (Schlüter et al., ECCV 2022);
- ``perlin``: Perlin-noise regions filled with texture of another normal image at a drawn
  opacity (Zavrtanik et al., DRAEM, ICCV 2021);
- ``faint``: small faint defects like real ones: ``crack``, ``pit``, ``uneven``;
- ``texture``: the fine texture of a region changed, its shading kept: ``worn``, ``grain``.

A recipe is named on the command line (``--recipes``) by its name, with parameters after
slashes (``perlin/opacity=0.1:0.4``); a plugin by ``module.path:Class`` or through the entry
point group ``differnet_bench.recipes``. ``mixes`` names the mixes a validation split uses.

>>> sorted(RECIPES)[:4]
['blob', 'crack', 'cutpaste', 'cutpaste_scar']
>>> parse_recipe("perlin/opacity=0.1:0.4").spec()
'perlin/opacity=0.1:0.4'
"""

from __future__ import annotations

import dataclasses
import typing

from bench.data.defects import (  # noqa: F401 (registers)
    classic,
    cutpaste,
    faint,
    nsa,
    perlin,
    texture,
)
from bench.data.defects.base import Canvas, Recipe, RecipeParams
from bench.data.defects.registry import RECIPES, recipe_class, register_recipe
from bench.errors import BenchError


def parse_recipe(spec: str) -> Recipe:
    """``name[/param=value...]`` -> a recipe; a range is ``low:high``."""
    name, *items = spec.strip().split("/")
    cls = recipe_class(name)
    types_ = typing.get_type_hints(cls.Params)
    values = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise BenchError(f"recipe {spec!r}: expected param=value after '/', got {item!r}; for "
                             "example perlin/opacity=0.1:0.4.")
        try:
            parts = [float(v) for v in raw.split(":")]
        except ValueError:
            raise BenchError(f"recipe {spec!r}: {key} takes numbers (low:high), got {raw!r}.") from None
        hint = types_.get(key.strip())
        values[key.strip()] = tuple(parts) if typing.get_origin(hint) is tuple else parts[0]
        if typing.get_origin(hint) is tuple and len(parts) != 2:
            raise BenchError(f"recipe {spec!r}: {key} is a range, written low:high.")
    return cls(**values)


def recipe_params(name: str) -> dict[str, typing.Any]:
    """A recipe's parameters and their defaults (for ``list``)."""
    return {f.name: f.default for f in dataclasses.fields(recipe_class(name).Params)}

__all__ = ["Canvas", "RECIPES", "Recipe", "RecipeParams", "parse_recipe", "recipe_class",
           "recipe_params", "register_recipe"]
