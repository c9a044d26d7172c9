"""The synthetic defect recipes: each one's mask covers every pixel it changed, each is seeded,
Poisson blending does what it says, defects go where the data's defects can be, and a recipe
can be a plugin."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.defects import RECIPES, Canvas, Recipe, RecipeParams, parse_recipe
from bench.data.defects.nsa import poisson_blend
from bench.data.placement import find_placement
from bench.errors import BenchError


def _texture(rng: np.random.Generator, colour: bool, size: int = 72) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size]
    base = 120 + 40 * np.sin(xx / 3.0) + rng.normal(0, 12, (size, size))
    image = np.clip(base, 0, 255).astype(np.float32)
    return np.stack([image, image * 0.9, image * 0.8], -1) if colour else image


@pytest.mark.parametrize("name", sorted(RECIPES))
@pytest.mark.parametrize("colour", [False, True])
def test_each_recipes_mask_covers_what_changed(name, colour):
    """After rounding to the stored uint8 image, no pixel outside the mask differs, and the
    defect changed something (several seeds, both grayscale and colour)."""
    recipe = parse_recipe(name)
    for seed in range(6):
        rng = np.random.default_rng(seed)
        image = np.round(_texture(rng, colour))
        donor = _texture(np.random.default_rng(100 + seed), colour)
        canvas = Canvas(image, np.ones(image.shape[:2], bool), lambda r, d=donor: d)
        out, mask = recipe.make(canvas, np.random.default_rng([seed, 1]))
        assert out.shape == image.shape and mask.shape == image.shape[:2] and mask.dtype == bool
        changed = np.abs(np.round(out) - image).reshape(*mask.shape, -1).max(-1) > 0
        assert changed.any(), f"{name} seed {seed} changed nothing"
        assert not (changed & ~mask).any(), f"{name} seed {seed} changed pixels off its mask"
        again, again_mask = recipe.make(canvas, np.random.default_rng([seed, 1]))
        assert np.array_equal(again, out) and np.array_equal(again_mask, mask)  # seeded


def test_defects_stay_in_the_region_they_are_given():
    """Where a foreground is told, a defect is centred on it: a pit drawn on a region in one
    corner lies in that corner."""
    image = np.full((64, 64), 100.0, np.float32)
    region = np.zeros((64, 64), bool)
    region[:16, :16] = True
    canvas = Canvas(image, region, lambda r: image)
    for seed in range(5):
        _, mask = parse_recipe("pit/count=1:1").make(canvas, np.random.default_rng(seed))
        ys, xs = np.nonzero(mask)
        assert ys.mean() < 24 and xs.mean() < 24


def test_texture_recipes_change_the_fine_texture_and_keep_the_shading():
    """``worn`` scales the region's fine texture by its gain and leaves its blur; ``grain``
    turns vertical stripes into horizontal ones inside its region."""
    from scipy import ndimage

    _, xx = np.mgrid[0:96, 0:96]
    stripes = (120 + 30 * np.sin(xx * 1.3)).astype(np.float32)  # vertical stripes
    canvas = Canvas(stripes, np.ones(stripes.shape, bool), lambda r: stripes)

    def texture_energy(image: np.ndarray, mask: np.ndarray) -> float:
        return float(np.abs(image - ndimage.gaussian_filter(image, 2.0))[mask].mean())

    for gain in (0.0, 2.0):
        recipe = parse_recipe(f"worn/sigma=0.02:0.02/roughened=1/stronger={gain}:{gain}")
        out, mask = recipe.make(canvas, np.random.default_rng(0))
        inner = ndimage.binary_erosion(mask, iterations=4)
        assert inner.sum() > 50
        ratio = texture_energy(out, inner) / texture_energy(stripes, inner)
        assert abs(ratio - max(gain, 0.05)) < 0.2, (gain, ratio)
        blur = ndimage.gaussian_filter
        assert np.abs(blur(out, 6.0) - blur(stripes, 6.0))[inner].mean() < 3  # shading kept
    out, mask = parse_recipe("grain/opacity=1:1/sigma=0.03:0.03").make(canvas, np.random.default_rng(1))
    inner = ndimage.binary_erosion(mask, iterations=4)
    across = np.abs(np.diff(out, axis=1))[inner[:, 1:]]
    along = np.abs(np.diff(out, axis=0))[inner[1:]]
    assert along.mean() > 3 * across.mean()  # the stripes now run across the region
    assert np.array_equal(out[~mask], stripes[~mask])


def test_poisson_blend_keeps_the_border_and_the_sources_laplacian():
    rng = np.random.default_rng(0)
    target, source = rng.uniform(0, 255, (9, 12)), rng.uniform(0, 255, (9, 12))
    out = poisson_blend(target, source)
    border = np.ones_like(out, bool)
    border[1:-1, 1:-1] = False
    assert np.allclose(out[border], target[border])

    def laplacian(x):
        return 4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]

    assert np.allclose(laplacian(out), laplacian(source))


def test_placement_tells_a_foreground_from_a_texture(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    objects = [np.where((yy - 32) ** 2 + (xx - 30 - i) ** 2 < 15**2, 190.0, 25.0)
               + rng.normal(0, 5, (64, 64)) for i in range(6)]
    textures = [_texture(rng, False, 64) for _ in range(6)]
    placement = find_placement(list(range(6)), lambda i: objects[i])
    assert placement.kind == "foreground"
    region = placement.region(objects[0])
    assert region[32, 30] and not region[2, 2]
    assert find_placement(list(range(6)), lambda i: textures[i]).kind == "whole image"


class Stamp(Recipe):
    """A plugin recipe: a bright square in the top left corner."""

    name = "stamp"
    Params = RecipeParams

    def make(self, canvas, rng):
        out, mask = canvas.image.copy(), np.zeros(canvas.shape, bool)
        mask[:4, :4] = True
        out[:4, :4] = 255
        return out, mask


def test_recipes_by_name_with_parameters_or_as_plugins():
    assert parse_recipe("perlin/opacity=0.1:0.4").params.opacity == (0.1, 0.4)
    assert parse_recipe("perlin/self_texture=0.5").params.self_texture == 0.5
    assert parse_recipe(f"{__name__}:Stamp").name == "stamp"
    for bad in ("perlinn", "perlin/opacity", "perlin/colour=1:2", "perlin/opacity=a:b",
                "perlin/opacity=0.1", f"{__name__}:Nothing"):
        with pytest.raises(BenchError):
            parse_recipe(bad)
