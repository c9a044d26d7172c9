"""Decode and resize each image once per image size: a uint8 cache keyed by file content.

Every cell, method and seed that reads the same file at the same size shares one entry, so a
suite decodes each image once instead of once per cell (and once per epoch in the original
code's cost structure). Entries are exactly what ``load_image`` + an antialiased resize give,
stored as uint8 (one channel for grayscale sources, replicated on load), so reading from the
cache never changes a number.

>>> import tempfile
>>> from PIL import Image
>>> folder = Path(tempfile.mkdtemp())
>>> Image.new("L", (10, 6), 200).save(folder / "a.png")
>>> cache = ImageCache(folder / "cache")
>>> cache.load(folder / "a.png", 4).shape
(3, 4, 4)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import load_image
from bench.data.content import content_keys
from bench.store.atomic import atomic_path, set_aside_unreadable

# The folder of the current decode/resize recipe: change it when the recipe changes, so old
# entries are never read as new ones.
RECIPE = "v1"


def decode_resized(path: Path, size: int) -> np.ndarray:
    """The image as RGB uint8 (3, size, size): decoded (grayscale replicated), resized with
    antialiasing. The one recipe every method uses to read an image."""
    image = TF.pil_to_tensor(load_image(Path(path)))
    return TF.resize(image, [size, size], antialias=True).numpy()


class ImageCache:
    """Resized uint8 images under ``root/<RECIPE>/<size>/<key[:2]>/<key>.npy``; with
    ``root=None`` nothing is kept and every load decodes the file."""

    def __init__(self, root: Path | None = None):
        self.root = None if root is None else Path(root)
        self.keys = content_keys(self.root)

    def key(self, path: Path) -> str:
        """Content key of ``path``, hashed once per file version (``ContentKeys``)."""
        return self.keys.key(path)

    def load(self, path: Path, size: int) -> np.ndarray:
        """RGB uint8 (3, size, size), from the cache when there, else decoded and stored."""
        return _expand(self.load_compact(path, size))

    def load_compact(self, path: Path, size: int) -> np.ndarray:
        """uint8 (C, size, size) with C = 1 for a grayscale image (its three RGB channels are
        equal), else 3."""
        if self.root is None:
            return _compact(decode_resized(path, size))
        key = self.key(path)
        entry = self.root / RECIPE / str(size) / key[:2] / f"{key}.npy"
        if entry.is_file():
            try:
                return np.load(entry)
            except (ValueError, OSError, EOFError) as err:  # made again, never trusted
                set_aside_unreadable(entry, err, "image cache entry")
        image = _compact(decode_resized(path, size))
        with atomic_path(entry, needed=image.nbytes + 128) as tmp, open(tmp, "wb") as fh:
            np.save(fh, image)  # a short write raises; atomic_path tells a full disk
        return image

    def load_float(self, path: Path, size: int) -> torch.Tensor:
        """The cached image as float32 in [0, 1], (3, size, size)."""
        return TF.to_dtype(torch.from_numpy(self.load(path, size)), torch.float32, scale=True)


def _compact(image: np.ndarray) -> np.ndarray:
    # A grayscale source decodes to three equal channels: keep one.
    if image.shape[0] == 3 and (image[0] == image[1]).all() and (image[1] == image[2]).all():
        return image[:1].copy()
    return image


def _expand(image: np.ndarray) -> np.ndarray:
    return np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image


__all__ = ["RECIPE", "ImageCache", "decode_resized"]
