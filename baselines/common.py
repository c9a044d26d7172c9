"""What the image-based baselines (GeoTrans, GANomaly, DSEBM, ADGAN) share: images loaded
once as a small tensor, and seeding that leaves the global random state alone."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import Sample, load_image


def load_images(samples: Sequence[Sample], size: int, channels: int = 3) -> torch.Tensor:
    """Images resized to ``size`` x ``size``, float in [-1, 1], shape (N, channels, size, size).

    ``channels=1`` converts to grayscale (MTD is grayscale; the GAN baselines then model one
    channel instead of three identical ones).
    """
    out = torch.empty(len(samples), channels, size, size)
    for i, sample in enumerate(samples):
        image = TF.pil_to_tensor(load_image(sample.path))
        image = TF.resize(image, [size, size], antialias=True)
        image = TF.to_dtype(image, torch.float32, scale=True)
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
