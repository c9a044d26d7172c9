"""What every method on a frozen ImageNet backbone shares: ``BackboneDetector``, the base of
the pooled pipeline's ``FeaturePipelineDetector`` (DifferNet, OCSVM, 1-NN) and the feature
maps' ``SpatialDetector`` (PatchCore, PaDiM, CS-Flow), and the Gaussian smoothing of their
anomaly and gradient maps."""

from __future__ import annotations

import math

import torch
import torchvision.transforms.v2.functional as TF

from bench.config import BackboneConfig
from bench.features.engines import Engine, shared_engine
from bench.registry import DetectorBase


class BackboneDetector(DetectorBase):
    """A ``DetectorBase`` whose ``config`` is a ``BackboneConfig``: the backbone runs in one
    shared inference engine per process (``extractor_engine``, ``extractor_precision``), and
    the record says which engine ran it and with which weights."""

    config: BackboneConfig

    def _engine_outputs(self) -> tuple[int | None, tuple[int, ...] | None]:
        """What the engine gives: ``(stage, None)``, the backbone's pooled features up to
        ``stage`` (None: its default), or ``(None, stages)``, the maps of those stages."""
        raise NotImplementedError

    def _engine(self) -> Engine:
        cfg = self.config
        stage, maps = self._engine_outputs()
        engine = shared_engine(cfg.backbone, stage, cfg.extractor_engine, self.context.device,
                               cfg.extractor_precision, maps=maps)
        self.context.info.update(extractor_engine=engine.describe(),
                                 backbone_weights=engine.backbone.weights)
        if maps is not None:
            self.context.info["backbone_stages"] = list(maps)
        return engine


def gaussian_smooth(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """``maps`` (..., H, W) smoothed by a Gaussian of ``sigma`` pixels, its kernel cut at three
    sigma on each side; ``sigma`` 0 leaves them as they are. PatchCore's and PaDiM's maps
    (sigma = 4, their papers) and DifferNet's gradient maps (Eq. 7) are smoothed so."""
    if sigma <= 0:
        return maps
    kernel = 2 * math.ceil(3 * sigma) + 1
    return TF.gaussian_blur(maps, [kernel, kernel], [sigma, sigma])
