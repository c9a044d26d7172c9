"""Named recipe mixes: what ``--validation synthetic`` pairs the held-out normals with.

A mix gives held-out image j the recipe ``recipes[j % len(recipes)]``. Its version is its
name: records keep it (``info["validation"]["recipe"]``), a cell's id names it (for every
version after v1), and cached splits are remade when it changes.

- ``v1``: the first split's four defects (bench/data/defects/classic.py) with their own seeds
  and central placement, exactly as it always made them.
- ``v2``: thin cracks, CutPaste, faint pits and low-frequency unevenness in turn,
  placed anywhere the data's defects can be. Chosen by ``benchmarks/recipe_mix.py`` from
  PatchCore agreement studies on MTD (12 points) and ELPV (10 points), each scoring the same
  pool of 13 single recipes; the criterion (in that script) was fixed before any study was
  looked at. Test labels of MTD and ELPV were read to choose it, one level above any method's
  values; the evidence is ``bench.origins.VALIDATION_MIX_ORIGIN``.
- ``v3`` (the default): v2 with the texture recipe ``grain`` in place of the cracks (CutPaste,
  grain, faint pits, low-frequency unevenness in turn). Chosen by the same script and criterion
  over three agreement studies scoring one pool of 7 single recipes: PatchCore on MTD (12
  points) and ELPV (10), and DifferNet on MTD (10 points, seeds 0 and 1), so that the mix ranks
  DifferNet's values too (v2 did not: tau-b 0.29). Test labels of MTD and ELPV were read to
  choose it; the evidence is ``bench.origins.VALIDATION_MIX_ORIGIN``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mix:
    name: str
    recipes: tuple[str, ...]  # recipe specs (bench.data.defects.parse_recipe)
    legacy: bool = False  # v1: its own seeds, no placement region
    # Datasets whose test labels were read to choose the mix (recipe_mix.py): the report says so
    # beside every value chosen on it.
    chosen_with_test_labels_of: tuple[str, ...] = ()


MIXES: dict[str, Mix] = {
    "v1": Mix("v1", ("patch", "scratch", "blob", "dent"), legacy=True),
    # The order is recipe_mix.py's (sorted names): held-out image j gets recipe j mod 4, as the
    # studies it was chosen on assembled it.
    "v2": Mix("v2", ("crack", "cutpaste", "pit/contrast=10:35", "uneven/contrast=20:60"),
              chosen_with_test_labels_of=("MTD", "ELPV")),
    "v3": Mix("v3", ("cutpaste", "grain", "pit/contrast=10:35", "uneven/contrast=20:60"),
              chosen_with_test_labels_of=("MTD", "ELPV")),
}
DEFAULT_MIX = "v3"


def get_mix(name: str) -> Mix | None:
    return MIXES.get(name)
