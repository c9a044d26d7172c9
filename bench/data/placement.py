"""Where a synthetic defect may go: anywhere on a texture or a tile, borders included; on the
object when a foreground can be told from the training images.

The rule (ours): the mean of up to 32 training images (resized to 128 pixels, grayscale) is
split by Otsu's threshold. A foreground is told when the split is clear (Otsu's separability,
between-class over total variance, at least ``MIN_SEPARABILITY``), one class covers 5-90 % of
the image and touches at most ``MAX_BORDER`` of the image border (the background touches the
rest). Then each image's region is its own Otsu class of the same polarity, grown by 2 % of
its side (a defect on an object's edge is still a defect); an image where that region is empty
uses the mean's. Otherwise the region is the whole image. Textures and tiles (MTD's, ELPV's
solar cells) have no clear split that avoids the border, so their defects reach every edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

MIN_SEPARABILITY = 0.8
MAX_BORDER = 0.1
AREA = (0.05, 0.9)
SIDE = 128


def otsu(values: np.ndarray) -> tuple[float, float]:
    """Otsu's threshold of ``values`` (0-255) and its separability (between-class variance over
    total variance, 0-1)."""
    hist, edges = np.histogram(values, bins=256, range=(0, 256))
    p = hist / max(hist.sum(), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(p)
    mu = np.cumsum(p * centres)
    total_mu, total_var = mu[-1], float(np.sum(p * (centres - mu[-1]) ** 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mu * w0 - mu) ** 2 / (w0 * (1 - w0))
    between = np.nan_to_num(between)
    k = int(np.argmax(between))
    return float(edges[k + 1]), float(between[k] / total_var) if total_var > 0 else 0.0


def _gray(image: np.ndarray) -> np.ndarray:
    return image.mean(axis=-1) if image.ndim == 3 else image


def _small(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(_gray(image).astype(np.float32), mode="F")
                      .resize((SIDE, SIDE), Image.BILINEAR))


def _border(mask: np.ndarray) -> np.ndarray:
    return np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])


@dataclass(frozen=True)
class Placement:
    kind: str  # "whole image" or "foreground"
    bright: bool = True  # the foreground's side of the threshold
    mean_region: np.ndarray | None = None  # (SIDE, SIDE), the mean image's foreground

    def region(self, image: np.ndarray) -> np.ndarray:
        """Where a defect may be centred in ``image`` (bool, its size)."""
        h, w = image.shape[:2]
        if self.kind == "whole image":
            return np.ones((h, w), bool)
        gray = _gray(image)
        threshold, _ = otsu(gray)
        region = gray > threshold if self.bright else gray <= threshold
        if not region.any():
            region = np.asarray(Image.fromarray(self.mean_region).resize((w, h))) > 0
        grow = max(1, round(0.02 * min(h, w)))
        return ndimage.binary_dilation(region, iterations=grow)


def find_placement(paths: Sequence[Path], load: Callable[[Path], np.ndarray]) -> Placement:
    """The placement rule (module docstring) on training images ``paths``."""
    step = max(1, len(paths) // 32)
    mean = np.mean([_small(load(p)) for p in list(paths)[::step][:32]], axis=0)
    threshold, separability = otsu(mean)
    bright = mean > threshold
    for foreground in (bright, ~bright):
        share, border = foreground.mean(), _border(foreground).mean()
        if separability >= MIN_SEPARABILITY and AREA[0] <= share <= AREA[1] and border <= MAX_BORDER:
            return Placement("foreground", bool(foreground is bright),
                             foreground.astype(np.uint8) * 255)
    return Placement("whole image")
