"""Drawing the transforms T of Sec. 3.2 / 4.2 from seeded generators: NumPy only, so the
runtime of an exported model (``bench.deploy.export.runtime``) draws exactly what the pipeline draws
without importing torch.

A transform is three numbers: angle in degrees, brightness factor, contrast factor.

>>> from bench.config import FeatureConfig
>>> new_image_transforms(FeatureConfig(n_test_transforms=4), 0, "ab" * 32).shape
(4, 3)
"""

from __future__ import annotations

import numpy as np

from bench.config import FeatureConfig

# Independent random streams of one cell, all derived from the cell seed.
STREAM_TRAIN_TRANSFORMS, STREAM_TEST_TRANSFORMS, STREAM_EPOCHS = 1, 2, 3

IDENTITY = np.array([0.0, 1.0, 1.0], dtype=np.float32)


def draw_transforms(config: FeatureConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random transforms, shape (n, 3): angle ~ U[0, rotation_degrees), factors ~ U[range]."""
    params = np.tile(IDENTITY, (n, 1))
    params[:, 0] = rng.uniform(0.0, config.rotation_degrees, size=n)
    if config.photometric:
        low, high = config.photometric_range
        params[:, 1:] = rng.uniform(low, high, size=(n, 2))
    return params


def _right_angles(params: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Angles replaced by multiples of 90 degrees: transform j of an image is rotated by
    90 * ((j + offset) mod 4) with a random offset per image, so 4 transforms give all four."""
    n_images, n, _ = params.shape
    offsets = rng.integers(0, 4, size=(n_images, 1))
    params[:, :, 0] = 90.0 * ((np.arange(n)[None, :] + offsets) % 4)
    return params


def _draw(config: FeatureConfig, n_images: int, n: int, rng: np.random.Generator) -> np.ndarray:
    params = draw_transforms(config, n_images * n, rng).reshape(n_images, n, 3)
    if config.rotation_mode == "right_angles":
        return _right_angles(params, rng)
    if config.rotation_mode != "uniform":
        raise ValueError(f"unknown rotation_mode {config.rotation_mode!r}")
    return params


def train_transforms(config: FeatureConfig, n_images: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Transforms for the training bank, shape (n_images, n, 3); identity when switched off."""
    if not config.train_transforms:
        return np.tile(IDENTITY, (n_images, 1, 1))
    return _draw(config, n_images, n, rng)


def test_transforms(config: FeatureConfig, n_images: int, rng: np.random.Generator) -> np.ndarray:
    """Transforms for scoring, shape (n_images, n_test, 3).

    One test transform means the original image only (Sec. 4.5). ``even`` spaces the rotations
    evenly instead of drawing them (still drawing the photometric factors).
    """
    n = config.n_test_transforms
    if n == 1:
        return np.tile(IDENTITY, (n_images, 1, 1))
    params = _draw(config, n_images, n, rng)
    if config.test_transform_mode == "even":
        params[:, :, 0] = np.arange(n) * (config.rotation_degrees / n)
    elif config.test_transform_mode != "random":
        raise ValueError(f"unknown test_transform_mode {config.test_transform_mode!r}")
    return params


def new_image_transforms(config: FeatureConfig, seed: int, key: str) -> np.ndarray:
    """The test transforms (n_test, 3) of an image a run did not score, named by its content
    ``key``: drawn from the seed and the image's content alone, so its score does not depend on
    the images scored with it."""
    rng = np.random.default_rng([seed, STREAM_TEST_TRANSFORMS, int(key[:15], 16)])
    return test_transforms(config, 1, rng)[0]
