"""Defects of the surface's fine texture alone, its brightness kept: what a network's earlier
stages see as much as its deepest (worn or rough patches, grinding marks in another direction,
as on MTD's uneven and frayed tiles), where the other recipes paint shapes and shades.

A region (a thresholded Perlin field, as ``perlin``'s) keeps the image's coarse shading, its
Gaussian blur at ``sigma``, and changes its fine texture, the image minus that blur:

- ``worn``: the texture weakened (worn smooth) or strengthened (roughened) by a drawn gain;
- ``grain``: the texture replaced by that of the image turned a quarter (another grinding
  direction), at a drawn opacity.

Each changes only pixels of its region (its mask), anywhere in the placement region.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.data.defects.base import Canvas, Range, Recipe, RecipeParams, like
from bench.data.defects.perlin import perlin_region
from bench.data.defects.registry import register_recipe


def split_texture(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(shading, texture): the image's Gaussian blur at ``sigma`` pixels (per channel) and the
    rest, so that shading + texture is the image."""
    spatial = (sigma, sigma, 0) if image.ndim == 3 else sigma
    shading = ndimage.gaussian_filter(image, spatial, mode="reflect")
    return shading, image - shading


def placed_region(canvas: Canvas, rng: np.random.Generator, scale: Range, area: Range
                  ) -> np.ndarray:
    """A Perlin region of ``area``'s share, on the object where there is one (the noise
    thresholded lower than ``perlin``'s, as these regions are larger)."""
    h, w = canvas.shape
    region = perlin_region(h, w, rng, scale, area, threshold=0.2)
    on_object = region & canvas.region
    return on_object if on_object.any() else region


@dataclass(frozen=True)
class TextureParams(RecipeParams):
    area: Range = (0.05, 0.35)  # share of the image the region may take
    scale: Range = (1, 3)  # 2^k Perlin cells per side
    sigma: Range = (0.004, 0.015)  # of the shorter side: the finest texture kept as shading


class TextureRecipe(Recipe):
    """What ``worn`` and ``grain`` share: the region, the split at a drawn ``sigma``, the
    change kept inside the region; ``retextured`` is the region's new image."""

    def retextured(self, image: np.ndarray, shading: np.ndarray, texture: np.ndarray,
                   sigma: float, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        image = canvas.image.astype(np.float32)
        region = placed_region(canvas, rng, p.scale, p.area)
        sigma = max(0.7, rng.uniform(*p.sigma) * min(canvas.shape))
        changed = self.retextured(image, *split_texture(image, sigma), sigma, rng)
        inside = region[..., None] if image.ndim == 3 else region
        return np.clip(np.where(inside, changed, image), 0, 255).astype(np.float32), region


@dataclass(frozen=True)
class WornParams(TextureParams):
    weaker: Range = (0.0, 0.5)  # the texture's gain when worn smooth
    stronger: Range = (1.6, 2.5)  # ... when roughened
    roughened: float = 0.5  # the share roughened


@register_recipe
class Worn(TextureRecipe):
    name = "worn"
    Params = WornParams
    description = "a region whose fine texture is worn smooth or roughened, its shading kept"

    def retextured(self, image, shading, texture, sigma, rng):
        p = self.params
        gain = rng.uniform(*(p.stronger if rng.random() < p.roughened else p.weaker))
        return shading + gain * texture


@dataclass(frozen=True)
class GrainParams(TextureParams):
    opacity: Range = (0.6, 1.0)  # of the turned texture


@register_recipe
class Grain(TextureRecipe):
    name = "grain"
    Params = GrainParams
    description = "a region whose fine texture runs another way (the image's, turned a quarter)"

    def retextured(self, image, shading, texture, sigma, rng):
        turned = like(np.rot90(image, k=int(rng.choice([1, 3]))).copy(), image)
        _, turned_texture = split_texture(turned, sigma)
        beta = rng.uniform(*self.params.opacity)
        return shading + (1 - beta) * texture + beta * turned_texture
