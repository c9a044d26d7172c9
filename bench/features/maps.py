"""Spatial feature maps: the frozen backbone's maps at some stages, of untransformed images at
one or more input sizes, computed in batches and cached on disk by what they depend on. What
the patch-level methods (PatchCore, PaDiM, CS-Flow) read; the pooled pipeline's ``bank`` is the
same idea for pooled features of transformed images. Each stage at each input size is a cache
entry of its own (``cached_stage_maps``), so a grid over stages and the three methods together
compute each stage of each image once per input recipe (a stage not cached yet costs one more
pass, for the missing stages alone).

An image is decoded once at ``decode_size`` (the shared ``ImageCache``), centre-cropped to
``crop`` if asked (the PatchCore/PaDiM protocol: resize to 256, crop 224), resized to each of
``sizes``, normalised, and run through the engine's ``FeatureMaps``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import Sample
from bench.data.imagecache import RECIPE, ImageCache
from bench.features.bank import cached, decoded, is_cached, stack_uint8
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


def stage_cache_key(engine: Engine, images: ImageCache, samples: Sequence[Sample],
                    recipe: MapRecipe, size: int, stage: int) -> str:
    """Everything one stage's maps at one input size depend on: backbone, stage, engine and
    precision, how the image became the input, and the files' contents. Per stage (not per set
    of stages), so a grid over stages, and methods reading other stages of the same input,
    compute each stage of each image once."""
    blob = json.dumps({
        "kind": "stage-maps", "backbone": engine.backbone.name, "stage": stage,
        "engine": engine.name, "precision": engine.precision, "image_recipe": RECIPE,
        "decode_size": recipe.decode_size, "crop": recipe.crop, "size": size,
        "files": [images.key(s.path) for s in samples],
    }, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached_stage_maps(engine_for: Callable[[tuple[int, ...]], Engine], images: ImageCache,
                      samples: Sequence[Sample], recipe: MapRecipe, stages: tuple[int, ...],
                      cache_dir: Path | None, batch_size: int = 16, progress: bool = False,
                      desc: str = "feature maps") -> list[list[np.ndarray]]:
    """``out[i][j]``: the maps at ``recipe.sizes[i]`` of ``stages[j]``, each stage at each size
    a cache entry of its own; what is not cached is extracted (``engine_for(stages)`` gives an
    engine for those stages) in one pass over the images, every missing size at once."""
    keyer = engine_for(stages)  # backbone, engine and precision are the same for any stages
    keys = {(size, s): stage_cache_key(keyer, images, samples, recipe, size, s)
            for size in recipe.sizes for s in stages}
    missing = [entry for entry, key in keys.items() if not is_cached(cache_dir, key)]
    fresh: dict[tuple[int, int], np.ndarray] = {}

    def compute(size: int, stage: int) -> np.ndarray:
        if (size, stage) not in fresh:  # the first missing entry extracts every missing one
            entries = {*missing, (size, stage)}
            sizes = tuple(z for z in recipe.sizes if z in {z for z, _ in entries})
            wanted = tuple(sorted({s for _, s in entries}))
            per_size = extract_maps(engine_for(wanted), images, samples,
                                    MapRecipe(recipe.decode_size, recipe.crop, sizes),
                                    batch_size, progress, desc)
            for z, maps in zip(sizes, per_size):
                fresh.update({(z, s): m for s, m in zip(wanted, maps) if (z, s) in entries})
        return fresh.pop((size, stage))

    return [[cached(cache_dir, keys[(size, s)], lambda size=size, s=s: compute(size, s))
             for s in stages] for size in recipe.sizes]
