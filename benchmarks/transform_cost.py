"""What the transforms cost beside the engine, each change on its own, side by side in one run.

1. ``prepare_batch`` alone on one batch of real MTD images (the ``cpu`` preset: 448 px, the
   three scales, rotations and photometric factors), its temporaries fresh every batch (as
   before ``transforms.Scratch``) against reused (today): milliseconds a batch on one thread,
   page faults a batch, and the largest difference of the engine's inputs (0: the same numbers).
   (Earlier changes measured with this file, their numbers in the code they changed: the grid
   written in place, the normalisation into reused buffers, two engine streams.)
2. ``bank.extract`` over ``--images`` MTD images x ``--transforms`` transforms (decoded
   beforehand, as every cell after the first finds them) in turn: fresh temporaries, today's,
   and today's with ONNX Runtime's threads not spinning or with one engine call at a time;
   transformed images a second beside the engine alone on ready batches of the same shapes
   (one call at a time, and today's streams). ``--rounds`` rounds, the variants alternating
   within each, the median quoted.

    python benchmarks/transform_cost.py --data-root /work/data
"""

from __future__ import annotations

import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_throughput import timed  # noqa: E402
from fingerprint_cost import cpu_model  # noqa: E402
from flow_step import faults_per_call  # noqa: E402
from stage_profile import engine_alone  # noqa: E402

import bench.features.bank as bank  # noqa: E402
import bench.features.engines as engines  # noqa: E402
from bench.data import load_split  # noqa: E402
from bench.data.imagecache import ImageCache  # noqa: E402
from bench.features.backbones import shared_backbone  # noqa: E402
from bench.features.extractor import extractor_scales  # noqa: E402
from bench.features.transforms import Scratch, prepare_batch, train_transforms  # noqa: E402
from bench.run.suites import resolve_for_dataset  # noqa: E402

# -- the variants -----------------------------------------------------------------------------


@contextlib.contextmanager
def variant(fresh_temporaries: bool):
    """``bank`` preparing every batch in fresh tensors (as before ``Scratch``) or in the
    producer's reused ones (today)."""
    real = bank.Scratch
    if fresh_temporaries:
        bank.Scratch = lambda: None
    try:
        yield
    finally:
        bank.Scratch = real


@click.command()
@click.option("--data-root", type=click.Path(path_type=Path), required=True)
@click.option("--images", default=48, show_default=True)
@click.option("--transforms", "n_transforms", default=16, show_default=True)
@click.option("--rounds", default=2, show_default=True)
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--engine-seconds", type=float, default=10.0, show_default=True)
def main(data_root, images, n_transforms, rounds, backbone, engine_seconds):
    config = resolve_for_dataset("differnet", "cpu", "mtd", {"backbone": backbone})
    scales, batch = extractor_scales(config), config.extract_batch_size
    print(f"CPU: {cpu_model()}; {torch.get_num_threads()} threads; batches of {batch} at "
          f"{', '.join(map(str, scales))} px; photometric {config.photometric}")
    samples = load_split("mtd", "mtd", data_root).train[:images]
    cache = ImageCache(Path(tempfile.mkdtemp()) / "images")
    decoded = [cache.load_compact(s.path, config.image_size) for s in samples]
    params = train_transforms(config, len(samples), n_transforms, np.random.default_rng(0))
    built = shared_backbone(config.backbone, config.backbone_stage)
    engine = engines.build_engine(built, config.extractor_engine, "cpu", "fp32")

    print(f"\n1. prepare_batch, batches of {batch}, one thread, {rounds * 3} rounds")
    # image-major, as the pipeline's batches: each image under its transforms in turn
    uint8 = bank.stack_uint8([decoded[(i // n_transforms) % len(decoded)] for i in range(batch)])
    flat = params.reshape(-1, 3)[:batch]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = [torch.empty(batch, 3, s, s) for s in scales]
    scratch = Scratch()
    with torch.inference_mode():
        fresh = [x.clone() for x in prepare_batch(uint8, flat, config, scales, out)]
        reused = prepare_batch(uint8, flat, config, scales, out, scratch)
        largest = max(float((a - b).abs().max()) for a, b in zip(fresh, reused))
        times: dict[str, list[float]] = {"fresh": [], "reused": []}
        for _ in range(rounds * 3):  # alternating, so drift touches both alike
            times["fresh"].append(timed(lambda: prepare_batch(uint8, flat, config, scales, out), 5))
            times["reused"].append(timed(
                lambda: prepare_batch(uint8, flat, config, scales, out, scratch), 5))
        faults = {"fresh": faults_per_call(lambda: prepare_batch(uint8, flat, config, scales, out)),
                  "reused": faults_per_call(
                      lambda: prepare_batch(uint8, flat, config, scales, out, scratch))}
    torch.set_num_threads(threads)
    fresh_ms, reused_ms = (1000 * statistics.median(times[k]) for k in ("fresh", "reused"))
    print(f"  fresh temporaries {fresh_ms:6.1f} ms ({faults['fresh']:.0f} page faults), reused "
          f"(Scratch) {reused_ms:6.1f} ms ({faults['reused']:.0f}): x{fresh_ms / reused_ms:.2f}; "
          f"inputs differ by at most {largest:.1e}")

    print(f"\n2. extract, {len(samples)} images x {n_transforms} transforms, {rounds} rounds")

    def onnxruntime_engine(spin: bool, streams: int):
        real = engines.ORT_SPINNING, engines.ORT_STREAMS
        engines.ORT_SPINNING, engines.ORT_STREAMS = spin, streams
        try:
            built_engine = engines.build_engine(built, "onnxruntime", "cpu", "fp32")
            built_engine.streams()  # its sessions made now, with these settings
            return built_engine
        finally:
            engines.ORT_SPINNING, engines.ORT_STREAMS = real

    if engine.name != "onnxruntime":
        print(f"  engine {engine.name}: the engine variants are ONNX Runtime's; skipped")
        return
    one_call = onnxruntime_engine(engines.ORT_SPINNING, 1)  # one call at a time
    today_engine = onnxruntime_engine(engines.ORT_SPINNING, engines.ORT_STREAMS)
    variants = {  # (fresh temporaries, engine)
        "fresh temporaries": (True, today_engine),
        "today (reused temporaries)": (False, today_engine),
        "today, engine threads not spinning": (False, onnxruntime_engine(False, engines.ORT_STREAMS)),
        "today, one engine call at a time": (False, one_call),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    alone: dict[str, list[float]] = {"one stream": [], "two streams": []}
    for _ in range(rounds):
        alone["one stream"].append(engine_alone(one_call, batch, scales, seconds=engine_seconds))
        alone["two streams"].append(engine_alone(today_engine, batch, scales,
                                                 seconds=engine_seconds))
        for name, (fresh, eng) in variants.items():
            with variant(fresh):
                start = time.perf_counter()
                bank.extract(eng, cache, samples, params, config)
                rates[name].append(params.shape[0] * params.shape[1]
                                   / (time.perf_counter() - start))
    for name, values in alone.items():
        print(f"  {'engine alone, ' + name:30s} {statistics.median(values):7.1f} img/s  "
              f"({', '.join(f'{v:.1f}' for v in values)})")
    base = statistics.median(rates["fresh temporaries"])
    engine_rate = max(statistics.median(v) for v in alone.values())
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:36s} {rate:7.1f} img/s  x{rate / base:.2f} of fresh, "
              f"{rate / engine_rate:5.1%} of the faster engine alone  "
              f"({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
