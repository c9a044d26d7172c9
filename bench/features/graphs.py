"""The feature methods' density models as torch modules, so a saved model becomes one graph from
image to score (``bench.deploy.export``): each maps features (N, D) to the score of every row, the
numbers its detector's ``_score_features`` gives (up to float32 rounding; scikit-learn computes
in float64).

>>> import numpy as np
>>> from sklearn.neighbors import NearestNeighbors
>>> bank = np.array([[0.0, 0.0], [3.0, 4.0]])
>>> NearestDistance(NearestNeighbors(n_neighbors=1).fit(bank))(torch.tensor([[3.0, 0.0]]))
tensor([3.])
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bench.errors import BenchError


def _tensor(values: Any) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).clone()


class ZScorePCA(nn.Module):
    """``pipeline.zscore_pca``: a fitted StandardScaler, then a fitted PCA (either may be None)."""

    def __init__(self, scaler: Any | None, pca: Any | None):
        super().__init__()
        self.standardize, self.project = scaler is not None, pca is not None
        if scaler is not None:
            self.register_buffer("mean", _tensor(scaler.mean_))
            self.register_buffer("scale", _tensor(scaler.scale_))
        if pca is not None:
            self.register_buffer("pca_mean", _tensor(pca.mean_))
            self.register_buffer("components", _tensor(pca.components_).T.contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            x = (x - self.mean) / self.scale
        if self.project:
            x = (x - self.pca_mean) @ self.components
        return x


def squared_distances(x: torch.Tensor, points: torch.Tensor, points_sq: torch.Tensor) -> torch.Tensor:
    """||x_i - p_j||^2, (N, M), as ||x||^2 - 2 x.p + ||p||^2 (no (N, M, D) intermediate)."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ points.T + points_sq).clamp_min(0)


class OneClassSVMScore(nn.Module):
    """The negated decision function of a fitted RBF ``OneClassSVM``: -(sum_i a_i K(x, s_i) - rho)."""

    def __init__(self, svm: Any):
        super().__init__()
        if svm.kernel != "rbf":
            raise BenchError(f"an OCSVM with the {svm.kernel} kernel cannot be exported yet (only "
                             "rbf); save and predict with the .pt model instead.")
        self.gamma = float(svm._gamma)
        self.register_buffer("support", _tensor(svm.support_vectors_))
        self.register_buffer("support_sq", self.support.pow(2).sum(1))
        self.register_buffer("coef", _tensor(svm.dual_coef_).reshape(-1))
        self.intercept = float(svm.intercept_[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = torch.exp(-self.gamma * squared_distances(x, self.support, self.support_sq))
        return -(kernel @ self.coef + self.intercept)


class NearestDistance(nn.Module):
    """The mean distance to the k nearest points of a fitted ``NearestNeighbors`` index."""

    def __init__(self, index: Any):
        super().__init__()
        self.k = int(index.n_neighbors)
        self.register_buffer("points", _tensor(index._fit_X))
        self.register_buffer("points_sq", self.points.pow(2).sum(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nearest = torch.topk(squared_distances(x, self.points, self.points_sq), self.k, dim=1,
                             largest=False).values
        return nearest.sqrt().mean(dim=1)


class MethodScore(nn.Module):
    """``module.<name>(x)`` as a module (a flow's ``latent_nll``, say)."""

    def __init__(self, module: nn.Module, name: str):
        super().__init__()
        self.module, self.name = module.eval(), name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.module, self.name)(x)


__all__ = ["MethodScore", "NearestDistance", "OneClassSVMScore", "ZScorePCA"]
