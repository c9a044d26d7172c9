"""One DifferNet cell run two ways in one process, one after the other, on the same data, seeds
and preset:

(a) the original code's cost structure: every image decoded and transformed per sample with
    PIL each time it is used, features recomputed by eager PyTorch (fp32; channels_last by
    default, ``--original-layout nchw`` for the original code's layout) in every epoch from
    fresh random transforms, and the whole test set with its test transforms
    re-extracted at every evaluation (every ``--eval-every`` epochs, 8 in the original code,
    and after the last epoch);
(b) ours: the DifferNet detector as the runner runs it from an empty cache (decode cache,
    batched transforms, the ``auto`` extractor engine, the feature bank).

Both report the AUROC of the model after the last epoch. It prints both wall times, AUROCs and
peak memories (resident set size sampled every 20 ms), and as its last line
``speedup: <ratio>x, AUROC <ours> vs <original>``. Where the original cost structure is too
slow to run in full, run both on a subset (``--shots`` training images, ``--test-subset`` test
images, half defect-free) and read the full-size projection it prints from counted
extractions and measured per-extraction and per-step times (labelled as a projection).

    python benchmarks/differnet_speed.py --data-root data --preset fast --test-transforms 64 \\
        --seeds 0,1,2 --shots 32 --test-subset 64
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from pathlib import Path

import click
import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image, ImageEnhance

import bench.features.pipeline as pipeline
from bench.data import load_split
from bench.differnet import DifferNet, DifferNetFlow
from bench.features.backbones import build_backbone
from bench.features.extractor import MultiScaleExtractor
from bench.features.transforms import normalize, train_transforms
from bench.metrics import image_auroc
from bench.registry import RunContext
from bench.run.suites import resolve_for_dataset


def _rss() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every 20 ms, and its
    growth over the resident memory at the start (the two paths share one process, so the
    second starts with what the first kept)."""

    def __enter__(self):
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak / 2**20

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 2**20


class Timer:
    def __init__(self):
        self.seconds, self.count = 0.0, 0

    def add(self, seconds: float, count: int) -> None:
        self.seconds += seconds
        self.count += count


# -- (a) the original code's cost structure -------------------------------------------------

_PIL_RESAMPLE = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}


def pil_transformed(path: Path, params: np.ndarray, config) -> torch.Tensor:
    """Decode, resize, rotate and adjust one image with PIL, then ToTensor + Normalize."""
    angle, brightness, contrast = (float(p) for p in params)
    with Image.open(path) as img:
        img = img.convert("RGB").resize((config.image_size, config.image_size), Image.BILINEAR)
    if angle:
        img = img.rotate(angle, resample=_PIL_RESAMPLE[config.rotation_interpolation])
    if brightness != 1:
        img = ImageEnhance.Brightness(img).enhance(brightness)
    if contrast != 1:
        img = ImageEnhance.Contrast(img).enhance(contrast)
    return normalize(TF.to_dtype(TF.pil_to_tensor(img), torch.float32, scale=True))


def original_features(extractor, samples, params, config, timer: Timer,
                      layout: torch.memory_format) -> torch.Tensor:
    """Per-sample PIL transforms, eager PyTorch, batches of ``extract_batch_size``."""
    start = time.perf_counter()
    pairs = [(i, j) for i in range(len(samples)) for j in range(params.shape[1])]
    out = []
    with torch.inference_mode():
        for b in range(0, len(pairs), config.extract_batch_size):
            chunk = pairs[b:b + config.extract_batch_size]
            batch = torch.stack([pil_transformed(samples[i].path, params[i, j], config)
                                 for i, j in chunk])
            out.append(extractor(batch.contiguous(memory_format=layout)))
    timer.add(time.perf_counter() - start, len(pairs))
    return torch.cat(out).reshape(len(samples), params.shape[1], -1)


def run_original(config, split, seed: int, eval_every: int, layout: str) -> dict:
    extractor = MultiScaleExtractor(build_backbone(config.backbone), config).eval()
    if layout == "channels_last":
        extractor.to(memory_format=torch.channels_last)
    labels = np.array([s.label for s in split.test])
    train, test = split.train, split.test
    ctx = DifferNet(config, RunContext(seed=seed))  # for its seeded transform streams
    rng_epochs = np.random.default_rng([seed, 3])
    test_params = ctx.test_params(len(test))
    flow = DifferNetFlow(extractor.dim, config.n_coupling_blocks, config.subnet_hidden,
                         config.subnet_layers, config.clamp_alpha, seed)
    optimizer = torch.optim.Adam(flow.parameters(), lr=config.lr, betas=config.adam_betas,
                                 eps=config.adam_eps, weight_decay=config.weight_decay)
    memory = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    extraction, training = Timer(), Timer()
    per_batch = max(1, config.batch_size // config.transforms_per_image)
    auroc = None
    for epoch in range(1, config.epochs + 1):
        flow.train()
        order = rng_epochs.permutation(len(train))
        for b in range(0, len(train), per_batch):
            chosen = [train[i] for i in order[b:b + per_batch]]
            params = train_transforms(config, len(chosen), config.transforms_per_image, rng_epochs)
            feats = original_features(extractor, chosen, params, config, extraction, memory)
            start = time.perf_counter()
            loss = flow.nll(feats.reshape(-1, feats.shape[-1]).clone()).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            training.add(time.perf_counter() - start, feats.shape[0] * feats.shape[1])
        if epoch % eval_every == 0 or epoch == config.epochs:
            feats = original_features(extractor, test, test_params, config, extraction, memory)
            flow.eval()
            with torch.no_grad():
                scores = flow.latent_nll(feats.reshape(-1, feats.shape[-1])).reshape(len(test), -1)
            auroc = image_auroc(labels, scores.mean(dim=1).numpy())
    return {"auroc": auroc, "extraction": extraction, "training": training}


# -- (b) ours ---------------------------------------------------------------------------------


def run_ours(config, split, seed: int, device: str) -> dict:
    extraction = Timer()
    real_extract = pipeline.extract

    def timed_extract(engine, images, samples, params, *args, **kwargs):
        start = time.perf_counter()
        out = real_extract(engine, images, samples, params, *args, **kwargs)
        extraction.add(time.perf_counter() - start, params.shape[0] * params.shape[1])
        return out

    pipeline.extract = timed_extract
    try:
        with tempfile.TemporaryDirectory() as cache:  # an empty cache: a cold start
            start = time.perf_counter()
            detector = DifferNet(config, RunContext(seed=seed, device=device,
                                                    cache_dir=Path(cache))).fit(split.train)
            fitted = time.perf_counter()
            scores = detector.score(split.test)
            done = time.perf_counter()
    finally:
        pipeline.extract = real_extract
    training = Timer()
    training.add(fitted - start - (extraction.seconds - (done - fitted)),
                 config.epochs * len(split.train) * min(config.transforms_per_image,
                                                        config.n_bank_transforms))
    labels = np.array([s.label for s in split.test])
    return {"auroc": image_auroc(labels, scores), "extraction": extraction, "training": training,
            "engine": detector.context.info.get("extractor_engine")}


# -- projection and report ------------------------------------------------------------------


def counts(config, n_train: int, n_test: int, eval_every: int) -> dict[str, float]:
    """Transformed images each path extracts, and flow training rows x epochs."""
    evals = config.epochs // eval_every + (config.epochs % eval_every != 0)
    tpi = config.transforms_per_image
    return {
        "original_extractions": config.epochs * n_train * tpi + evals * n_test * config.n_test_transforms,
        "ours_extractions": n_train * config.n_bank_transforms + n_test * config.n_test_transforms,
        "train_rows": config.epochs * n_train * min(tpi, config.n_bank_transforms),
    }


def subset_test(test, size: int | None):
    if not size or size >= len(test):
        return test
    rng = np.random.default_rng([0, 99])
    good = [s for s in test if s.label == 0]
    bad = [s for s in test if s.label == 1]
    take = [good[i] for i in sorted(rng.choice(len(good), size // 2, replace=False))]
    take += [bad[i] for i in sorted(rng.choice(len(bad), size - size // 2, replace=False))]
    return take


@click.command()
@click.option("--data-root", required=True, type=click.Path(path_type=Path))
@click.option("--dataset", default="mtd", show_default=True)
@click.option("--category", default="mtd", show_default=True)
@click.option("--preset", default="fast", show_default=True)
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--epochs", type=int, help="Default: the preset's.")
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--shots", type=int, help="Training images (a seeded subset); default all.")
@click.option("--test-subset", type=int, help="Test images (half defect-free); default all.")
@click.option("--test-transforms", type=int, default=64, show_default=True)
@click.option("--eval-every", type=int, default=8, show_default=True,
              help="Epochs between the original path's test-set evaluations.")
@click.option("--original-layout", type=click.Choice(["channels_last", "nchw"]),
              default="channels_last", show_default=True,
              help="The original path's PyTorch memory layout: channels_last (the landed code's "
                   "before this benchmark, twice as fast on a CPU: a conservative baseline) or "
                   "nchw (the original code's).")
def main(data_root, dataset, category, preset, backbone, device, epochs, seeds, shots,
         test_subset, test_transforms, eval_every, original_layout):
    seeds = [int(s) for s in seeds.split(",")]
    overrides = {"backbone": backbone, "n_test_transforms": test_transforms}
    if epochs:
        overrides["epochs"] = epochs
    config = resolve_for_dataset("differnet", preset, dataset, overrides)
    full = load_split(dataset, category, data_root)
    rows = []
    for seed in seeds:
        split = load_split(dataset, category, data_root, shots=shots, seed=seed)
        split.test = subset_test(split.test, test_subset)
        for path in ("original", "ours"):
            with PeakRSS() as memory:
                start = time.perf_counter()
                result = (run_original(config, split, seed, eval_every, original_layout)
                          if path == "original"
                          else run_ours(config, split, seed, device))
                wall = time.perf_counter() - start
            rows.append({"path": path, "seed": seed, "wall": wall, "mb": memory.mb,
                         "growth_mb": memory.growth_mb, **result})
            print(f"seed {seed} {path:8s}: {wall:8.1f} s  AUROC {result['auroc']:.4f}  "
                  f"peak RSS {memory.mb:6.0f} MB (+{memory.growth_mb:.0f} MB in this path)  "
                  f"extraction {result['extraction'].seconds:7.1f} s for "
                  f"{result['extraction'].count} images", flush=True)
    n_train, n_test = len(split.train), len(split.test)
    print(f"\nran: {n_train} training and {n_test} test images, {config.epochs} epochs, "
          f"{config.n_test_transforms} test transforms, preset {preset} "
          f"({dataclasses.asdict(config)['n_bank_transforms']} bank transforms), seeds {seeds}; "
          f"ours used {rows[-1].get('engine')}")
    summary = {}
    for path in ("original", "ours"):
        mine = [r for r in rows if r["path"] == path]
        auroc = np.array([r["auroc"] for r in mine]) * 100
        wall = np.array([r["wall"] for r in mine])
        summary[path] = (auroc.mean(), wall.mean())
        print(f"{path:8s}: wall {wall.mean():8.1f} s per seed, AUROC {auroc.mean():.2f} +- "
              f"{auroc.std(ddof=1) if len(auroc) > 1 else 0:.2f} (mean +- std over seeds), "
              f"peak RSS {max(r['mb'] for r in mine):.0f} MB (growth within the path at most "
              f"{max(r['growth_mb'] for r in mine):.0f} MB)")
    if shots or test_subset:
        # Projection to the full split from counted extractions and measured unit costs.
        sub = counts(config, n_train, n_test, eval_every)
        big = counts(config, len(full.train), len(full.test), eval_every)
        for path, key in (("original", "original_extractions"), ("ours", "ours_extractions")):
            mine = [r for r in rows if r["path"] == path]
            per_image = sum(r["extraction"].seconds for r in mine) / sum(r["extraction"].count for r in mine)
            per_row = sum(r["training"].seconds for r in mine) / (sub["train_rows"] * len(mine))
            projected = big[key] * per_image + big["train_rows"] * per_row
            summary[path + "_projected"] = projected
            print(f"projection, full split ({len(full.train)} + {len(full.test)} images), {path}: "
                  f"{big[key]:.0f} extractions x {per_image * 1000:.1f} ms + flow "
                  f"{big['train_rows'] * per_row:.0f} s = {projected / 60:.1f} min per seed")
        print(f"projected speedup, full split: "
              f"{summary['original_projected'] / summary['ours_projected']:.1f}x")
    ratio = summary["original"][1] / summary["ours"][1]
    print(f"speedup: {ratio:.1f}x, AUROC {summary['ours'][0]:.2f} vs {summary['original'][0]:.2f}")


if __name__ == "__main__":
    main()
