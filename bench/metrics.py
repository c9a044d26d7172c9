"""Detection metrics (Sec. 4.3: image-level AUROC)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of anomaly scores (label 1 = defective)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError("some anomaly scores are not finite")
    return float(roc_auc_score(np.asarray(labels), scores))


# -- localization: pixel AUROC and PRO (the MVTec AD evaluation's definitions) ----------------


def pixel_auroc(masks: np.ndarray, maps: np.ndarray) -> float:
    """AUROC over every pixel of every image (mask 1 = defect), maps and masks (n, H, W)."""
    masks, maps = _check_maps(masks, maps)
    return float(roc_auc_score(masks.ravel(), maps.ravel()))


def pro_score(masks: np.ndarray, maps: np.ndarray, max_fpr: float = 0.3) -> float:
    """Area under the per-region-overlap curve up to ``max_fpr``, divided by ``max_fpr``.

    As the MVTec AD evaluation defines it: at a threshold t, PRO(t) is the mean over every
    connected defect region of every image of the share of its pixels scored >= t, and FPR(t)
    the share of defect-free pixels (of all images) scored >= t. Exact and vectorised: sorting
    the pixels once, PRO is a cumulative sum of weights 1 / (region size x number of regions)
    and FPR a cumulative count, read at the last pixel of each run of equal scores.

    >>> masks = np.zeros((1, 4, 4), bool); masks[0, :2, :2] = True
    >>> maps = masks.astype(float)  # a perfect map
    >>> round(pro_score(masks, maps), 3)
    1.0
    """
    from scipy import ndimage

    masks, maps = _check_maps(masks, maps)
    weights = np.zeros(masks.shape, dtype=np.float64)
    regions = []
    for i, mask in enumerate(masks):
        labelled, count = ndimage.label(mask)
        if count:
            sizes = np.bincount(labelled.ravel())
            regions.append((i, labelled, sizes))
    n_regions = sum(len(sizes) - 1 for _, _, sizes in regions)
    if n_regions == 0 or masks.all():
        raise ValueError("PRO needs defect regions and defect-free pixels")
    for i, labelled, sizes in regions:
        inside = labelled > 0
        weights[i][inside] = 1.0 / (sizes[labelled[inside]] * n_regions)
    scores, weights, normal = maps.ravel(), weights.ravel(), ~masks.ravel()
    order = np.argsort(-scores, kind="stable")
    fpr = np.cumsum(normal[order]) / normal.sum()
    pro = np.cumsum(weights[order])
    last_of_tie = np.r_[scores[order][1:] != scores[order][:-1], True]
    fpr, pro = np.r_[0.0, fpr[last_of_tie]], np.r_[0.0, pro[last_of_tie]]
    return _area_up_to(fpr, pro, max_fpr) / max_fpr


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under y(x) (x non-decreasing) from 0 to x_max, y interpolated there."""
    inside = x <= x_max
    xs, ys = x[inside], y[inside]
    if xs[-1] < x_max and inside.sum() < len(x):
        j = inside.sum()  # the first point beyond x_max
        y_at = y[j - 1] + (y[j] - y[j - 1]) * (x_max - x[j - 1]) / (x[j] - x[j - 1])
        xs, ys = np.r_[xs, x_max], np.r_[ys, y_at]
    return float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2))


def _check_maps(masks: np.ndarray, maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    masks, maps = np.asarray(masks, bool), np.asarray(maps, np.float64)
    if masks.shape != maps.shape:
        raise ValueError(f"masks {masks.shape} and maps {maps.shape} differ in shape")
    if not np.all(np.isfinite(maps)):
        raise FloatingPointError("some map values are not finite")
    return masks, maps


# -- comparing two detectors on the same images: DeLong's test ---------------------------------


def placements(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components of one detector's AUROC: for each defective image the
    share of defect-free images it outscores (ties count half), and for each defect-free image
    the share of defective images that outscore it. Both average to the AUROC. Computed from
    midranks (Sun and Xu 2014) in O(n log n).

    >>> v10, v01 = placements(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> v10.tolist(), v01.tolist(), float(v10.mean())
    ([0.5, 1.0], [1.0, 0.5], 0.75)
    """
    from scipy.stats import rankdata

    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    pos, neg = scores[labels == 1], scores[labels == 0]
    m, n = len(pos), len(neg)
    combined = rankdata(np.concatenate([pos, neg]))
    v10 = (combined[:m] - rankdata(pos)) / n
    v01 = 1.0 - (combined[m:] - rankdata(neg)) / m
    return v10, v01


def delong(v10: np.ndarray, v01: np.ndarray) -> tuple[float, float, float]:
    """The difference of two AUROCs on the same images and DeLong's test of it, from each
    detector's structural components stacked as rows (``v10``: (2, m), ``v01``: (2, n)):
    (difference, its standard error, two-sided p-value)."""

    diff = float(v10[0].mean() - v10[1].mean())
    contrast = np.array([1.0, -1.0])
    variance = (contrast @ np.cov(v10) @ contrast / v10.shape[1]
                + contrast @ np.cov(v01) @ contrast / v01.shape[1])
    se = float(np.sqrt(max(variance, 0.0)))
    return diff, se, two_sided_p(diff, se)


def two_sided_p(diff: float, se: float) -> float:
    """The two-sided p-value of a normal difference ``diff`` with standard error ``se`` (a
    difference with no spread: 1 when it is 0, else 0)."""
    from scipy.stats import norm

    if se == 0.0:
        return 1.0 if diff == 0 else 0.0
    return float(2 * norm.sf(abs(diff) / se))
