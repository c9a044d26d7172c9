"""What the data check reads of each image: its header (mode, channels, size), a small grey
thumbnail and the simple statistics taken from it (brightness, contrast, sharpness), and its
backbone embedding.

Every image is decoded once, at ``THUMB`` pixels square, through the shared image cache (the
one decode-and-resize recipe every method uses), so the statistics are of the picture the
methods see. An image that cannot be read is named, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from bench.data.base import Sample
from bench.data.imagecache import ImageCache
from bench.errors import BenchError
from bench.features.bank import stack_uint8
from bench.features.engines import shared_engine
from bench.features.transforms import normalized_scales
from bench.progress import progress as progress_bar

THUMB = 128  # side of the decoded thumbnail every statistic and the embedding are taken from
# Modes PIL converts to 8-bit RGB by clipping (16-bit, 32-bit integer, float): most of the
# image's range is lost.
LOSSY_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
STATISTICS = ("brightness", "contrast", "sharpness", "size")
_BATCH = 32


@dataclass
class Header:
    mode: str
    width: int
    height: int

    @property
    def channels(self) -> int:
        try:
            return Image.getmodebands(self.mode)
        except (KeyError, ValueError):  # a mode PIL opens but does not list
            return 1


def header(sample: Sample) -> Header | None:
    """The image's mode and size from its header, or None when it cannot be read."""
    try:
        with Image.open(sample.path) as image:
            return Header(image.mode, *image.size)
    except Exception:  # any reason a file is not an image: named by the caller
        return None


def thumbnails(samples: Sequence[Sample], images: ImageCache, progress: bool = False
               ) -> tuple[list[np.ndarray | None], list[str]]:
    """Each sample's uint8 thumbnail (C, THUMB, THUMB) (None for an image that cannot be
    decoded) and, for those, why."""

    def load(sample: Sample) -> tuple[np.ndarray | None, str | None]:
        try:
            return images.load_compact(sample.path, THUMB), None
        except (BenchError, OSError, ValueError) as err:
            return None, str(err)

    out: list[np.ndarray | None] = []
    errors: list[str] = []
    with ThreadPoolExecutor(max_workers=2) as pool, \
            progress_bar(len(samples), "check: decode", enabled=progress, unit="img") as bar:
        for image, error in pool.map(load, samples):
            out.append(image)
            if error:
                errors.append(error)
            bar.update(1)
    return out, errors


def grey(image: np.ndarray) -> np.ndarray:
    """A thumbnail as grey float32 in [0, 1] (THUMB, THUMB)."""
    return image.astype(np.float32).mean(axis=0) / 255.0


def statistics(greys: np.ndarray, headers: Sequence[Header]) -> dict[str, np.ndarray]:
    """Per image: the mean grey level (brightness); its standard deviation over its mean (RMS
    contrast, unchanged by exposure alone); the variance of the Laplacian over the variance of
    the image (sharpness: fine detail for the image's contrast, unchanged by exposure alone);
    the geometric mean of width and height in pixels (size). Of the thumbnail, what the
    methods see."""
    laplace = np.stack([ndimage.laplace(g) for g in greys]) if len(greys) else greys
    mean, var = greys.mean(axis=(1, 2)), greys.var(axis=(1, 2))
    return {
        "brightness": mean.astype(np.float64),
        "contrast": (np.sqrt(var) / np.maximum(mean, 1e-6)).astype(np.float64),
        "sharpness": (laplace.var(axis=(1, 2)) / np.maximum(var, 1e-12)).astype(np.float64),
        "size": np.array([np.sqrt(h.width * h.height) for h in headers], dtype=np.float64),
    }


def embeddings(thumbs: Sequence[np.ndarray], backbone: str, device: str,
               progress: bool = False) -> np.ndarray:
    """The backbone's pooled features (its default stage, global average) of each thumbnail,
    (N, C) float64, batched through the feature pipeline's engines (``auto``: the fastest here)."""
    engine = shared_engine(backbone, None, "auto", device, "fp32")
    out = []
    with progress_bar(len(thumbs), "check: embed", enabled=progress, unit="img") as bar:
        for start in range(0, len(thumbs), _BATCH):
            batch = stack_uint8(list(thumbs[start:start + _BATCH]))
            with torch.inference_mode():
                (x,) = normalized_scales(batch.float() / 255.0, (THUMB,))
            out.append(engine([x]).astype(np.float64))
            bar.update(len(batch))
    return np.concatenate(out) if out else np.empty((0, 0))
