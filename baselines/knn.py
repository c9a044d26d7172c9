"""1-NN: the distance to the nearest training feature, on DifferNet's feature pipeline.

Follows the DifferNet paper's adaptation (Sec. 4.3, Tables 1 and 2, column "1-NN"): "the
distance to the nearest neighbor (1-NN) after PCA reduction to 64 dimensions and z-score
normalization [21]", with "every technique of our pipeline (see Figure 2)" kept and only the
normalizing flow replaced. So the features are DifferNet's multi-scale pooled features of the
same transformed training images (the bank), and an image's score is the mean over its test
transforms of the distance of each transformed copy's feature to its nearest training feature.

Where the paper is silent (our choices, fixed before looking at any test label):

- Order of the two steps: z-score first (per feature, with the training bank's mean and
  standard deviation), then PCA to 64 dimensions fitted on the standardised bank. Standardising
  first keeps PCA from being dominated by the few channels of largest raw variance.
- No whitening after PCA; Euclidean distance; every training image under every bank transform
  is a candidate neighbour.
- With fewer training features than 64 (tiny runs), PCA keeps as many components as there are.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> knn = KNN(KNNConfig(pca_components=4))
>>> knn._fit_density(rng.normal(size=(20, 2, 8)).astype(np.float32))
>>> knn._score_features(rng.normal(size=(3, 5, 8)).astype(np.float32)).shape
(3, 5)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.neighbors import NearestNeighbors
from torch import nn

from bench.config import FeatureConfig
from bench.features.graphs import NearestDistance, ZScorePCA
from bench.features.pipeline import (
    FeaturePipelineDetector,
    feature_presets,
    fit_zscore_pca,
    zscore_pca,
)
from bench.registry import register_method


@dataclass(frozen=True)
class KNNConfig(FeatureConfig):
    """1-NN on the shared features (Sec. 4.3). Feature fields are DifferNet's defaults."""

    pca_components: int = 64  # Sec. 4.3: "PCA reduction to 64 dimensions"
    standardize: bool = True  # Sec. 4.3: "z-score normalization" (before PCA: ours)
    n_neighbors: int = 1  # Sec. 4.3: the distance to the nearest neighbour


KNN_PRESETS = feature_presets()


@register_method(
    "knn", config_cls=KNNConfig, presets=KNN_PRESETS, paper_name="1-NN", uses_backbone=True,
    family="paper",
)
class KNN(FeaturePipelineDetector):
    """Learned state: ``scaler_`` (or None), ``pca_``, ``index_`` (a fitted NearestNeighbors)."""

    config: KNNConfig

    def _project(self, flat: np.ndarray) -> np.ndarray:
        return zscore_pca(flat, self.scaler_, self.pca_)

    def _fit_density(self, bank: np.ndarray) -> None:
        flat = bank.reshape(-1, bank.shape[-1])
        self.scaler_, self.pca_ = fit_zscore_pca(flat, self.config.standardize,
                                                 self.config.pca_components)
        x = self._project(flat)
        self.index_ = NearestNeighbors(n_neighbors=self.config.n_neighbors).fit(x)
        self.context.info["knn_pca_components"] = int(x.shape[1])
        self.context.info["knn_train_features"] = int(x.shape[0])

    def _score_features(self, feats: np.ndarray) -> np.ndarray:
        n, t, dim = feats.shape
        distances, _ = self.index_.kneighbors(self._project(feats.reshape(-1, dim)))
        return distances.mean(axis=1).reshape(n, t)

    def density_graph(self) -> nn.Module:
        return nn.Sequential(ZScorePCA(self.scaler_, self.pca_), NearestDistance(self.index_))
