"""A validation split made from training normals only, so a run can be judged without the test set.

``--validation synthetic`` holds out a seeded share of a cell's *training* images; each held-out
image is kept as a defect-free validation image and also gives one defective copy, made by the
recipe the default mix (``bench.data.defects.mixes``) assigns to it, with a mask. ``agreement``
also asks for other recipes: each gives its own defective copy of every held-out image, scored
against the same normals.

Recipes (``bench.data.defects``) read only training images: the held-out image and, as donors,
training images that are not held out. Nothing here opens a test file (tests/test_validation.py
checks every file opened). Where a defect may go: the whole image, borders included, unless a
foreground can be told (``placement``). Images are written under the cache
(``<cache>/validation/<split>/<recipe>/``), one file at a time and atomically, and reused.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import Sample
from bench.data.defects import Canvas, Recipe, parse_recipe
from bench.data.defects.mixes import DEFAULT_MIX, MIXES, Mix
from bench.data.placement import Placement, find_placement
from bench.errors import BenchError
from bench.store.atomic import atomic_path

VALIDATION_SHARE = 0.2  # of the training images, held out (at least 2, at most half)
RECIPE = DEFAULT_MIX  # the default mix's version: records and cell ids keep it


@dataclass
class ValidationSplit:
    train: list[Sample]  # what the model trains on
    validation: list[Sample]  # held-out normals (label 0) and the default mix's defects (label 1)
    meta: dict
    # Each further recipe or mix asked for: its defective copies of the held-out images.
    by_recipe: dict[str, list[Sample]] = field(default_factory=dict)

    @property
    def normals(self) -> list[Sample]:
        return [s for s in self.validation if s.label == 0]


def validation_value(mix: str = DEFAULT_MIX) -> str:
    """How cells and records name a synthetic validation split of ``mix``: ``synthetic`` for v1
    (the name it always had, so its records still match), ``synthetic-<mix>`` after.

    >>> validation_value("v1"), validation_value("v2")
    ('synthetic', 'synthetic-v2')
    """
    return "synthetic" if mix == "v1" else f"synthetic-{mix}"


def validation_mix(value: str) -> str:
    """The recipe mix a cell's ``validation`` names (``validation_value``'s inverse); a bare
    ``synthetic`` from a user means the default mix only where ``resolve_validation`` said so.

    >>> validation_mix("synthetic"), validation_mix("synthetic-v2")
    ('v1', 'v2')
    """
    return "v1" if value == "synthetic" else value.removeprefix("synthetic-")


def validation_choices() -> list[str]:
    """What ``--validation`` accepts: ``synthetic`` (the default mix) or one mix by name."""
    return ["synthetic", *(f"synthetic-{m}" for m in MIXES)]


def resolve_validation(value: str | None) -> str | None:
    """A user's ``--validation`` as cells carry it: ``synthetic`` is the default mix."""
    if value is None:
        return None
    if value not in validation_choices():
        raise BenchError(f"unknown validation {value!r}; choose {', '.join(validation_choices())} "
                         "or leave it out.")
    return validation_value(DEFAULT_MIX if value == "synthetic" else value.removeprefix("synthetic-"))


def load_float(path: Path) -> np.ndarray:
    """An image as float32 0-255: (H, W) for grayscale, (H, W, 3) otherwise."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("L", "I;16", "I", "F"):
            return np.asarray(img.convert("L"), dtype=np.float32)
        return np.asarray(img.convert("RGB"), dtype=np.float32)


def held_out(n: int, seed: int, share: float) -> list[int]:
    """Which of ``n`` training images are held out (sorted, seeded)."""
    n_val = int(min(max(2, round(share * n)), n // 2))
    if n_val < 2 or n - n_val < 1:
        raise ValueError(f"{n} training images are too few to hold out a validation split")
    rng = np.random.default_rng([seed, 7001])
    return sorted(rng.choice(n, size=n_val, replace=False).tolist())


def _split_key(train: list[Sample], seed: int, share: float) -> str:
    blob = json.dumps({"files": [str(s.path) for s in train], "seed": seed, "share": share})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _Maker:
    """Makes (or finds) the defective copies of one split's held-out images."""

    def __init__(self, train: list[Sample], held: list[int], seed: int, folder: Path):
        self.train, self.held, self.seed, self.folder = train, held, seed, folder
        held_set = set(held)
        self.kept = [s for i, s in enumerate(train) if i not in held_set]
        self._placement: Placement | None = None

    @property
    def placement(self) -> Placement:
        if self._placement is None:  # from the kept training images only
            self._placement = find_placement([s.path for s in self.kept], load_float)
        return self._placement

    def recipe_dir(self, recipe: Recipe, legacy: bool) -> str:
        identity = {**recipe.identity(), "legacy": legacy,
                    "placement": None if legacy else self.placement.kind}
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:8]
        return f"{recipe.name}-{digest}"

    def sample(self, recipe: Recipe, j: int, legacy: bool = False) -> Sample:
        """Held-out image j's defective copy under ``recipe``, made if not on disk yet."""
        where = self.recipe_dir(recipe, legacy) if not legacy else f"v1-{recipe.name}"
        name = f"{j:04d}_{self.train[self.held[j]].path.stem}.png"
        path, mask = self.folder / where / name, self.folder / where / "masks" / name
        if not path.is_file():
            self._make(recipe, j, legacy, path, mask)
        return Sample(path, 1, recipe.name, mask)

    def _make(self, recipe: Recipe, j: int, legacy: bool, path: Path, mask_path: Path) -> None:
        if legacy:  # v1's seeds, as it always drew them
            rng = np.random.default_rng([self.seed, 7002, j])
        else:
            rng = np.random.default_rng([self.seed, 7003, j, zlib.crc32(recipe.spec().encode())])
        image = load_float(self.train[self.held[j]].path)
        h, w = image.shape[:2]
        region = np.ones((h, w), bool) if legacy else self.placement.region(image)
        canvas = Canvas(image, region, lambda r: load_float(self.kept[r.integers(len(self.kept))].path))
        defective, mask = recipe.make(canvas, rng)
        for target, array in ((mask_path, mask.astype(np.uint8) * 255),
                              (path, np.clip(np.round(defective), 0, 255).astype(np.uint8))):
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target, suffix=".png") as tmp:  # the mask first: an image implies it
                Image.fromarray(array).save(tmp, format="PNG")


def _recipes(mix: Mix) -> list[Recipe]:
    return [parse_recipe(spec) for spec in mix.recipes]


def mix_samples(maker: _Maker, mix: Mix) -> list[Sample]:
    """The mix's defective copy of each held-out image (image j: recipe j mod len)."""
    recipes = _recipes(mix)
    return [maker.sample(recipes[j % len(recipes)], j, mix.legacy) for j in range(len(maker.held))]


def synthetic_validation(train: list[Sample], seed: int, folder: Path,
                         share: float = VALIDATION_SHARE, mix: str = DEFAULT_MIX,
                         recipes: tuple[str, ...] = ()) -> ValidationSplit:
    """Hold out ``share`` of ``train`` (seeded) and pair the held-out images with the defects of
    ``mix`` (a name of ``MIXES``), written under ``folder`` (a cache's ``validation/``); with
    ``recipes`` (recipe specs or mix names), each one's defective copies of every held-out
    image too. Returns the reduced training set and the validation samples."""
    if mix not in MIXES:
        raise BenchError(f"unknown validation recipe mix {mix!r}; choose one of "
                         f"{', '.join(MIXES)}.")
    held = held_out(len(train), seed, share)
    maker = _Maker(train, held, seed, Path(folder) / _split_key(train, seed, share))
    validation = [Sample(train[i].path, 0) for i in held]
    validation += mix_samples(maker, MIXES[mix])
    by_recipe = {}
    for spec in recipes:
        if spec in MIXES:
            by_recipe[spec] = mix_samples(maker, MIXES[spec])
        else:
            recipe = parse_recipe(spec)
            by_recipe[spec] = [maker.sample(recipe, j) for j in range(len(held))]
    meta = {"kind": "synthetic", "share": share, "n_train": len(maker.kept), "n_normal": len(held),
            "n_defective": len(held), "recipe": mix, "defects": list(MIXES[mix].recipes),
            "placement": "central (v1)" if MIXES[mix].legacy else maker.placement.kind,
            "held_out": [train[i].path.name for i in held]}
    if recipes:
        meta["recipes"] = list(recipes)
    return ValidationSplit(maker.kept, validation, meta, by_recipe)
