"""What one cell of GeoTrans or ADGAN costs on this machine, per preset, without running it.

A few training steps and a few scoring batches of the real modules are timed (after a warm-up)
and scaled by the counts a cell of the given size needs: GeoTrans trains on every (image,
transformation) pair per epoch and scores every test image under its 72 transformations;
ADGAN trains a GAN and then searches ``seeds`` x ``search_steps`` per test image. This is how
the issue's "where one needs more than about an hour, say how long" is answered for presets
too slow to run here (MTD: 761 training and 583 test images).

    python benchmarks/baseline_cost.py --presets fast,paper --n-train 761 --n-test 583
"""

from __future__ import annotations

import math
import time

import click
import numpy as np
import torch
import torch.nn.functional as F

from baselines.adgan import ADGANConfig, search_scores
from baselines.ganomaly import DCGANDecoder, DCGANEncoder
from baselines.geotrans import (
    TRANSFORMS,
    GeoTransConfig,
    WideResNet,
    transform_batch,
    translation_pixels,
)
from bench.cli.options import parse_set
from bench.config import resolve_config
from bench.methods import get_method


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def geotrans_minutes(cfg: GeoTransConfig, n_train: int, n_test: int, repeats: int) -> dict:
    k = len(TRANSFORMS)
    model = WideResNet(cfg.depth, cfg.width, 1, k)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    images = torch.rand(cfg.batch_size, 1, cfg.image_size, cfg.image_size) * 2 - 1
    labels = np.arange(cfg.batch_size) % k

    def step() -> None:
        x = transform_batch(images, labels, translation_pixels(cfg))
        loss = F.cross_entropy(model(x), torch.from_numpy(labels))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def forward() -> None:
        with torch.no_grad():
            model(images)

    train_s = _timed(step, repeats) * math.ceil(n_train * k / cfg.batch_size) * cfg.epochs
    # Fitting the Dirichlets scores the training images once more under every transformation.
    score_s = _timed(forward, repeats) * math.ceil((n_train + n_test) * k / cfg.batch_size)
    return {"fit+score min": (train_s + score_s) / 60, "train min": train_s / 60,
            "forward passes min": score_s / 60}


def adgan_minutes(cfg: ADGANConfig, n_train: int, n_test: int, repeats: int) -> dict:
    g = DCGANDecoder(cfg.image_size, 1, cfg.latent_dim, cfg.width)
    d = DCGANEncoder(cfg.image_size, 1, 1, cfg.width)
    opt_g, opt_d = torch.optim.Adam(g.parameters()), torch.optim.Adam(d.parameters())
    real = torch.rand(cfg.batch_size, 1, cfg.image_size, cfg.image_size) * 2 - 1

    def step() -> None:  # a critic and a generator step (the loss's form costs nothing)
        fake = g(torch.randn(cfg.batch_size, cfg.latent_dim))
        loss_d = d(real).mean() - d(fake.detach()).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = -d(fake).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

    g.eval().requires_grad_(False)
    batch = real[: cfg.score_batch_size]

    def search() -> None:
        search_scores(g, batch, seeds=cfg.seeds, steps=cfg.search_steps, lr_z=cfg.lr_z,
                      lr_theta=cfg.lr_theta, tune_generator=cfg.tune_generator)

    train_s = _timed(step, repeats) * math.ceil(n_train / cfg.batch_size) * cfg.epochs
    score_s = _timed(search, max(1, repeats // 2)) * math.ceil(n_test / cfg.score_batch_size)
    return {"fit+score min": (train_s + score_s) / 60, "train min": train_s / 60,
            "search min": score_s / 60}


ESTIMATORS = {"geotrans": geotrans_minutes, "adgan": adgan_minutes}


@click.command()
@click.option("--methods", default="geotrans,adgan", show_default=True)
@click.option("--presets", default="fast,paper", show_default=True)
@click.option("--n-train", default=761, show_default=True, help="Training images (MTD: 761).")
@click.option("--n-test", default=583, show_default=True, help="Test images (MTD: 583).")
@click.option("--repeats", default=3, show_default=True)
@click.option("--set", "overrides", multiple=True, help="field=value for every preset timed.")
def main(methods: str, presets: str, n_train: int, n_test: int, repeats: int,
         overrides: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    extra = parse_set(overrides)
    print(f"torch threads: {torch.get_num_threads()}; {n_train} training, {n_test} test images")
    for method in methods.split(","):
        spec = get_method(method)
        for preset in [p for p in presets.split(",") if p in spec.presets]:
            cfg = resolve_config(spec.config_cls, spec.presets, preset, extra)
            parts = ESTIMATORS[method](cfg, n_train, n_test, repeats)
            text = ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
            print(f"{method:9s} {preset:6s} {text}")


if __name__ == "__main__":
    main()
