"""CutPaste and CutPaste-scar (Li, Sohn, Yoon, Pfister, "CutPaste: Self-Supervised Learning for
Anomaly Detection and Localization", CVPR 2021, Sec. 3.1): a patch of the image itself,
colour-jittered, moved elsewhere in the image; or a thin rotated strip ("scar").

Sizes follow the paper: a patch of 2-15 % of the image with aspect ratio 0.3-3.3 (it draws
the aspect from (0.3, 1) or (1, 3.3)); a scar 2-16 pixels wide and 10-25 long at 256 pixels,
rotated by -45 to 45 degrees. Ours: the jitter is brightness and contrast (the paper's colour
jitter without hue on grayscale images), and the target may touch the image border.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from bench.data.defects.base import (
    Canvas,
    Range,
    Recipe,
    RecipeParams,
    box,
    jitter,
    log_uniform,
    place,
)
from bench.data.defects.registry import register_recipe


@dataclass(frozen=True)
class CutPasteParams(RecipeParams):
    area: Range = (0.02, 0.15)  # of the image (Sec. 3.1)
    aspect: Range = (0.3, 3.3)  # height / width, drawn log-uniformly
    jitter: float = 0.1  # brightness and contrast change, +-


def _moved(canvas: Canvas, rng: np.random.Generator, patch: np.ndarray, keep: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    """``patch`` (where ``keep`` is true) pasted with its centre at a point of the region."""
    image = canvas.image
    h, w = canvas.shape
    ph, pw = keep.shape
    cy, cx = canvas.centre(rng)
    ty, tx = place(ph, cy, h), place(pw, cx, w)
    out = image.copy()
    target = out[ty:ty + ph, tx:tx + pw]
    k = keep[..., None] if image.ndim == 3 else keep
    out[ty:ty + ph, tx:tx + pw] = np.where(k, patch, target)
    mask = np.zeros((h, w), bool)
    mask[ty:ty + ph, tx:tx + pw] = keep
    return out, mask


@register_recipe
class CutPaste(Recipe):
    name = "cutpaste"
    Params = CutPasteParams
    description = "CutPaste: a jittered patch of the image moved elsewhere in it"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        h, w = canvas.shape
        ph, pw = box(h, w, rng.uniform(*p.area), log_uniform(rng, *p.aspect))
        sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
        patch = jitter(canvas.image[sy:sy + ph, sx:sx + pw], rng, p.jitter)
        return _moved(canvas, rng, patch, np.ones((ph, pw), bool))


@dataclass(frozen=True)
class ScarParams(RecipeParams):
    width: Range = (2 / 256, 16 / 256)  # of the shorter side (2-16 px at 256, Sec. 3.1)
    length: Range = (10 / 256, 25 / 256)
    angle: Range = (-45.0, 45.0)  # degrees
    jitter: float = 0.1


@register_recipe
class CutPasteScar(Recipe):
    name = "cutpaste_scar"
    Params = ScarParams
    description = "CutPaste-scar: a thin rotated strip of the image moved elsewhere in it"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        h, w = canvas.shape
        side = min(h, w)
        sw = max(1, round(rng.uniform(*p.width) * side))
        sl = max(2, round(rng.uniform(*p.length) * side))
        sy, sx = rng.integers(0, h - sl + 1), rng.integers(0, w - sw + 1)
        strip = jitter(canvas.image[sy:sy + sl, sx:sx + sw], rng, p.jitter)
        angle = rng.uniform(*p.angle)
        # Rotate strip and its support together (nearest: no value outside the strip's own).
        channels = [strip] if strip.ndim == 2 else [strip[..., c] for c in range(strip.shape[2])]
        rotated = [np.asarray(Image.fromarray(c.astype(np.float32), mode="F")
                              .rotate(angle, Image.NEAREST, expand=True)) for c in channels]
        support = np.asarray(Image.fromarray(np.full((sl, sw), 255, np.uint8))
                             .rotate(angle, Image.NEAREST, expand=True)) > 127
        patch = rotated[0] if strip.ndim == 2 else np.stack(rotated, axis=-1)
        return _moved(canvas, rng, patch.astype(np.float32), support)
