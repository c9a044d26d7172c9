"""The pipeline DifferNet, OCSVM and 1-NN share (Fig. 2): transforms, frozen multi-scale
features, a density model, the mean score over test transforms (Eq. 5).

As FrEIA's coupling blocks share one base class and differ only in ``_coupling1/2``, the
feature-based detectors share this class and differ only in ``_fit_density`` and
``_score_features`` (the paper's OCSVM and 1-NN are "our pipeline with the normalizing flow
replaced", Sec. 4.3).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from bench.config import FeatureConfig
from bench.data.base import Sample
from bench.data.content import content_key
from bench.errors import BenchError
from bench.features.ahead import FeaturesAhead, Part, features_ahead
from bench.features.backbones import shared_backbone
from bench.features.bank import cached, extract, feature_cache_key, is_cached
from bench.features.base import BackboneDetector
from bench.features.extractor import MultiScaleExtractor
from bench.transform_draws import (
    STREAM_TEST_TRANSFORMS,
    STREAM_TRAIN_TRANSFORMS,
    new_image_transforms,
    test_transforms,
    train_transforms,
)

log = logging.getLogger(__name__)

# The presets of the shared features (feature fields only), which DifferNet, OCSVM and 1-NN
# extend: with the same values the feature bank and the test features are the same arrays (same
# cache key, same seeded transform streams), so a run of DifferNet and 1-NN extracts features
# once. ``code`` is the paper's here (config.PRESET_FALLBACK); DifferNet has its own.
FEATURE_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    # A few minutes: a bank of 8 training transforms per image, 4 test transforms.
    "fast": dict(n_bank_transforms=8, n_test_transforms=4),
    # The best 2 CPU cores afford: a bank of 16 fresh transforms per image, 32 test transforms
    # (the paper's 64 would take about 21 minutes of extraction per MTD cell at 30 images/s).
    "cpu": dict(n_bank_transforms=16, n_test_transforms=32),
    # For tests and the smoke suite: 64-pixel images, 4 transforms.
    "tiny": dict(image_size=64, scales=(64, 32, 16), n_bank_transforms=4, n_test_transforms=4),
}


def feature_presets(extra: dict[str, dict] | None = None) -> dict[str, dict]:
    """The presets of a method on the shared features: ``FEATURE_PRESETS``, plus ``extra``
    overrides per preset."""
    extra = extra or {}
    return {name: {**values, **extra.get(name, {})} for name, values in FEATURE_PRESETS.items()}


def fit_zscore_pca(flat: np.ndarray, standardize: bool,
                   components: int | None) -> tuple[StandardScaler | None, PCA | None]:
    """What 1-NN and OCSVM learn before their density model (Sec. 4.3): a z-score with the
    training features' mean and deviation (or None), then a PCA to ``components`` dimensions
    fitted on the standardised features (or None; at most as many as there are features)."""
    x = flat.astype(np.float64)
    scaler = StandardScaler().fit(x) if standardize else None
    if not components:
        return scaler, None
    x = scaler.transform(x) if scaler is not None else x
    # svd_solver="full" is exact and deterministic (no randomised SVD).
    pca = PCA(n_components=min(components, *x.shape), svd_solver="full").fit(x)
    return scaler, pca


def zscore_pca(flat: np.ndarray, scaler: StandardScaler | None, pca: PCA | None) -> np.ndarray:
    """Features through ``fit_zscore_pca``'s z-score and PCA (either may be None)."""
    x = flat.astype(np.float64)
    x = scaler.transform(x) if scaler is not None else x
    return pca.transform(x) if pca is not None else x


def warn_unseen_test_transforms(config: FeatureConfig) -> bool:
    """Warn (and say True) when the model is trained on untransformed images only but scored
    under several transforms: it then scores rotations it never saw, which reads as defects
    (MTD: 52.5 AUROC). Table 3's configurations without training transforms (A, C) score the
    untransformed image alone."""
    if config.train_transforms or config.n_test_transforms == 1:
        return False
    log.warning("train_transforms is off but n_test_transforms is %d: the model scores "
                "transforms it never saw in training; add --set n_test_transforms=1 (as the "
                "paper's Table 3, A and C) or leave train_transforms on.",
                config.n_test_transforms)
    return True


class FeaturePipelineDetector(BackboneDetector):
    """Base class: subclasses implement ``_fit_density(bank)`` and ``_score_features(feats)``;
    ``fit`` extracts the bank and ``score`` the test features under the seeded transforms."""

    NOT_SAVED = frozenset({"extractor_"})  # the frozen backbone comes from where the run got it
    config: FeatureConfig

    # -- what subclasses write -------------------------------------------------------------
    def _fit_density(self, bank: np.ndarray) -> None:
        """Learn from training features, shape (n_images, n_transforms, dim)."""
        raise NotImplementedError

    def _score_features(self, feats: np.ndarray) -> np.ndarray:
        """Anomaly score of each transformed image, (n_images, n_transforms) -> same shape."""
        raise NotImplementedError

    def density_graph(self):
        """``_score_features`` of a fitted detector as a torch module, features (N, D) -> scores
        (N,), for ``bench.py export``; a method that has none cannot be exported."""
        raise BenchError(f"method {type(self).__name__} cannot be exported: it defines no "
                         "density_graph(); predict with its .pt model instead.")

    # -- the shared work -------------------------------------------------------------------
    def _extractor(self) -> MultiScaleExtractor:
        """The differentiable PyTorch extractor (gradient maps need it)."""
        if getattr(self, "extractor_", None) is None:
            backbone = shared_backbone(self.config.backbone, self.config.backbone_stage)
            self.extractor_ = MultiScaleExtractor(backbone, self.config)
        return self.extractor_

    def _engine_outputs(self) -> tuple[int | None, None]:
        return self.config.backbone_stage, None  # pooled features of the backbone's stage

    def features(self, samples: Sequence[Sample], params: np.ndarray, desc: str) -> np.ndarray:
        """Features of ``samples`` under ``params`` (N, K, D), from the on-disk cache if there
        (and what was extracted ahead, during the fit, ``expect``)."""
        engine, images, caches = self._engine(), self.images(), self.context.caches
        key = feature_cache_key(engine, self.config, images, samples, params)

        def compute() -> np.ndarray:
            ahead = getattr(self, "_ahead", None)
            taken = None if ahead is None else ahead.take(key)
            if taken is None:
                return extract(engine, images, samples, params, self.config,
                               self.context.progress, desc)
            feats, done = taken
            if done < len(samples):
                feats[done:] = extract(engine, images, samples[done:], params[done:],
                                       self.config, self.context.progress, desc)
            return feats

        return cached(None if caches is None else caches.features, key, compute)

    def expect(self, sets: Sequence[Sequence[Sample]]) -> None:
        """``bench.registry.ScoringExpected``: the sets ``score`` will get after the next fit,
        in order; their features are extracted on an engine stream the fit leaves idle."""
        self._expected = [list(samples) for samples in sets]

    def _features_ahead(self):
        """Around the density model's training: the expected sets' features extracted meanwhile
        (``bench.features.ahead``), those not cached yet."""
        engine, images, caches = self._engine(), self.images(), self.context.caches
        parts, keys = [], set()
        for samples in getattr(self, "_expected", []):
            params = self.test_params(len(samples))
            key = feature_cache_key(engine, self.config, images, samples, params)
            if key not in keys and not is_cached(None if caches is None else caches.features, key):
                parts.append(Part(key, samples, params))
                keys.add(key)
        return features_ahead(engine, images, self.config, parts)

    def train_params(self, n_images: int) -> np.ndarray:
        n = self.config.n_bank_transforms if self.config.train_transforms else 1
        return train_transforms(self.config, n_images, n, self._rng(STREAM_TRAIN_TRANSFORMS))

    def test_params(self, n_images: int) -> np.ndarray:
        return test_transforms(self.config, n_images, self._rng(STREAM_TEST_TRANSFORMS))

    def fit(self, train: Sequence[Sample]):
        self.reset()
        warn_unseen_test_transforms(self.config)
        self.train_files_ = [s.path.name for s in train]
        bank = self.features(train, self.train_params(len(train)), "train features")
        self.feature_dim_ = bank.shape[-1]
        with self._features_ahead() as ahead:
            self._ahead: FeaturesAhead | None = ahead
            self._fit_density(bank)
        if ahead is not None:
            self.context.info["features_ahead"] = {"images": ahead.images_done(),
                                                   "seconds": round(ahead.seconds, 1)}
        return self

    def _pace(self) -> None:
        """Between epochs of a training: the cores back once the features ahead are done."""
        if getattr(self, "_ahead", None) is not None:
            self._ahead.pace()

    def score_transforms(self, test: Sequence[Sample]) -> np.ndarray:
        """Score of every test transform, (n_images, n_test_transforms)."""
        feats = self.features(test, self.test_params(len(test)), "test features")
        return self._score_features(feats)

    def score(self, test: Sequence[Sample]) -> np.ndarray:
        """tau(x) of Eq. 5: the mean score over the test transforms."""
        return self.score_transforms(test).mean(axis=1)

    # -- a saved model (run --save-models, bench.py predict) ---------------------------------
    def transforms_for(self, keys: Sequence[str], run_keys: Sequence[str]) -> np.ndarray:
        """Test transforms (n, n_test, 3) for images named by content ``keys``: an image the run
        scored gets exactly the transforms it was scored under (its row among ``run_keys``, the
        run's test images in order); any other image its own, drawn from the seed and its
        content, so its score does not depend on the images scored with it."""
        run = self.test_params(len(run_keys)) if run_keys else None
        where = {key: i for i, key in enumerate(run_keys)}
        rows = []
        for key in keys:
            if key in where:
                rows.append(run[where[key]])
            else:
                rows.append(new_image_transforms(self.config, self.context.seed, key))
        return np.stack(rows)

    def score_under(self, samples: Sequence[Sample], params: np.ndarray) -> np.ndarray:
        """Eq. 5's mean score of each sample under its own transforms ``params`` (n, T, 3)."""
        feats = self.features(samples, params, "features")
        return self._score_features(feats).mean(axis=1)

    def score_new(self, samples: Sequence[Sample], run_keys: Sequence[str]) -> np.ndarray:
        """``bench.registry.Predictor``: each image under the transforms ``transforms_for``
        gives it, so its score is its own (``scores_alone``)."""
        keys = [content_key(s.path) for s in samples]
        return self.score_under(samples, self.transforms_for(keys, run_keys))
