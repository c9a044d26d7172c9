"""The DifferNet detector: the shared feature pipeline with a normalizing flow as its density
model (Sec. 3), trained by maximum likelihood on the bank of training features (Sec. 3.1.2,
4.2), scored by Eq. 5, localised by gradient maps (Sec. 3.3)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from bench.data.base import Sample
from bench.differnet.config import PRESETS, DifferNetConfig
from bench.differnet.flow import DifferNetFlow
from bench.differnet.localization import gradient_maps
from bench.features.bank import extract
from bench.features.graphs import MethodScore
from bench.features.pipeline import FeaturePipelineDetector
from bench.features.transforms import train_transforms
from bench.registry import register_method
from bench.training import (
    Training,
    mean_over_batches,
    optimizer_step,
    run_training,
    training_autocast,
)
from bench.transform_draws import STREAM_EPOCHS


@register_method(
    "differnet", config_cls=DifferNetConfig, presets=PRESETS,
    paper_name="DifferNet", family="paper", uses_backbone=True,
)
class DifferNet(FeaturePipelineDetector):
    """The DifferNet detector. Learned state: ``flow_``, ``loss_history_``, ``eval_history_``."""

    config: DifferNetConfig

    def fit(self, train: Sequence[Sample]) -> DifferNet:
        if self.config.feature_mode == "bank":
            return super().fit(train)
        if self.config.feature_mode != "recompute":
            raise ValueError(f"unknown feature_mode {self.config.feature_mode!r}")
        # The original code's way: fresh transforms and a forward pass of the extractor per
        # epoch. Kept to check that the bank gives the same AUROC (benchmarks/).
        self.reset()
        self.train_files_ = [s.path.name for s in train]
        engine, images = self._engine(), self.images()
        rng = self._rng(STREAM_EPOCHS)
        m = self.config.transforms_per_image if self.config.train_transforms else 1

        def epoch_features(_epoch: int) -> torch.Tensor:
            params = train_transforms(self.config, len(train), m, rng)
            feats = extract(engine, images, train, params, self.config)
            return torch.from_numpy(feats.reshape(-1, feats.shape[-1]))

        self.feature_dim_ = self._extractor().dim
        self._train(epoch_features, rng, len(train) * m)
        return self

    def _fit_density(self, bank: np.ndarray) -> None:
        rng = self._rng(STREAM_EPOCHS)
        n, k, dim = bank.shape
        m = min(self.config.transforms_per_image, k) if self.config.train_transforms else 1
        bank_t = torch.from_numpy(bank)
        rows = torch.arange(n)[:, None]

        def epoch_features(_epoch: int) -> torch.Tensor:
            # Each epoch sees every image under m transforms drawn from its bank.
            if m == k:
                return bank_t.reshape(-1, dim)
            chosen = torch.from_numpy(rng.random((n, k)).argsort(axis=1)[:, :m])
            return bank_t[rows, chosen].reshape(-1, dim)

        self._train(epoch_features, rng, n * m)

    def _train(self, epoch_features: Callable[[int], torch.Tensor], rng: np.random.Generator,
               rows_per_epoch: int) -> None:
        cfg, device = self.config, self.context.device
        epochs = cfg.train_epochs(rows_per_epoch)
        self.context.info["epochs_trained"] = epochs
        self.flow_ = DifferNetFlow(self.feature_dim_, cfg.n_coupling_blocks, cfg.subnet_hidden,
                                   cfg.subnet_layers, cfg.clamp_alpha, self.context.seed).to(device)
        # The fused Adam kernel: the same update in one pass over the 12-50 M parameters instead
        # of several (about 20 ms a step less on 2 CPU cores; benchmarks/differnet_speed.py).
        optimizer = torch.optim.Adam(self.flow_.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                                     eps=cfg.adam_eps, weight_decay=cfg.weight_decay,
                                     fused=device.split(":")[0] in ("cpu", "cuda"))

        autocast = training_autocast(cfg.train_precision, device)

        def epoch(i: int) -> float:
            self._pace()
            feats = epoch_features(i)
            order = torch.from_numpy(rng.permutation(len(feats)))

            def batch_loss(idx: torch.Tensor) -> float:
                with autocast():
                    loss = self.flow_.nll(feats[idx].to(device)).mean()
                return optimizer_step(optimizer, loss / self.feature_dim_ if cfg.loss_per_dim
                                      else loss)

            return mean_over_batches((order[s:s + cfg.batch_size]
                                      for s in range(0, len(feats), cfg.batch_size)), batch_loss)

        result = run_training(Training(
            desc="flow epochs", loss_name="the flow's loss", epochs=epochs, epoch=epoch,
            modules={"flow": self.flow_}, optimizers={"adam": optimizer},
            generators={"epochs": rng}, train_files=self.train_files_, detector=self,
            eval_every=cfg.eval_every,
        ), self.context)
        self.loss_history_: list[float] = result.loss_history
        self.eval_history_: list[tuple[int, float]] = result.eval_history

    @torch.no_grad()
    def _score_features(self, feats: np.ndarray) -> np.ndarray:
        n, t, dim = feats.shape
        flat = torch.from_numpy(feats.reshape(-1, dim))
        scorer = self.flow_.latent_nll if self.config.score == "latent_nll" else self.flow_.nll
        was_training = self.flow_.training
        self.flow_.eval()
        out = torch.cat([
            scorer(flat[i:i + 1024].to(self.context.device)).cpu()
            for i in range(0, len(flat), 1024)
        ])
        self.flow_.train(was_training)
        return out.numpy().reshape(n, t)

    def density_graph(self) -> torch.nn.Module:
        return MethodScore(self.flow_, self.config.score)  # the method name is the score's

    def localize(self, test: Sequence[Sample]) -> np.ndarray:
        """Gradient maps g_x of Eq. 7, (n_images, image_size, image_size), float32."""
        return gradient_maps(self.flow_, self._extractor(), self.images(), test, self.config,
                             self.context.device)
