"""Bank vs recompute: the frozen extractor lets DifferNet compute the features of its training
transforms once; the original code recomputed them every epoch. This prints, side by side in
one run, the wall time and AUROC of both paths (and of channels_last vs NCHW extraction).

    python benchmarks/feature_bank.py --data-root data --category mtd --dataset mtd \
        --backbone efficientnet_lite0 --epochs 10 --seeds 0,1,2

The AUROC difference between the paths should be within the spread over seeds.
"""

from __future__ import annotations

import time

import click
import numpy as np
import torch

from bench.config import PRESETS, DifferNetConfig, resolve_config
from bench.data import load_split
from bench.detector import RunContext
from bench.differnet import DifferNet
from bench.features import MultiScaleExtractor, build_backbone
from bench.metrics import image_auroc
from bench.runner import resolve_for_dataset


@click.command()
@click.option("--data-root", required=True)
@click.option("--dataset", default="mtd")
@click.option("--category", default="mtd")
@click.option("--backbone", default="efficientnet_lite0")
@click.option("--preset", default="fast")
@click.option("--epochs", type=int, default=10)
@click.option("--seeds", default="0,1,2")
@click.option("--shots", type=int, default=None, help="Subsample the training set for speed.")
def main(data_root, dataset, category, backbone, preset, epochs, seeds, shots):
    seeds = [int(s) for s in seeds.split(",")]
    split = load_split(dataset, category, data_root, shots=shots, seed=0)
    labels = [s.label for s in split.test]
    base = resolve_for_dataset("differnet", preset, dataset, {"backbone": backbone, "epochs": epochs})
    rows = []
    for mode in ("bank", "recompute"):
        cfg = resolve_config(DifferNetConfig, PRESETS["differnet"], preset,
                             {**{k: getattr(base, k) for k in ("backbone", "epochs", "photometric")},
                              "feature_mode": mode})
        for seed in seeds:
            start = time.perf_counter()
            model = DifferNet(cfg, RunContext(seed=seed)).fit(split.train)
            fit_s = time.perf_counter() - start
            auroc = image_auroc(labels, model.score(split.test))
            rows.append((mode, seed, fit_s, auroc))
            print(f"{mode:9s} seed {seed}: fit {fit_s:7.1f} s  AUROC {auroc:.4f}", flush=True)
    for mode in ("bank", "recompute"):
        a = np.array([r[3] for r in rows if r[0] == mode])
        t = np.array([r[2] for r in rows if r[0] == mode])
        print(f"{mode:9s}: AUROC {a.mean():.4f} +- {a.std():.4f}, fit {t.mean():.1f} s")
    bank_t = np.mean([r[2] for r in rows if r[0] == "bank"])
    rec_t = np.mean([r[2] for r in rows if r[0] == "recompute"])
    print(f"recompute / bank fit time: {rec_t / bank_t:.2f}x")

    extractor = MultiScaleExtractor(build_backbone(backbone), base)
    x = torch.randn(32, 3, base.image_size, base.image_size)
    timings = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        extractor.to(memory_format=layout)
        xx = x.contiguous(memory_format=layout)
        with torch.inference_mode():
            extractor(xx[:4])
            start = time.perf_counter()
            extractor(xx)
            timings[str(layout)] = time.perf_counter() - start
    nchw, cl = timings.values()
    print(f"extraction, 32 images: NCHW {nchw:.2f} s, channels_last {cl:.2f} s ({nchw / cl:.2f}x)")


if __name__ == "__main__":
    main()
