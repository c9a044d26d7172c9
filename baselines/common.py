"""What the image-based baselines (GeoTrans, GANomaly, DSEBM, ADGAN) share: images loaded
once as a small tensor, index batches, seeding that leaves the global random state alone, and
the first step of ``fit`` (``ImageBaseline``, a ``bench.registry.DetectorBase``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import Sample
from bench.data.imagecache import ImageCache
from bench.registry import DetectorBase


def load_images(samples: Sequence[Sample], size: int, channels: int = 3,
                images: ImageCache | None = None) -> torch.Tensor:
    """Images resized to ``size`` x ``size``, float in [-1, 1], shape (N, channels, size, size),
    read through the shared decode cache ``images`` when given.

    ``channels=1`` converts to grayscale (MTD is grayscale; the GAN baselines then model one
    channel instead of three identical ones).
    """
    images = images or ImageCache(None)
    out = torch.empty(len(samples), channels, size, size)
    for i, sample in enumerate(samples):
        image = images.load_float(sample.path, size)
        if channels == 1:
            image = TF.rgb_to_grayscale(image)
        out[i] = image * 2 - 1
    return out


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[np.random.Generator]:
    """Torch's CPU generator seeded for the block (restored after); yields a NumPy generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield np.random.default_rng(seed)


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """Three-channel images in [-1, 1] as ``channels`` channels (1: the mean of the three)."""
    if channels == 3:
        return images
    if channels == 1:
        return images.mean(dim=1, keepdim=True)
    raise ValueError(f"channels must be 1 or 3, got {channels}")


def load_train_images(samples: Sequence[Sample], size: int, channels: int | None,
                      cache: ImageCache | None = None) -> tuple[torch.Tensor, int]:
    """Training images (N, C, size, size) in [-1, 1] and C; ``channels=None`` picks 1 when
    every training image is grayscale (R = G = B), else 3. Test labels are never looked at."""
    images = load_images(samples, size, 3, cache)
    if channels is None:
        gray = bool(torch.all(images[:, 0] == images[:, 1]) and torch.all(images[:, 1] == images[:, 2]))
        channels = 1 if gray else 3
    return to_channels(images, channels), channels


def load_test_images(samples: Sequence[Sample], size: int, channels: int,
                     cache: ImageCache | None = None) -> torch.Tensor:
    return to_channels(load_images(samples, size, 3, cache), channels)


def batches(n: int, batch_size: int, rng: np.random.Generator | None = None,
            min_size: int = 1) -> Iterator[np.ndarray]:
    """Index batches over ``range(n)``, shuffled by ``rng`` when given; batches smaller than
    ``min_size`` (a lone image would break BatchNorm in training) are left out."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if len(idx) >= min_size:
            yield idx


class ImageBaseline(DetectorBase):
    """Base of the image baselines: hyperparameters in ``config``, the run in ``context``.

    Saveable (``run --save-models``, ``bench.py predict``): the learned state is every attribute
    ending in ``_``, trained networks included (pickled whole); an image's score is its own
    (``DetectorBase``'s ``Predictor``) unless a method says otherwise."""

    def _load_train(self, train: Sequence[Sample], follows: str, **info: Any) -> torch.Tensor:
        """The first step of ``fit``: forgets what an earlier fit learned (``reset``); returns
        the training images at the config's size; sets ``channels_`` and ``train_files_`` and
        records in the run's info what was trained on and which paper the method follows."""
        cfg = self.config
        self.reset()
        self.train_files_ = [s.path.name for s in train]  # what a checkpoint must match
        images, self.channels_ = load_train_images(train, cfg.image_size, cfg.channels,
                                                   self.images())
        self.context.info.update(image_size=cfg.image_size, channels=self.channels_,
                                 follows=follows, **info)
        return images

    def _load_test(self, test: Sequence[Sample]) -> torch.Tensor:
        return load_test_images(test, self.config.image_size, self.channels_, self.images())
