"""Mahalanobis distance to the training features, on DifferNet's shared feature pipeline.

The pattern of Rippel et al. ("Modeling the distribution of normal data in pre-trained deep
features for anomaly detection", ICPR 2020), applied to the pooled multi-scale features every
feature method here shares: fit one Gaussian to the features of the transformed training
images (shrinkage covariance, Ledoit-Wolf, as the features outnumber small training sets),
score a test image by the mean Mahalanobis distance of its transformed copies.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> detector = Mahalanobis(MahalanobisConfig())
>>> detector._fit_density(rng.normal(size=(30, 2, 8)).astype(np.float32))
>>> near = detector._score_features(np.zeros((1, 1, 8), np.float32))
>>> far = detector._score_features(np.full((1, 1, 8), 5, np.float32))
>>> bool(far[0, 0] > near[0, 0])
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.covariance import LedoitWolf

from bench.config import FeatureConfig
from bench.features.pipeline import FeaturePipelineDetector, feature_presets
from bench.registry import register_method


@dataclass(frozen=True)
class MahalanobisConfig(FeatureConfig):
    """The shared feature fields (DifferNet's defaults per preset) and nothing else to set."""


@register_method("mahalanobis", config_cls=MahalanobisConfig, presets=feature_presets(),
                 paper_name=None, uses_backbone=True)
class Mahalanobis(FeaturePipelineDetector):
    """Learned state: ``mean_`` and ``precision_`` of the training features."""

    def _fit_density(self, bank: np.ndarray) -> None:
        flat = bank.reshape(-1, bank.shape[-1]).astype(np.float64)
        gaussian = LedoitWolf().fit(flat)
        self.mean_, self.precision_ = gaussian.location_, gaussian.precision_

    def _score_features(self, feats: np.ndarray) -> np.ndarray:
        n, t, dim = feats.shape
        centred = feats.reshape(-1, dim).astype(np.float64) - self.mean_
        squared = np.einsum("ij,jk,ik->i", centred, self.precision_, centred)
        return np.sqrt(np.maximum(squared, 0)).reshape(n, t)
