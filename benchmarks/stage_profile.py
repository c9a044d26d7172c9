"""Where a DifferNet cell's time goes, stage by stage, beside each stage's floor.

One cell (any preset; cold: an empty cache) runs as the runner runs it, with timers around its
stages: decode (decoded and resized images, in the reader threads), transform (batches
transformed and resized to the scales, in the producer thread), extraction (the engine calls),
flow training, scoring (the flow on the test features) and other (the rest of the wall time:
Python, copies, the feature cache, the AUROC). Decode and transform run in threads beside
extraction, so their busy times overlap the others; the shares are of the wall time.

Floors come from counted FLOPs (``torch.utils.flop_counter`` on the backbone at every scale,
and on one flow step and one scoring batch) divided by this machine's fp32 matmul rate, which
the benchmark measures at its start (a 2048^3 ``torch.mm`` on all threads; and bf16 where the
CPU has native bf16, AVX512-BF16 or AMX). It prints the CPU model and flags, threads and
engine, so numbers from different machines can be read side by side.

    python benchmarks/stage_profile.py --data-root /work/data --preset cpu --backbone efficientnet_lite0
"""

from __future__ import annotations

import functools
import math
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fingerprint_cost import cpu_model  # noqa: E402

import bench.features.bank as bank  # noqa: E402
from bench.data.imagecache import ImageCache  # noqa: E402
from bench.differnet import DifferNet  # noqa: E402
from bench.features.engines import Engine, native_bf16  # noqa: E402
from bench.features.extractor import PooledBackbone, extractor_scales  # noqa: E402
from bench.run.runner import RunOptions, run_cell  # noqa: E402
from bench.run.suites import load_suite, plan  # noqa: E402

STAGES = ("decode", "transform", "extraction", "flow training", "scoring")


class StageClock:
    """Busy seconds and item counts per stage, summed over threads."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def wrap(self, owner, name: str, stage: str, count=lambda *a, **k: 1):
        real = getattr(owner, name)

        @functools.wraps(real)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                with self.lock:
                    self.seconds[stage] += time.perf_counter() - start
                    self.items[stage] += count(*args, **kwargs)

        setattr(owner, name, timed)
        return real


def matmul_rate(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of an n x n x n ``torch.mm`` in ``dtype`` on all threads (best of ``repeats``)."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    torch.mm(a, b)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def cpu_flags() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512/amx"


def counted_flops(detector: DifferNet, n_train_images: int, n_test_images: int) -> dict[str, float]:
    """FLOPs of each stage with a floor: extraction (every transformed image through the
    backbone at every scale), flow training (forward and backward of every step) and scoring."""
    cfg = detector.config
    pooled = PooledBackbone(detector._extractor().pooled.backbone).eval()
    with torch.no_grad():
        per_image = sum(flops(lambda s=s: pooled(torch.zeros(1, 3, s, s)))
                        for s in extractor_scales(cfg))
    n_bank = cfg.n_bank_transforms if cfg.train_transforms else 1
    extracted = n_train_images * n_bank + n_test_images * cfg.n_test_transforms
    flow = detector.flow_
    batch = torch.randn(cfg.batch_size, detector.feature_dim_)
    step = flops(lambda: flow.nll(batch).mean().backward())
    flow.zero_grad(set_to_none=True)
    rows = n_train_images * min(cfg.transforms_per_image, n_bank)
    steps = cfg.train_epochs(rows) * math.ceil(rows / cfg.batch_size)
    with torch.no_grad():
        score_row = flops(lambda: flow.latent_nll(batch)) / cfg.batch_size
    return {"extraction": per_image * extracted, "flow training": step * steps,
            "scoring": score_row * n_test_images * cfg.n_test_transforms,
            "extracted_images": extracted, "per_image": per_image}


@click.command()
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--suite", "suite_name", default="mtd", show_default=True)
@click.option("--category", default=None, help="Default: the suite's first category.")
@click.option("--preset", default="cpu", show_default=True)
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "set_", multiple=True, help="A config override, e.g. epochs=4.")
def main(data_root, suite_name, category, preset, backbone, seed, set_):
    from bench.cli.options import parse_set

    suite = load_suite(suite_name)
    suite.methods, suite.seeds, suite.preset, suite.backbone = ["differnet"], [seed], preset, backbone
    suite.overrides = {**suite.overrides, **parse_set(set_)}
    cells = plan(suite, data_root=data_root)
    cell = next(c for c in cells if category in (None, c.category))
    threads = torch.get_num_threads()
    fp32 = matmul_rate(torch.float32)
    bf16 = matmul_rate(torch.bfloat16) if native_bf16() else None
    click.echo(f"CPU: {cpu_model()}; flags: {cpu_flags()}; {threads} threads")
    click.echo(f"matmul: fp32 {fp32 / 1e9:.0f} GFLOP/s" + (
        f", bf16 {bf16 / 1e9:.0f} GFLOP/s" if bf16 else ", bf16: no native support"))
    clock, kept, detectors = StageClock(), [], []
    kept.append((ImageCache, "load_compact", clock.wrap(ImageCache, "load_compact", "decode")))
    kept.append((bank, "prepare_batch", clock.wrap(
        bank, "prepare_batch", "transform", count=lambda images, *a, **k: len(images))))
    kept.append((Engine, "__call__", clock.wrap(
        Engine, "__call__", "extraction", count=lambda self, scaled: len(scaled[0]))))
    kept.append((DifferNet, "_score_features", clock.wrap(
        DifferNet, "_score_features", "scoring", count=lambda self, f: f.shape[0] * f.shape[1])))
    real_train = DifferNet._train

    def train(self, epoch_features, rng, rows_per_epoch):
        detectors.append(self)
        start = time.perf_counter()
        try:
            return real_train(self, epoch_features, rng, rows_per_epoch)
        finally:
            clock.seconds["flow training"] += time.perf_counter() - start
            clock.items["flow training"] += rows_per_epoch * self.config.train_epochs(rows_per_epoch)

    DifferNet._train = train
    try:
        with tempfile.TemporaryDirectory() as cache:  # cold: nothing decoded or extracted yet
            start = time.perf_counter()
            record = run_cell(cell, RunOptions(cache_dir=Path(cache)))
            wall = time.perf_counter() - start
    finally:
        DifferNet._train = real_train
        for owner, name, real in kept:
            setattr(owner, name, real)
    counted = counted_flops(detectors[0], record.n_train, record.n_test)
    click.echo(f"cell {cell.cell_id}: wall {wall / 60:.1f} min, AUROC {100 * record.auroc:.2f}, "
               f"engine {record.info.get('extractor_engine')}; {record.n_train} train + "
               f"{record.n_test} test images, {counted['extracted_images']} transformed images "
               f"extracted at {counted['per_image'] / 1e9:.2f} GFLOP each")
    click.echo(f"{'stage':14s} {'wall s':>8s} {'share':>6s} {'items/s':>9s} {'floor s':>8s} "
               f"{'x floor':>8s}")
    accounted = 0.0
    for stage in STAGES:
        seconds, items = clock.seconds[stage], clock.items[stage]
        floor = counted[stage] / fp32 if stage in counted else None
        if stage in ("extraction", "flow training", "scoring"):
            accounted += seconds
        click.echo(f"{stage:14s} {seconds:8.1f} {seconds / wall:6.1%} "
                   f"{items / seconds if seconds else 0:9.1f} "
                   + (f"{floor:8.1f} {seconds / floor:8.2f}" if floor else f"{'-':>8s} {'-':>8s}")
                   + ("  (threads, overlapped)" if stage in ("decode", "transform") else ""))
    floor_total = sum(counted[s] for s in ("extraction", "flow training", "scoring")) / fp32
    click.echo(f"{'other':14s} {wall - accounted:8.1f} {(wall - accounted) / wall:6.1%}")
    click.echo(f"{'cell':14s} {wall:8.1f} {1:6.1%} {'':9s} {floor_total:8.1f} "
               f"{wall / floor_total:8.2f}  (floor: the FLOPs above at the fp32 matmul rate)")
    if bf16:
        click.echo(f"at the bf16 matmul rate the floor would be {floor_total * fp32 / bf16:.1f} s")


if __name__ == "__main__":
    main()
