"""Named recipe mixes: what ``--validation synthetic`` pairs the held-out normals with.

A mix gives held-out image j the recipe ``recipes[j % len(recipes)]``. Its version is its
name: records keep it (``info["validation"]["recipe"]``), a cell's id names it (for every
version after v1), and cached splits are remade when it changes.

- ``v1``: the first split's four defects (bench/data/defects/classic.py) with their own seeds
  and central placement, exactly as it always made them.

The default is still v1: a new default (v2) is to be chosen by ``benchmarks/recipe_mix.py`` from
agreement studies on MTD and ELPV (tuned on one, judged on the other) and its evidence written
to ``MIX_EVIDENCE`` below and bench/origins.py; until those studies exist no mix is frozen
(the single recipes and any mix of them can be asked for by name: ``--recipes``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mix:
    name: str
    recipes: tuple[str, ...]  # recipe specs (bench.data.defects.parse_recipe)
    legacy: bool = False  # v1: its own seeds, no placement region


MIXES: dict[str, Mix] = {
    "v1": Mix("v1", ("patch", "scratch", "blob", "dent"), legacy=True),
}
DEFAULT_MIX = "v1"

# How the default mix was chosen (also in bench/origins.py).
MIX_EVIDENCE = ""


def get_mix(name: str) -> Mix | None:
    return MIXES.get(name)
