"""Pixel AUROC and PRO against slow, literal implementations of their definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import roc_auc_score

from bench.metrics import pixel_auroc, pro_score


def slow_pro(masks: np.ndarray, maps: np.ndarray, max_fpr: float = 0.3) -> float:
    """The MVTec AD definition step by step: at each distinct threshold, the mean overlap of
    every connected region and the false-positive rate; then the trapezoid up to max_fpr
    (interpolated there), normalised."""
    regions = []
    for mask, amap in zip(masks, maps):
        labelled, count = ndimage.label(mask)
        regions += [amap[labelled == r] for r in range(1, count + 1)]
    normal = maps[~masks]
    points = [(0.0, 0.0)]
    for t in np.unique(maps)[::-1]:
        fpr = float(np.mean(normal >= t))
        pro = float(np.mean([np.mean(region >= t) for region in regions]))
        points.append((fpr, pro))
    area = 0.0
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 >= max_fpr:
            break
        if x1 > max_fpr:
            y1 = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
            x1 = max_fpr
        area += (x1 - x0) * (y0 + y1) / 2
    return area / max_fpr


def random_case(seed: int, n: int = 4, size: int = 24):
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, size, size), bool)
    for i in range(n):
        for _ in range(rng.integers(0, 3)):  # some images without defects
            y, x = rng.integers(0, size - 6, 2)
            masks[i, y:y + rng.integers(2, 6), x:x + rng.integers(2, 6)] = True
    masks[0, 2:5, 2:5] = True  # at least one region
    maps = rng.normal(size=masks.shape) + 1.5 * masks + 0.3 * rng.random(masks.shape)
    return masks, np.round(maps, 2)  # rounding makes ties, which the fast path must handle


@pytest.mark.parametrize("seed", range(5))
def test_pro_agrees_with_the_slow_reference_to_3_decimals(seed):
    masks, maps = random_case(seed)
    assert pro_score(masks, maps) == pytest.approx(slow_pro(masks, maps), abs=5e-4)


@pytest.mark.parametrize("seed", range(3))
def test_pixel_auroc_is_the_auroc_over_all_pixels(seed):
    masks, maps = random_case(seed)
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()))


def test_perfect_and_constant_maps():
    masks, _ = random_case(0)
    assert pro_score(masks, masks.astype(float)) == pytest.approx(1.0)
    constant = np.zeros(masks.shape)
    assert pixel_auroc(masks, constant) == 0.5
    # Every pixel passes at once: the curve goes straight from (0, 0) to (1, 1).
    assert pro_score(masks, constant) == pytest.approx(0.15)
