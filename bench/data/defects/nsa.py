"""NSA-style patches (Schlüter, Tan, Hou, Kainz, "Natural Synthetic Anomalies for
Self-supervised Anomaly Detection and Localization", ECCV 2022, Sec. 3): a patch of *another*
normal image, rescaled by 0.7-1.3, Poisson-blended into the image (Pérez et al. 2003) so its
edges vanish and only its content differs.

The blend solves the Poisson equation on the patch's rectangle: inside, the result's Laplacian
is the source patch's; on the rectangle's border it equals the image. The Dirichlet problem on a
rectangle is diagonal in the sine basis, so one forward and one inverse type-I discrete sine
transform (scipy.fft) solve it exactly, in O(n log n), with no sparse solver and no OpenCV.
Ours, where the paper is silent or differs: one patch per image (NSA draws several), no
mixed-gradient variant, and a redraw (up to 5 times) when the blend changes fewer than a
quarter of the rectangle's pixels by at least 2 grey levels (NSA also rejects patches that blend
into nothing). The mask is the rectangle: nothing outside it changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft

from bench.data.defects.base import (
    Canvas,
    Range,
    Recipe,
    RecipeParams,
    box,
    like,
    log_uniform,
    place,
    resized,
)
from bench.data.defects.registry import register_recipe


def poisson_blend(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """``source`` (h, w) blended into ``target`` (h, w), both float: the result equals ``target``
    on the border rows and columns and has ``source``'s Laplacian inside.

    >>> t = np.zeros((6, 7)); s = np.arange(42.0).reshape(6, 7)  # a plane: Laplacian 0
    >>> np.allclose(poisson_blend(t, s), 0)
    True
    """
    h, w = target.shape
    if h < 3 or w < 3:
        return target.copy()
    # g = result - source is harmonic inside with g = target - source on the border.
    g_border = target - source
    rhs = np.zeros((h - 2, w - 2))
    rhs[0, :] += g_border[0, 1:-1]
    rhs[-1, :] += g_border[-1, 1:-1]
    rhs[:, 0] += g_border[1:-1, 0]
    rhs[:, -1] += g_border[1:-1, -1]
    ky = np.arange(1, h - 1)[:, None]
    kx = np.arange(1, w - 1)[None, :]
    eigen = 4 - 2 * np.cos(np.pi * ky / (h - 1)) - 2 * np.cos(np.pi * kx / (w - 1))
    g_inside = fft.idstn(fft.dstn(rhs, type=1, norm="ortho") / eigen, type=1, norm="ortho")
    out = target.astype(np.float64).copy()
    out[1:-1, 1:-1] = source[1:-1, 1:-1] + g_inside
    return out


@dataclass(frozen=True)
class NSAParams(RecipeParams):
    area: Range = (0.01, 0.1)  # of the image, the patch's size where it lands
    aspect: Range = (0.3, 3.3)  # height / width, log-uniform
    scale: Range = (0.7, 1.3)  # the source patch rescaled by this (Sec. 3)


@register_recipe
class NSA(Recipe):
    name = "nsa"
    Params = NSAParams
    description = "NSA: a rescaled patch of another normal image, Poisson-blended"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        image = canvas.image
        donor = like(canvas.donor(rng), image)
        best = None
        for _ in range(5):
            out, mask, changed = self._once(canvas, donor, rng)
            if best is None or changed > best[2]:
                best = (out, mask, changed)
            if changed >= 0.25:
                break
        return best[0], best[1]

    def _once(self, canvas: Canvas, donor: np.ndarray, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, float]:
        p = self.params
        image = canvas.image
        h, w = canvas.shape
        ph, pw = box(h, w, rng.uniform(*p.area), log_uniform(rng, *p.aspect))
        ph, pw = max(ph, 4), max(pw, 4)
        scale = rng.uniform(*p.scale)
        sh, sw = min(h, max(2, round(ph / scale))), min(w, max(2, round(pw / scale)))
        sy, sx = rng.integers(0, h - sh + 1), rng.integers(0, w - sw + 1)
        source = resized(donor[sy:sy + sh, sx:sx + sw], ph, pw)
        cy, cx = canvas.centre(rng)
        ty, tx = place(ph, cy, h), place(pw, cx, w)
        out = image.copy()
        region = image[ty:ty + ph, tx:tx + pw]
        if image.ndim == 2:
            blended = poisson_blend(region, source)
        else:
            blended = np.stack([poisson_blend(region[..., c], source[..., c])
                                for c in range(image.shape[2])], axis=-1)
        out[ty:ty + ph, tx:tx + pw] = np.clip(blended, 0, 255)
        mask = np.zeros((h, w), bool)
        mask[ty:ty + ph, tx:tx + pw] = True
        diff = np.abs(out[ty:ty + ph, tx:tx + pw] - region)
        changed = float(np.mean(diff.reshape(ph, pw, -1).max(-1) >= 2))
        return out, mask, changed
