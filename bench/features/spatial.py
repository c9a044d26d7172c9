"""What the patch-level methods share (PatchCore, PaDiM, CS-Flow): the frozen backbone's feature
maps of the images (``maps``), cached on disk like the pooled pipeline's features, and the step
from a coarse patch-score grid to a full-image anomaly map.

As ``FeaturePipelineDetector`` is for the pooled methods, ``SpatialDetector`` is their base
class (both extend ``bench.features.base.BackboneDetector``): a subclass implements ``fit`` and
``score`` (and ``localize``) on ``feature_maps``. They score each image alone, so they are
``Saveable`` and ``Predictor``s (``run --save-models``, ``predict``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from bench.config import SpatialConfig
from bench.data.base import Sample
from bench.features.backbones import shared_backbone
from bench.features.base import BackboneDetector, gaussian_smooth
from bench.features.engines import Engine, shared_engine
from bench.features.maps import MapRecipe, cached_stage_maps


class SpatialDetector(BackboneDetector):
    """Base class of the patch-level methods; ``config`` is a ``SpatialConfig``."""

    config: SpatialConfig

    # -- the feature maps --------------------------------------------------------------------
    def stages(self) -> tuple[int, ...]:
        """The backbone stages read: ``stages``, or the last stage at each feature stride."""
        cfg = self.config
        backbone = shared_backbone(cfg.backbone)
        if cfg.stages is not None:
            return backbone.check_stages(tuple(cfg.stages))
        return backbone.check_stages(tuple(backbone.last_stage_at(s) for s in cfg.feature_strides))

    def recipe(self, sizes: tuple[int, ...] | None = None) -> MapRecipe:
        """How an image becomes the backbone's input (at ``sizes``; default: ``image_size``)."""
        cfg = self.config
        if cfg.resize is None:
            return MapRecipe(cfg.image_size, None, sizes or (cfg.image_size,))
        return MapRecipe(cfg.resize, cfg.image_size, sizes or (cfg.image_size,))

    def _engine_outputs(self) -> tuple[None, tuple[int, ...]]:
        return None, self.stages()  # the maps of these stages

    def feature_maps(self, samples: Sequence[Sample], desc: str,
                     sizes: tuple[int, ...] | None = None) -> list[list[np.ndarray]]:
        """``out[i][j]``: maps (N, C, h, w) at input size ``sizes[i]`` of stage ``stages()[j]``,
        each stage from the on-disk cache when there (``maps.cached_stage_maps``)."""
        cfg, caches = self.config, self.context.caches
        self._engine()  # what ran, for the record

        def engine_for(stages: tuple[int, ...]) -> Engine:
            return shared_engine(cfg.backbone, None, cfg.extractor_engine, self.context.device,
                                 cfg.extractor_precision, maps=stages)

        return cached_stage_maps(engine_for, self.images(), samples, self.recipe(sizes),
                                 self.stages(), None if caches is None else caches.features,
                                 cfg.extract_batch_size, self.context.progress, desc)

    # -- maps over the whole image --------------------------------------------------------------
    def full_image_maps(self, grid: torch.Tensor, sigma: float) -> np.ndarray:
        """Patch scores (n, h, w) -> anomaly maps over the whole image (n, S, S): upsampled
        bilinearly to the backbone's input, smoothed by a Gaussian of ``sigma`` pixels (the
        papers' sigma = 4), and, when the input was a centre crop, the crop's border values
        carried out to the decoded image's edges (so a map always covers the whole image, as
        every other method's does)."""
        recipe = self.recipe()
        size = recipe.input_size
        maps = gaussian_smooth(F.interpolate(grid[:, None].float(), size=(size, size),
                                             mode="bilinear", align_corners=False), sigma)
        if recipe.crop is not None:
            before = (recipe.decode_size - recipe.crop) // 2
            after = recipe.decode_size - recipe.crop - before
            maps = F.pad(maps, (before, after, before, after), mode="replicate")
        return maps[:, 0].cpu().numpy()

    def once(self, test: Sequence[Sample], compute):
        """``compute()``, kept for the same test images: the runner asks a fitted detector
        for scores and then for maps of the same images, which share their expensive part.
        (Not for a detector still training: its results change between calls.)"""
        key = tuple(str(s.path) for s in test)
        memo = getattr(self, "_memo", None)
        if memo is None or memo[0] != key:
            self._memo = memo = (key, compute())
        return memo[1]

    def reset(self) -> None:
        """Also drop what ``once`` kept: a fit makes a new model."""
        super().reset()
        self._memo = None
