"""DRAEM-style defects (Zavrtanik, Kristan, Skočaj, "DRAEM - A discriminatively trained
reconstruction embedding for surface anomaly detection", ICCV 2021, Sec. 3.3): a region where
Perlin noise exceeds a threshold, filled with texture at a drawn opacity beta:
``out = (1 - beta) * image + beta * texture`` inside the region, the image outside.

DRAEM fills the region with DTD textures; here the texture is another normal training image
(``self_texture``: the share of images that take the image itself, its tiles shuffled, as
DRAEM's self-augmentation does), so nothing outside the training set is needed. Noise scales
are 2^k cells per side, k drawn from ``scale`` (DRAEM: 0-5), thresholded at 0.5 after rotating
the noise field; an empty or oversized region is drawn again. ``opacity`` is DRAEM's beta
range (0.1-1.0); anomalib's ``PerlinAnomalyGenerator`` blends DTD at lower opacities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from bench.data.defects.base import Canvas, Range, Recipe, RecipeParams, blend, jitter, like
from bench.data.defects.registry import register_recipe


def perlin_noise(h: int, w: int, cells: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2-D gradient noise (Perlin's improved fade) of ``cells`` (rows, columns) lattice cells over
    an (h, w) image; values within about +-0.7."""
    cy, cx = cells
    grad = rng.uniform(0, 2 * np.pi, size=(cy + 1, cx + 1))
    gy, gx = np.sin(grad), np.cos(grad)
    y = (np.arange(h) + 0.5) / h * cy
    x = (np.arange(w) + 0.5) / w * cx
    iy, ix = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - iy)[:, None], (x - ix)[None, :]
    iy, ix = iy[:, None], ix[None, :]

    def dot(oy: int, ox: int) -> np.ndarray:
        return gy[iy + oy, ix + ox] * (fy - oy) + gx[iy + oy, ix + ox] * (fx - ox)

    def fade(t: np.ndarray) -> np.ndarray:
        return t * t * t * (t * (t * 6 - 15) + 10)

    uy, ux = fade(fy), fade(fx)
    top = dot(0, 0) * (1 - ux) + dot(0, 1) * ux
    bottom = dot(1, 0) * (1 - ux) + dot(1, 1) * ux
    return (top * (1 - uy) + bottom * uy).astype(np.float32)


def perlin_region(h: int, w: int, rng: np.random.Generator, scale: Range, area: Range,
                  threshold: float = 0.5, tries: int = 20) -> np.ndarray:
    """A boolean region where rotated Perlin noise exceeds ``threshold``, its share of the
    image within ``area`` (the closest one drawn when no try lands inside)."""
    best, best_gap = None, np.inf
    for _ in range(tries):
        k = rng.integers(int(scale[0]), int(scale[1]) + 1, size=2)
        side = int(np.ceil(np.hypot(h, w)))  # the field rotated, then cropped to the image
        noise = perlin_noise(side, side, (2 ** int(k[0]), 2 ** int(k[1])), rng)
        noise = ndimage.rotate(noise, rng.uniform(-90, 90), reshape=False, order=1)
        top, left = (side - h) // 2, (side - w) // 2
        region = noise[top:top + h, left:left + w] > threshold
        share = region.mean()
        gap = 0.0 if area[0] <= share <= area[1] else min(abs(share - area[0]),
                                                          abs(share - area[1]))
        if region.any() and gap < best_gap:
            best, best_gap = region, gap
        if best_gap == 0:
            break
    if best is None:  # no noise above the threshold in any try: one blob of the noise's top
        best = noise[top:top + h, left:left + w] >= np.quantile(noise, 1 - area[0])
    return best


def shuffled_tiles(image: np.ndarray, rng: np.random.Generator, tiles: int = 4) -> np.ndarray:
    """The image cut into ``tiles`` x ``tiles`` blocks, put back in a random order."""
    h, w = image.shape[:2]
    bh, bw = h // tiles, w // tiles
    if bh == 0 or bw == 0:
        return image.copy()
    core = image[:bh * tiles, :bw * tiles]
    blocks = [core[i * bh:(i + 1) * bh, j * bw:(j + 1) * bw] for i in range(tiles)
              for j in range(tiles)]
    order = rng.permutation(len(blocks))
    rows = [np.concatenate([blocks[order[i * tiles + j]] for j in range(tiles)], axis=1)
            for i in range(tiles)]
    out = image.copy()
    out[:bh * tiles, :bw * tiles] = np.concatenate(rows, axis=0)
    return out


@dataclass(frozen=True)
class PerlinParams(RecipeParams):
    opacity: Range = (0.1, 1.0)  # beta (Sec. 3.3)
    scale: Range = (0, 5)  # k: 2^k noise cells per side (DRAEM: 0-5)
    area: Range = (0.003, 0.2)  # share of the image the region may take
    self_texture: float = 0.0  # the share of images filled with their own shuffled tiles
    jitter: float = 0.1  # brightness and contrast of the texture, +-


@register_recipe
class Perlin(Recipe):
    name = "perlin"
    Params = PerlinParams
    description = "DRAEM: a Perlin-noise region filled with another normal image's texture"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        image = canvas.image
        h, w = canvas.shape
        region = perlin_region(h, w, rng, p.scale, p.area)
        on_object = region & canvas.region  # on the object where there is one
        if on_object.any():
            region = on_object
        if rng.random() < p.self_texture:
            texture = shuffled_tiles(image, rng)
        else:
            texture = like(canvas.donor(rng), image)
        texture = jitter(texture, rng, p.jitter)
        beta = rng.uniform(*p.opacity)
        out = blend(image, texture, region.astype(np.float32) * beta)
        return out, region
