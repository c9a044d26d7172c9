"""The first validation split's four defects (recipe mix ``v1``), unchanged: each at full
contrast and, for scratches and dents, in the central part of the image. Kept so the ``v1``
mix makes the very images it always made (old records keep saying they used it).

- ``patch``: a rectangle (2-6 % of the image) cut from another training image and pasted at a
  random place, so the defect is real texture in the wrong place;
- ``scratch``: a straight line 1-2 % of the image wide and 20-50 % long, darker or brighter
  (centres within 0.2-0.8 of each side);
- ``blob``: a filled ellipse (1-4 % of the image) of another intensity, with a soft edge;
- ``dent``: a smooth Gaussian darkening or brightening (sigma 3-6 % of the image; centres
  within 0.15-0.85 of each side), its mask where it reaches half its depth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.data.defects.base import Canvas, Range, Recipe, RecipeParams, coords, like
from bench.data.defects.registry import register_recipe


def _shifted(image: np.ndarray, weight: np.ndarray, rng: np.random.Generator, low: float,
             high: float) -> np.ndarray:
    """``image`` moved by +-(low..high) grey levels where ``weight`` (0..1) says."""
    shift = rng.choice([-1.0, 1.0]) * rng.uniform(low, high)
    w = weight[..., None] if image.ndim == 3 else weight
    return np.clip(image + shift * w, 0, 255)


@dataclass(frozen=True)
class PatchParams(RecipeParams):
    area: Range = (0.02, 0.06)
    aspect: Range = (0.5, 2.0)


@register_recipe
class Patch(Recipe):
    name = "patch"
    Params = PatchParams
    description = "v1: a rectangle of another training image pasted at a random place"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        donor = canvas.donor(rng)  # first, as v1 drew it
        image = canvas.image
        h, w = image.shape[:2]
        area = rng.uniform(*self.params.area) * h * w
        aspect = rng.uniform(*self.params.aspect)
        ph = int(np.clip(round(np.sqrt(area * aspect)), 2, h - 1))
        pw = int(np.clip(round(np.sqrt(area / aspect)), 2, w - 1))
        if donor.shape[:2] != (h, w):  # v1 resized the donor as uint8
            donor = np.asarray(Image.fromarray(donor.astype(np.uint8)).resize((w, h), Image.BILINEAR),
                               dtype=np.float32)
        donor = like(donor, image)
        sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
        ty, tx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
        out = image.copy()
        out[ty:ty + ph, tx:tx + pw] = donor[sy:sy + ph, sx:sx + pw]
        mask = np.zeros((h, w), bool)
        mask[ty:ty + ph, tx:tx + pw] = True
        return out, mask


@dataclass(frozen=True)
class ScratchParams(RecipeParams):
    half_length: Range = (0.1, 0.25)  # of the shorter side
    half_width: Range = (0.005, 0.01)
    contrast: Range = (40, 90)  # grey levels


@register_recipe
class Scratch(Recipe):
    name = "scratch"
    Params = ScratchParams
    description = "v1: a straight full-contrast line in the central part"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image = canvas.image
        h, w = image.shape[:2]
        yy, xx = coords(h, w)
        size = min(h, w)
        cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
        angle = rng.uniform(0, np.pi)
        along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        half_length = rng.uniform(*self.params.half_length) * size
        half_width = max(0.5, rng.uniform(*self.params.half_width) * size)
        mask = (np.abs(along) <= half_length) & (np.abs(across) <= half_width)
        return _shifted(image, mask.astype(np.float32), rng, *self.params.contrast), mask


@dataclass(frozen=True)
class BlobParams(RecipeParams):
    area: Range = (0.01, 0.04)
    contrast: Range = (35, 80)


@register_recipe
class Blob(Recipe):
    name = "blob"
    Params = BlobParams
    description = "v1: a filled ellipse of another intensity with a soft edge"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image = canvas.image
        h, w = image.shape[:2]
        yy, xx = coords(h, w)
        area = rng.uniform(*self.params.area) * h * w
        ratio = rng.uniform(0.5, 2.0)
        ry, rx = np.sqrt(area * ratio / np.pi), np.sqrt(area / ratio / np.pi)
        cy, cx = rng.uniform(ry, h - ry), rng.uniform(rx, w - rx)
        r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
        weight = np.clip((1.15 - r) / 0.3, 0, 1)  # a soft edge
        # v1's mask was r <= 1 and its soft edge reached 1.15; the mask now covers the edge.
        return _shifted(image, weight, rng, *self.params.contrast), weight > 0


@dataclass(frozen=True)
class DentParams(RecipeParams):
    sigma: Range = (0.03, 0.06)  # of the shorter side
    contrast: Range = (40, 80)


@register_recipe
class Dent(Recipe):
    name = "dent"
    Params = DentParams
    description = "v1: a Gaussian darkening or brightening in the central part"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image = canvas.image
        h, w = image.shape[:2]
        yy, xx = coords(h, w)
        sigma = rng.uniform(*self.params.sigma) * min(h, w)
        cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
        weight = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
        # v1's mask was weight >= 0.5, though the Gaussian's tail changes pixels beyond it (a
        # shift of up to 80 grey levels rounds to a change out to 3.4 sigma): v1's images are
        # kept, and its mask names the whole change.
        out = _shifted(image, weight, rng, *self.params.contrast)
        return out, np.abs(np.round(out) - np.round(image)).reshape(h, w, -1).max(-1) > 0
