"""Throughput of every available extractor engine and precision on this machine, side by side.

For each engine x precision: transformed images per second through the multi-scale extractor
(engine alone on ready batches, and the whole ``extract`` pipeline from decoded images:
transforms, resizing, engine), the achieved GFLOP/s (FLOPs of one transformed image counted by
torch's flop counter), the relative error of the features against PyTorch fp32, and the
measured peak of a 2048^2 matmul in fp32 and bf16 on the same cores.

    python benchmarks/extract_throughput.py --backbone efficientnet_lite0 --data-root data
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.config import FeatureConfig
from bench.data import load_split
from bench.data.imagecache import ImageCache
from bench.errors import BenchError
from bench.features.backbones import build_backbone
from bench.features.bank import extract
from bench.features.engines import ENGINE_CLASSES, build_engine, engine_available
from bench.features.extractor import MultiScaleExtractor, scale_inputs
from bench.features.transforms import draw_transforms


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / min(times) / 1e9


def flops_per_image(extractor: MultiScaleExtractor, size: int) -> float:
    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        extractor(torch.rand(1, 3, size, size))
    return counter.get_total_flops()


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@click.command()
@click.option("--backbone", default="efficientnet_lite0", show_default=True)
@click.option("--image-size", type=int, default=448, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--repeats", type=int, default=5, show_default=True)
@click.option("--data-root", help="MTD data root for the pipeline measurement (else skipped).")
@click.option("--pipeline-images", type=int, default=48, show_default=True,
              help="Images x 4 transforms through the whole pipeline.")
def main(backbone, image_size, batch_size, repeats, data_root, pipeline_images):
    torch.manual_seed(0)
    config = FeatureConfig(backbone=backbone, image_size=image_size,
                           scales=(image_size, image_size // 2, image_size // 4),
                           photometric=True, extract_batch_size=batch_size)
    built = build_backbone(backbone)
    extractor = MultiScaleExtractor(built, config).eval()
    flops = flops_per_image(extractor, image_size)
    print(f"threads {torch.get_num_threads()}; {flops / 1e9:.2f} GFLOP per transformed image")
    print(f"matmul 2048^2 peak: fp32 {matmul_peak(torch.float32):.0f} GFLOP/s, "
          f"bf16 {matmul_peak(torch.bfloat16):.0f} GFLOP/s")

    batch = torch.rand(batch_size, 3, image_size, image_size)
    scaled = scale_inputs(batch, extractor.scales, config.downscale_mode)
    with torch.inference_mode():
        reference = extractor(batch).numpy()
        nchw_s = timed(lambda: extractor(batch), repeats)
    print(f"\n{'engine':<24}{'img/s':>8}{'GFLOP/s':>9}{'rel. error':>12}{'pipeline img/s':>16}")
    print(f"{'torch eager NCHW fp32':<24}{batch_size / nchw_s:>8.1f}"
          f"{flops * batch_size / nchw_s / 1e9:>9.0f}{0:>12.1e}{'-':>16}")

    split = None
    if data_root:
        split = load_split("mtd", "mtd", data_root)
        samples = split.train[:pipeline_images]
        params = draw_transforms(config, len(samples) * 4, np.random.default_rng(0))
        params = params.reshape(len(samples), 4, 3)
        images = ImageCache(Path(tempfile.mkdtemp()) / "images")
        for sample in samples:  # decoded once beforehand, as every cell after the first finds them
            images.load(sample.path, image_size)
    for name in ENGINE_CLASSES:
        for precision in ("fp32", "bf16"):
            label = f"{name} {precision}"
            if not engine_available(name):
                print(f"{label:<24}  not installed")
                continue
            try:
                engine = build_engine(built, name, "cpu", precision)
                features = engine(scaled)
            except BenchError as err:
                print(f"{label:<24}  unsupported here: {err}")
                continue
            seconds = timed(lambda engine=engine: engine(scaled), repeats)
            rel = np.linalg.norm(features - reference) / np.linalg.norm(reference)
            pipe = "-"
            if split is not None:
                start = time.perf_counter()
                extract(engine, images, samples, params, config)
                pipe = f"{params.shape[0] * params.shape[1] / (time.perf_counter() - start):.1f}"
            print(f"{label:<24}{batch_size / seconds:>8.1f}{flops * batch_size / seconds / 1e9:>9.0f}"
                  f"{rel:>12.1e}{pipe:>16}")


if __name__ == "__main__":
    main()
