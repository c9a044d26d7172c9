"""Spatial feature maps: the frozen backbone's maps at some stages, of untransformed images at
one or more input sizes, computed in batches and cached on disk by what they depend on. What
the patch-level methods (PatchCore, PaDiM, CS-Flow) read; the pooled pipeline's ``bank`` is the
same idea for pooled features of transformed images.

An image is decoded once at ``decode_size`` (the shared ``ImageCache``), centre-cropped to
``crop`` if asked (the PatchCore/PaDiM protocol: resize to 256, crop 224), resized to each of
``sizes``, normalised, and run through the engine's ``FeatureMaps``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import Sample
from bench.data.imagecache import RECIPE, ImageCache
from bench.features.bank import decoded, stack_uint8
from bench.features.engines import Engine
from bench.features.transforms import normalized_scales
from bench.progress import progress as progress_bar


@dataclass(frozen=True)
class MapRecipe:
    """How an image becomes the backbone's input: decoded at ``decode_size`` (square),
    centre-cropped to ``crop`` (None: no crop), resized to each of ``sizes``."""

    decode_size: int
    crop: int | None
    sizes: tuple[int, ...]

    @property
    def input_size(self) -> int:
        return self.crop or self.decode_size


def inputs(batch: torch.Tensor, recipe: MapRecipe) -> list[torch.Tensor]:
    """uint8 images (B, C, S, S) -> the normalised input at each of the recipe's sizes."""
    floats = TF.to_dtype(batch, torch.float32, scale=True)
    if recipe.crop is not None:
        floats = TF.center_crop(floats, [recipe.crop, recipe.crop])
    return normalized_scales(floats, recipe.sizes)


def extract_maps(engine: Engine, images: ImageCache, samples: Sequence[Sample],
                 recipe: MapRecipe, batch_size: int = 16, progress: bool = False,
                 desc: str = "feature maps") -> list[list[np.ndarray]]:
    """``out[i][j]``: the maps at ``recipe.sizes[i]`` of the engine's j-th stage, (N, C, h, w)
    float32, in the order of ``samples``."""
    n = len(samples)
    out: list[list[np.ndarray]] | None = None
    pending: list[np.ndarray] = []
    start = 0

    def flush() -> None:
        nonlocal out, start
        scaled = inputs(stack_uint8(pending), recipe)
        results = [engine.outputs(x) for x in scaled]
        if out is None:  # shapes are known once the first batch ran
            out = [[np.empty((n, *m.shape[1:]), np.float32) for m in per_size]
                   for per_size in results]
        for i, per_size in enumerate(results):
            for j, maps in enumerate(per_size):
                out[i][j][start:start + len(pending)] = maps
        start += len(pending)
        pending.clear()

    with progress_bar(n, desc, enabled=progress, unit="img") as bar:
        for image in decoded(images, samples, recipe.decode_size):
            pending.append(image)
            if len(pending) == batch_size:
                flush()
                bar.update(batch_size)
        if pending:
            bar.update(len(pending))
            flush()
    assert out is not None, "no samples to extract"
    return out


def maps_cache_key(engine: Engine, images: ImageCache, samples: Sequence[Sample],
                   recipe: MapRecipe, stages: tuple[int, ...]) -> str:
    """Everything the maps depend on: backbone, stages, engine and precision, the recipe and
    the files' contents."""
    blob = json.dumps({
        "kind": "maps", "backbone": engine.backbone.name, "stages": list(stages),
        "engine": engine.name, "precision": engine.precision, "image_recipe": RECIPE,
        "decode_size": recipe.decode_size, "crop": recipe.crop, "sizes": list(recipe.sizes),
        "files": [images.key(s.path) for s in samples],
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
