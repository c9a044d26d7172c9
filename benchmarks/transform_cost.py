"""What the transforms cost beside the engine, each change on its own, side by side in one run.

1. ``prepare_batch`` alone on one batch of real MTD images (the ``cpu`` preset: 448 px, the
   three scales, rotations and photometric factors): today's version (the code before this
   benchmark, kept below as ``reference_prepare_batch``) against the current one, milliseconds a
   batch on one thread, the largest difference of their inputs to the engine and the relative
   difference of the features the engine makes of them (both 0: the same numbers bit for bit).
2. ``bank.extract`` over ``--images`` MTD images x ``--transforms`` transforms (decoded
   beforehand, as every cell after the first finds them) in turn: today's transforms, and each
   change on its own on top of today's (the cheaper transforms, ONNX Runtime's threads not spinning while they wait, two engine streams of one thread each),
   then all of them; transformed images a second beside the engine alone on ready batches of
   the same shapes (one stream on all threads, and two streams). ``--rounds`` rounds,
   the variants alternating within each, the median quoted.

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
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_throughput import timed  # noqa: E402
from fingerprint_cost import cpu_model  # noqa: E402
from stage_profile import engine_alone  # noqa: E402

import bench.features.bank as bank  # noqa: E402
import bench.features.engines as engines  # noqa: E402
from bench.data import load_split  # noqa: E402
from bench.data.imagecache import ImageCache  # noqa: E402
from bench.features.backbones import shared_backbone  # noqa: E402
from bench.features.extractor import extractor_scales  # noqa: E402
from bench.features.transforms import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    pixel_centres,
    prepare_batch,
    rotate_batch,
    train_transforms,
)
from bench.run.suites import resolve_for_dataset  # noqa: E402

# -- today's transforms (before the change), for the comparison -------------------------------


def _reference_grid(angles: torch.Tensor, size: int) -> torch.Tensor:
    rad = torch.deg2rad(-angles.double())
    cos, sin = torch.cos(rad).float().view(-1, 1, 1), torch.sin(rad).float().view(-1, 1, 1)
    coords = pixel_centres(size)
    x, y = coords.view(1, 1, size), coords.view(1, size, 1)
    return torch.stack([cos * x + sin * y, cos * y - sin * x], dim=-1)


def reference_prepare_batch(images, params, config, scales, out=None):
    """``prepare_batch`` as it was: the grid stacked from its two components, the
    normalisation broadcast over channels into a fresh tensor (``out`` is ignored)."""
    import bench.features.transforms as transforms

    floats = TF.to_dtype(images, torch.float32, scale=True)
    p = torch.as_tensor(np.asarray(params, dtype=np.float32))
    real_grid = transforms.rotation_grid
    transforms.rotation_grid = _reference_grid
    try:
        x = rotate_batch(floats, p[:, 0], config.rotation_interpolation)
    finally:
        transforms.rotation_grid = real_grid
    brightness, contrast = p[:, 1].view(-1, 1, 1, 1), p[:, 2].view(-1, 1, 1, 1)
    if bool((brightness != 1).any()):
        x.mul_(brightness).clamp_(0, 1)
    if bool((contrast != 1).any()):
        gray = (TF.rgb_to_grayscale(x) if x.shape[1] == 3
                else x.mul(0.2989).add_(x, alpha=0.587).add_(x, alpha=0.114))
        mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
        x.mul_(contrast).add_(mean.mul(1.0 - contrast)).clamp_(0, 1)
    scale = 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    shift = -torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * scale
    out = []
    for size in scales:
        y = x if size == x.shape[-1] else F.interpolate(
            x, size=(size, size), mode=config.downscale_mode,
            antialias=config.downscale_mode in ("bilinear", "bicubic"))
        out.append(torch.addcmul(shift, y, scale))
    return out


# -- the variants -----------------------------------------------------------------------------


@contextlib.contextmanager
def variant(today_transforms: bool):
    """``bank`` with today's transforms (fresh tensors a batch) or the current ones."""
    real = (bank.prepare_batch, bank.InputBuffers.take)
    if today_transforms:
        bank.prepare_batch = reference_prepare_batch
        bank.InputBuffers.take = lambda self: [torch.empty(0)] * len(self.scales)
    try:
        yield
    finally:
        bank.prepare_batch, bank.InputBuffers.take = real


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

    print(f"\n1. prepare_batch, one batch of {batch}, one thread")
    # image-major, as the pipeline's batches: each image under its transforms in turn
    uint8 = bank.stack_uint8([decoded[(i // n_transforms) % len(decoded)] for i in range(batch)])
    flat = params.reshape(-1, 3)[:batch]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.inference_mode():
        old = reference_prepare_batch(uint8, flat, config, scales)
        out = [torch.empty(batch, 3, s, s) for s in scales]
        new = prepare_batch(uint8, flat, config, scales, out)
        old_ms = 1000 * timed(lambda: reference_prepare_batch(uint8, flat, config, scales), 9)
        new_ms = 1000 * timed(lambda: prepare_batch(uint8, flat, config, scales, out), 9)
    torch.set_num_threads(threads)
    largest = max(float((a - b).abs().max()) for a, b in zip(old, new))
    f_old, f_new = engine(old), engine(new)
    rel = float(np.linalg.norm(f_new - f_old) / np.linalg.norm(f_old))
    print(f"  today's {old_ms:7.1f} ms   current {new_ms:7.1f} ms   x{old_ms / new_ms:.2f}; inputs "
          f"differ by at most {largest:.1e}, features by {rel:.1e} (relative)")

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
    today_engine = onnxruntime_engine(True, 1)  # ONNX Runtime's defaults, one call at a time
    variants = {
        "today": (True, today_engine),
        "cheaper transforms": (False, today_engine),
        "engine threads not spinning": (True, onnxruntime_engine(False, 1)),
        "two engine streams": (True, onnxruntime_engine(True, 2)),
        "all": (False, onnxruntime_engine(False, 2)),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    alone: dict[str, list[float]] = {"one stream": [], "two streams": []}
    for _ in range(rounds):
        alone["one stream"].append(engine_alone(today_engine, batch, scales, seconds=engine_seconds))
        alone["two streams"].append(engine_alone(variants["two engine streams"][1], batch,
                                                 scales, seconds=engine_seconds))
        for name, (today, eng) in variants.items():
            with variant(today):
                start = time.perf_counter()
                bank.extract(eng, cache, samples, params, config)
                rates[name].append(params.shape[0] * params.shape[1]
                                   / (time.perf_counter() - start))
    for name, values in alone.items():
        print(f"  {'engine alone, ' + name:30s} {statistics.median(values):7.1f} img/s  "
              f"({', '.join(f'{v:.1f}' for v in values)})")
    base = statistics.median(rates["today"])
    engine_rate = max(statistics.median(v) for v in alone.values())
    for name, values in rates.items():
        rate = statistics.median(values)
        print(f"  {name:30s} {rate:7.1f} img/s  x{rate / base:.2f} of today's, "
              f"{rate / engine_rate:5.1%} of the faster engine alone  "
              f"({', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
