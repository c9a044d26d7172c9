"""How good the localization maps are: pixel AUROC and PRO (``bench.metrics``) against the
ground-truth masks, beside two trivial references on the same images: a constant map (what
chance gives) and each pixel's distance to the mean training image (what no learning gives).

Maps and masks are compared at ``EVAL_SIZE`` pixels a side at most (maps averaged down, masks
by nearest neighbour), as MVTec AD evaluations commonly do, so scoring the maps of a whole test
set takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from bench.data import Sample, load_image, load_mask
from bench.metrics import pixel_auroc, pro_score

EVAL_SIZE = 256


def has_masks(test: Sequence[Sample]) -> bool:
    return any(s.mask_path is not None for s in test)


def evaluate_localization(maps: np.ndarray, test: Sequence[Sample],
                          train: Sequence[Sample]) -> dict:
    """Pixel AUROC and PRO of ``maps`` (n, H, W) and of the two references."""
    size = min(EVAL_SIZE, maps.shape[-1])
    masks = np.stack([load_mask(s, (size, size)) for s in test])
    scored = {
        "method": _resize(maps, size),
        "constant": np.zeros(masks.shape, np.float32),
        "mean_image": mean_image_distance(train, test, size),
    }
    out = {name: {"pixel_auroc": pixel_auroc(masks, m), "pro": pro_score(masks, m)}
           for name, m in scored.items()}
    return {"eval_size": size, **out}


def map_metrics(maps: np.ndarray, test: Sequence[Sample]) -> dict[str, float]:
    """Pixel AUROC and PRO of ``maps`` alone (``evaluate_localization``'s "method" entry)."""
    size = min(EVAL_SIZE, maps.shape[-1])
    masks = np.stack([load_mask(s, (size, size)) for s in test])
    resized = _resize(maps, size)
    return {"pixel_auroc": pixel_auroc(masks, resized), "pro": pro_score(masks, resized)}


def mean_image_distance(train: Sequence[Sample], test: Sequence[Sample], size: int) -> np.ndarray:
    """Each test pixel's distance to the mean training image (mean over channels)."""
    mean = np.mean([_pixels(s, size) for s in train], axis=0)
    return np.stack([np.abs(_pixels(s, size) - mean).mean(axis=-1) for s in test])


def _pixels(sample: Sample, size: int) -> np.ndarray:
    image = load_image(sample.path).resize((size, size), Image.BILINEAR)
    return np.asarray(image, np.float32) / 255.0


def _resize(maps: np.ndarray, size: int) -> np.ndarray:
    if maps.shape[-1] == size and maps.shape[-2] == size:
        return np.asarray(maps, np.float32)
    tensor = torch.from_numpy(np.asarray(maps, np.float32))[:, None]
    return torch.nn.functional.interpolate(tensor, size=(size, size), mode="area")[:, 0].numpy()
