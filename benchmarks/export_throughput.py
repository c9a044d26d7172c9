"""An exported model against the ``.pt`` model it came from: throughput and agreement, side by
side in one run.

For each of ``.pt`` (the pipeline: decode cache off, the extractor engine ``auto`` picks, the
density model in torch / scikit-learn), the ONNX export (ONNX Runtime) and the OpenVINO export,
it scores the same images (a warm-up pass first, then ``--repeats`` timed passes) and prints
images per second, transformed images per second (an image is scored under its T test
transforms), the ratio to ``.pt`` and the largest relative difference of the scores from the
``.pt`` model's. Exports are written to a temporary folder.

    python benchmarks/export_throughput.py --model results/models/<cell>.pt --images DIR --n 20
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fingerprint_cost import cpu_model  # noqa: E402

from bench.deploy.export.graph import export_model  # noqa: E402
from bench.deploy.export.runtime import load_exported  # noqa: E402
from bench.deploy.models import load_model, predict  # noqa: E402


def timed(score, paths, repeats: int) -> tuple[np.ndarray, float]:
    scores = score(paths)  # warm-up: engine compilation, first allocations
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        score(paths)
        seconds.append(time.perf_counter() - start)
    return np.asarray(scores, dtype=np.float64), statistics.median(seconds)


@click.command()
@click.option("--model", "model_path", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True)
@click.option("--n", type=int, default=20, show_default=True)
@click.option("--repeats", type=int, default=3, show_default=True)
def main(model_path: Path, images: Path, n: int, repeats: int) -> None:
    paths = sorted(p for p in images.rglob("*") if p.suffix.lower() in (".png", ".jpg"))[:n]
    model = load_model(model_path)
    t = model.detector.config.n_test_transforms
    click.echo(f"CPU: {cpu_model()}, {torch.get_num_threads()} threads; {model.meta['method']}, "
               f"{len(paths)} images x {t} test transforms, image size "
               f"{model.detector.config.image_size}; median of {repeats}")
    rows = {}

    def pt_score(ps):
        return predict(model, ps, batch=max(1, 64 // t), show_progress=False)["score"].to_numpy()

    rows[".pt (" + model.detector._engine().describe() + ")"] = timed(pt_score, paths, repeats)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("onnx", "openvino"):
            exported = load_exported(export_model(model_path, fmt, Path(tmp) / fmt))
            batch = max(1, 64 // t)

            def graph_score(ps, exported=exported, batch=batch):
                return np.concatenate([exported.score(ps[i:i + batch])
                                       for i in range(0, len(ps), batch)])

            rows[f"exported {fmt}"] = timed(graph_score, paths, repeats)
    reference, base = next(iter(rows.values()))
    for name, (scores, seconds) in rows.items():
        rel = np.abs(scores - reference).max() / np.abs(reference).max()
        click.echo(f"{name:38s} {len(paths) / seconds:6.2f} images/s  "
                   f"{len(paths) * t / seconds:7.1f} transformed/s  x{base / seconds:4.2f}  "
                   f"max |diff| / max |score| {rel:.1e}")


if __name__ == "__main__":
    main()
