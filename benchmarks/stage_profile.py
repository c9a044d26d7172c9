"""Where a DifferNet cell's time goes, stage by stage, beside each stage's floor.

One cell (any preset; cold: an empty cache) runs as the runner runs it, with timers around its
stages: decode (decoded and resized images, in the reader threads), transform (batches
transformed and resized to the scales, in the producer thread), extraction (the wall time of
``bank.extract``, from the first image decoded to the last feature), extraction ahead (test
features extracted on one engine stream while the flow trains, ``bench.features.ahead``),
flow training, scoring (the flow on the test features) and other (the rest of the wall time:
Python, the feature cache, the AUROC). Decode and transform run in threads inside extraction,
and extraction ahead beside the flow training, so their busy times overlap it; the shares are
of the wall time.

The floor is what the engine itself does on this machine, measured in the same run: the
cell's engine (the same graph, engine, precision and threads) alone, nothing else running, on
ready batches of the cell's shapes (``extract_batch_size`` images at every scale, run as
``bank.extract`` runs them: each of the engine's streams in a thread), before and after the cell;
the faster of the two is its rate. Extraction's floor is the cell's transformed images at that
rate; the flow's (training and scoring) is its counted FLOPs (``torch.utils.flop_counter`` on
one training step and one scoring batch) at this machine's fp32 matmul rate, measured before
and after the cell, the faster of the two (a 2048^3 ``torch.mm`` on all threads; and bf16 where
the CPU has native bf16, AVX512-BF16 or AMX). The cell's floor is their sum. The backbone's
counted FLOPs at the matmul rate are printed too, for reading older profiles (a
depthwise-separable backbone never reaches it). It
prints the CPU model and flags, threads and engine, and as its last line

    cell <wall> s / floor <floor> s = <ratio>x, AUROC <auroc>

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

import bench.differnet.detector as detector_module  # noqa: E402
import bench.features.bank as bank  # noqa: E402
import bench.features.engines as engines  # noqa: E402
import bench.features.pipeline as pipeline  # noqa: E402
from bench.data.imagecache import ImageCache  # noqa: E402
from bench.differnet import DifferNet  # noqa: E402
from bench.features.backbones import shared_backbone  # noqa: E402
from bench.features.engines import Engine, build_engine, native_bf16  # noqa: E402
from bench.features.extractor import PooledBackbone, extractor_scales  # noqa: E402
from bench.run.runner import RunOptions, run_cell  # noqa: E402
from bench.run.suites import load_suite, plan  # noqa: E402

STAGES = ("decode", "transform", "extraction", "extraction ahead", "flow training", "scoring")


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


def engine_alone(engine: Engine, batch: int, scales: tuple[int, ...], seconds: float = 20.0,
                 warmup: int = 2) -> float:
    """Transformed images per second of ``engine`` alone on ready batches of the cell's shapes
    (``batch`` images at every scale, as ``bank.extract`` hands it), run as ``bank.extract``
    runs it (every one of ``engine.streams()`` in a thread of its own) for about ``seconds``
    after ``warmup`` batches each."""
    gen = torch.Generator().manual_seed(0)
    streams = engine.streams()
    ready = [[torch.rand(batch, 3, s, s, generator=gen) for s in scales] for _ in streams]
    done = [0] * len(streams)
    start = time.perf_counter() + 3600.0  # set once every stream is warm

    def run(i: int, barrier: threading.Barrier) -> None:
        for _ in range(warmup):
            streams[i](ready[i])
        barrier.wait()
        while time.perf_counter() - start < seconds:
            streams[i](ready[i])
            done[i] += 1

    def started() -> None:
        nonlocal start
        start = time.perf_counter()

    barrier = threading.Barrier(len(streams), action=started)
    threads = [threading.Thread(target=run, args=(i, barrier)) for i in range(len(streams))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) * batch / (time.perf_counter() - start)


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
@click.option("--engine-seconds", type=float, default=20.0, show_default=True,
              help="How long the engine alone is timed, before and after the cell.")
def main(data_root, suite_name, category, preset, backbone, seed, set_, engine_seconds):
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
    # The cell's engine (its graph, engine and precision), built apart so the cell still builds
    # its own: the shared backbone and engine caches are emptied before the cell starts.
    cfg = cell.config
    engine = build_engine(shared_backbone(cfg.backbone, cfg.backbone_stage), cfg.extractor_engine,
                          "cpu", cfg.extractor_precision)
    shapes = (cfg.extract_batch_size, extractor_scales(cfg))
    click.echo(f"engine {engine.describe()}: {len(engine.streams())} stream(s) in bank.extract")
    rates = [engine_alone(engine, *shapes, seconds=engine_seconds)]
    shared_backbone.cache_clear()
    engines._shared_engine.cache_clear()
    clock, kept, detectors = StageClock(), [], []
    kept.append((ImageCache, "load_compact", clock.wrap(ImageCache, "load_compact", "decode")))
    kept.append((bank, "prepare_batch", clock.wrap(
        bank, "prepare_batch", "transform", count=lambda images, *a, **k: len(images))))

    def transformed(engine, images, samples, params, *a, **k):
        return params.shape[0] * params.shape[1]

    for module in (pipeline, detector_module):  # each holds ``bank.extract`` by its own name
        kept.append((module, "extract", clock.wrap(module, "extract", "extraction",
                                                   count=transformed)))
    # bench.features.ahead calls it as ``bank.extract``: the test features extracted on one
    # stream while the flow trains (overlapped with it, so outside the stages' sum).
    kept.append((bank, "extract", clock.wrap(bank, "extract", "extraction ahead",
                                             count=transformed)))
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
    rates.append(engine_alone(engine, *shapes, seconds=engine_seconds))
    # The faster of two readings, as for the engine: one slow reading (this machine's matmul
    # rate moved 149-189 GFLOP/s within an hour) would move the flow's floor by a quarter.
    fp32_end = matmul_rate(torch.float32)
    bf16_end = matmul_rate(torch.bfloat16) if bf16 else None
    click.echo(f"matmul after the cell: fp32 {fp32_end / 1e9:.0f} GFLOP/s"
               + (f", bf16 {bf16_end / 1e9:.0f} GFLOP/s" if bf16 else "")
               + "; the floors use the faster reading of each")
    fp32, bf16 = max(fp32, fp32_end), (max(bf16, bf16_end) if bf16 else None)
    counted = counted_flops(detectors[0], record.n_train, record.n_test)
    report(cell, record, wall, clock, counted, fp32, bf16, rates, shapes)


def report(cell, record, wall: float, clock: StageClock, counted: dict, fp32: float,
           bf16: float | None, rates: list[float], shapes) -> None:
    n_images, engine_rate = counted["extracted_images"], max(rates)
    click.echo(f"cell {cell.cell_id}: wall {wall / 60:.1f} min, AUROC {100 * record.auroc:.2f}, "
               f"engine {record.info.get('extractor_engine')}; {record.n_train} train + "
               f"{record.n_test} test images, {n_images} transformed images "
               f"extracted at {counted['per_image'] / 1e9:.2f} GFLOP each")
    click.echo(f"engine alone (batches of {shapes[0]} at {', '.join(map(str, shapes[1]))} px): "
               f"{rates[0]:.1f} img/s before the cell, {rates[1]:.1f} after; floor at "
               f"{engine_rate:.1f} img/s")
    # The cell's floor: every transformed image at the engine's rate, wherever it was extracted
    # (the extraction row's floor: the images it extracted, those ahead aside).
    floors = {"extraction": n_images / engine_rate,
              "flow training": counted["flow training"] / fp32,
              "scoring": counted["scoring"] / fp32}
    floor_total = sum(floors.values())
    floors["extraction"] = clock.items["extraction"] / engine_rate
    click.echo(f"{'stage':16s} {'wall s':>8s} {'share':>6s} {'items/s':>9s} {'floor s':>8s} "
               f"{'x floor':>8s}")
    accounted = 0.0
    for stage in STAGES:
        seconds, items = clock.seconds[stage], clock.items[stage]
        floor = floors.get(stage)
        if stage in floors:
            accounted += seconds
        note = {"decode": "  (threads, overlapped)", "transform": "  (threads, overlapped)",
                "extraction ahead": "  (one stream, during the flow training: overlapped)",
                "extraction": f"  (engine alone: {engine_rate:.1f} img/s; cell rate "
                              f"{items / seconds / engine_rate if seconds else 0:.0%} of it)",
                "flow training": "  (FLOPs at the fp32 matmul rate)",
                "scoring": "  (FLOPs at the fp32 matmul rate)"}[stage]
        click.echo(f"{stage:16s} {seconds:8.1f} {seconds / wall:6.1%} "
                   f"{items / seconds if seconds else 0:9.1f} "
                   + (f"{floor:8.1f} {seconds / floor:8.2f}" if floor else f"{'-':>8s} {'-':>8s}")
                   + note)
    click.echo(f"{'other':16s} {wall - accounted:8.1f} {(wall - accounted) / wall:6.1%}")
    click.echo(f"{'cell':16s} {wall:8.1f} {1:6.1%} {'':9s} {floor_total:8.1f} "
               f"{wall / floor_total:8.2f}  (floor: the engine alone + the flow's FLOPs)")
    flop_floor = (counted["extraction"] + counted["flow training"] + counted["scoring"]) / fp32
    click.echo(f"the backbone's FLOPs at the fp32 matmul rate: {counted['extraction'] / fp32:.1f} s"
               f" (the older profile's floor, all FLOPs at that rate: {flop_floor:.1f} s)"
               + (f"; at the bf16 matmul rate: {flop_floor * fp32 / bf16:.1f} s" if bf16 else ""))
    click.echo(f"cell {wall:.1f} s / floor {floor_total:.1f} s = {wall / floor_total:.2f}x, "
               f"AUROC {100 * record.auroc:.2f}")


if __name__ == "__main__":
    main()
