"""Running an exported model (``bench.py export``) with ONNX Runtime or OpenVINO, without torch.

``predict --model DIR`` comes here: each image is decoded and resized as the pipeline does,
given the test transforms the ``.pt`` model would give it (the run's own for an image the run
scored, else drawn from the seed and the image's content), and scored by the graph. Nothing here
or in what it imports loads torch (a test runs it with torch made unimportable).
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import FeatureConfig
from bench.data.base import load_image
from bench.data.content import content_key
from bench.errors import BenchError
from bench.transform_draws import new_image_transforms

EXPORT_FORMAT = 1  # bench.deploy.export.graph writes this format


@functools.cache  # one per image size: images of a folder mostly share theirs
def _filter_rows(n_in: int, n_out: int) -> tuple[np.ndarray, int]:
    """Fixed-point weights (n_out, n_in) of an antialiased bilinear resize of one axis, and
    their precision in bits: the triangle filter widened by the scale when shrinking, each row
    normalised, then scaled to the most bits that keep the largest weight in 16 bits and
    rounded (the Pillow-SIMD scheme torch's uint8 kernel follows)."""
    scale = n_in / n_out
    support, stretch = (scale, 1.0 / scale) if scale >= 1.0 else (1.0, 1.0)
    weights = np.zeros((n_out, n_in))
    for i in range(n_out):
        center = scale * (i + 0.5)
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), n_in)
        w = np.clip(1.0 - np.abs((np.arange(lo, hi) - center + 0.5) * stretch), 0.0, None)
        weights[i, lo:hi] = w / w.sum() if w.sum() else w
    bits = 0
    while bits < 22 and int(0.5 + weights.max() * (1 << (bits + 1))) < (1 << 15):
        bits += 1
    scaled = weights * (1 << bits)
    return np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)), bits


def _resize_axis(image: np.ndarray, n_out: int, axis: int) -> np.ndarray:
    if image.shape[axis] == n_out:
        return image
    weights, bits = _filter_rows(image.shape[axis], n_out)
    # Integers all the way: every product and sum is below 2^53, so float64 is exact.
    moved = np.moveaxis(image, axis, 0).astype(np.float64)
    acc = np.tensordot(weights, moved, axes=(1, 0)) + (1 << (bits - 1))
    out = np.clip(np.floor(acc / (1 << bits)), 0, 255).astype(np.uint8)
    return np.moveaxis(out, 0, axis)


def resize_uint8(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (C, H, W) -> (C, size, size), the numbers of ``decode_resized``'s torchvision
    resize (antialiased bilinear on uint8; checked pixel for pixel in the tests): width first,
    rounded to uint8, then height."""
    return _resize_axis(_resize_axis(image, size, 2), size, 1)


def decode(path: Path, size: int) -> np.ndarray:
    """RGB float32 (3, size, size) in [0, 1]: the image cache's uint8 image divided by 255."""
    image = np.asarray(load_image(Path(path))).transpose(2, 0, 1)
    return resize_uint8(image, size).astype(np.float32) / 255.0


def _runtime_package(name: str, what: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise BenchError(f"{what} is not installed; run pip install {name} (or pip install -e "
                         f"'.[cpu]') to run an exported model in it.") from None


class _OnnxRuntime:
    def __init__(self, graph: Path):
        ort = _runtime_package("onnxruntime", "ONNX Runtime")
        self.session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])

    def __call__(self, images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        return self.session.run(["scores"], {"images": images, "transforms": transforms})[0]


class _OpenVino:
    def __init__(self, graph: Path):
        ov = _runtime_package("openvino", "OpenVINO")
        self.compiled = ov.Core().compile_model(str(graph), "CPU",
                                                {"INFERENCE_PRECISION_HINT": "f32"})

    def __call__(self, images: np.ndarray, transforms: np.ndarray) -> np.ndarray:
        return self.compiled([images, transforms])[self.compiled.output(0)]


RUNTIMES = {"onnx": _OnnxRuntime, "openvino": _OpenVino}


@dataclass
class ExportedModel:
    folder: Path
    meta: dict[str, Any]
    run_transforms: dict[str, np.ndarray]  # content key -> (T, 3), the run's test images
    config: FeatureConfig  # the fields that draw a new image's transforms
    runtime: Any

    @property
    def threshold(self) -> float | None:
        return self.meta["threshold"]

    def transforms_for(self, keys: Sequence[str]) -> np.ndarray:
        """(n, T, 3): ``FeaturePipelineDetector.transforms_for``, from the exported arrays."""
        return np.stack([self.run_transforms[k] if k in self.run_transforms
                         else new_image_transforms(self.config, self.meta["seed"], k)
                         for k in keys]).astype(np.float32)

    def score(self, paths: Sequence[Path]) -> np.ndarray:
        images = np.stack([decode(p, self.meta["image_size"]) for p in paths])
        transforms = self.transforms_for([content_key(p) for p in paths])
        return np.asarray(self.runtime(images, transforms), dtype=np.float64)


def load_exported(folder: Path) -> ExportedModel:
    folder = Path(folder)
    try:
        meta = json.loads((folder / "model.json").read_text())
    except (OSError, ValueError) as err:
        raise BenchError(f"{folder} holds no readable model.json ({type(err).__name__}); export "
                         "the model again with bench.py export.") from None
    if meta.get("format") != EXPORT_FORMAT or meta.get("engine") not in RUNTIMES:
        raise BenchError(f"{folder}/model.json is not a differnet-bench export of format "
                         f"{EXPORT_FORMAT}; export the model again with bench.py export.")
    with np.load(folder / meta["transforms"]["run_images"]) as stored:
        run = dict(zip(stored["keys"].tolist(), stored["transforms"]))
    known = {f.name for f in fields(FeatureConfig)}
    draw = {k: tuple(v) if isinstance(v, list) else v
            for k, v in meta["transforms"]["config"].items() if k in known}
    runtime = RUNTIMES[meta["engine"]](folder / meta["graph"])
    return ExportedModel(folder, meta, run, FeatureConfig(**draw), runtime)
