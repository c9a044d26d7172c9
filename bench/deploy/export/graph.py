"""A saved feature-pipeline model (``run --save-models``) as one graph from image to score, written
as ONNX or OpenVINO IR beside a small JSON that says how to feed it (``bench.py export``).

The graph takes ``images`` (B, 3, S, S), float in [0, 1] (the decoded image resized to the
model's ``image_size``, as the pipeline's image cache holds it, divided by 255), and
``transforms`` (B, T, 3), each image's T test transforms (angle, brightness, contrast), and
returns ``scores`` (B,): Eq. 5's mean over the T transformed copies. Inside: the rotation, the
photometric changes, the resizing to every scale, ImageNet normalisation, the frozen backbone,
the pooling and the method's density model (``density_graph``). The transforms are an input
rather than constants because the pipeline gives every image its own (drawn from the seed and
the image's content, ``bench.transform_draws``): with them as an input the exported model scores
every image exactly as the ``.pt`` model does, and the runtime draws them with NumPy alone.

Two steps are rewritten, not changed, so that both runtimes take them: the antialiased resize
is a product with two fixed matrices (resizing is linear; the matrices are the resize of the
identity), and every rotation is a ``grid_sample`` (the pipeline turns multiples of 90 degrees
with ``rot90``, the same pixels).
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.deploy.models import SavedModel, load_model
from bench.errors import BenchError
from bench.features.extractor import PooledBackbone, extractor_scales
from bench.features.pipeline import FeaturePipelineDetector
from bench.features.transforms import IMAGENET_MEAN, IMAGENET_STD, grid_from, pixel_centres
from bench.store.atomic import write_bytes, write_text

EXPORT_FORMAT = 1
FORMATS = ("onnx", "openvino")
OPSET = 17  # GridSample needs 16
GRAPH_FILES = {"onnx": "model.onnx", "openvino": "model.xml"}


def resize_matrix(size: int, out: int, mode: str) -> torch.Tensor:
    """(out, size): ``F.interpolate`` of one axis from ``size`` to ``out`` pixels as a matrix, the
    resize of the identity (antialiased for smooth modes, as ``scale_inputs``)."""
    eye = torch.eye(size).view(1, 1, size, size)
    smooth = mode in ("bilinear", "bicubic")
    return F.interpolate(eye, size=(out, size), mode=mode, antialias=smooth)[0, 0].contiguous()


class MatrixResize(nn.Module):
    """Any linear resize of square images: ``m @ x @ m.T``."""

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.register_buffer("matrix", matrix)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.matrix @ x @ self.matrix.T


class StridedResize(nn.Module):
    """A resize by an integer factor whose rows are one filter shifted by the factor (the
    antialiased filters): a strided depthwise convolution, divided by the same convolution of
    ones, which renormalises the rows the image's border cuts, as the filter does. A few
    multiply-adds a pixel instead of the matrix product's hundreds."""

    def __init__(self, taps: torch.Tensor, stride: int, pad: int, size: int):
        super().__init__()
        kernel = torch.outer(taps, taps).view(1, 1, len(taps), len(taps))
        self.stride, self.pad = stride, pad
        self.register_buffer("kernel", kernel.expand(3, 1, -1, -1).contiguous())
        ones = torch.ones(1, 3, size, size)
        self.register_buffer("norm", self._conv(ones))

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel, stride=self.stride, padding=self.pad, groups=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x) / self.norm


def resize_module(size: int, out: int, mode: str) -> nn.Module:
    """``scale_inputs``' resize from ``size`` to ``out`` as the cheapest module that gives its
    numbers (checked here on the matrix itself): none, a strided convolution, or the matrix."""
    if out == size:
        return nn.Identity()
    matrix = resize_matrix(size, out, mode)
    if size % out == 0:
        stride = size // out
        row = matrix[out // 2]  # an interior row: the whole filter
        first, last = (int(i) for i in torch.nonzero(row).flatten()[[0, -1]])
        pad = stride * (out // 2) - first
        if 0 <= pad < last - first + 1:
            strided = StridedResize(row[first:last + 1].clone(), stride, pad, size)
            probe = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
            if torch.allclose(strided(probe), MatrixResize(matrix)(probe), atol=1e-5):
                return strided
    return MatrixResize(matrix)


class ScoreGraph(nn.Module):
    """images (B, 3, S, S) in [0, 1], transforms (B, T, 3) -> scores (B,)."""

    def __init__(self, detector: FeaturePipelineDetector):
        super().__init__()
        cfg = detector.config
        self.size, self.interpolation = cfg.image_size, cfg.rotation_interpolation
        self.pooled = PooledBackbone(detector._extractor().pooled.backbone).eval()
        self.density = detector.density_graph().eval()
        self.resizes = nn.ModuleList([resize_module(cfg.image_size, s, cfg.downscale_mode)
                                      for s in extractor_scales(cfg)])
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("scale", 1.0 / std)
        self.register_buffer("shift", -torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) / std)
        self.register_buffer("coords", pixel_centres(cfg.image_size))

    def transform(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """``transforms.apply_transforms``: rotate about the centre (zero fill), brightness,
        contrast about the grayscale mean, each clamped to [0, 1]."""
        rad = params[:, 0] * (-math.pi / 180.0)  # no deg2rad in ONNX
        grid = grid_from(torch.cos(rad), torch.sin(rad), self.coords)
        x = F.grid_sample(x, grid, mode=self.interpolation, padding_mode="zeros",
                          align_corners=False)
        brightness, contrast = params[:, 1].view(-1, 1, 1, 1), params[:, 2].view(-1, 1, 1, 1)
        x = (x * brightness).clamp(0, 1)
        gray = x[:, 0:1] * 0.2989 + x[:, 1:2] * 0.587 + x[:, 2:3] * 0.114  # TF.rgb_to_grayscale
        mean = gray.mean(dim=(1, 2, 3), keepdim=True)
        return (x * contrast + mean * (1 - contrast)).clamp(0, 1)

    def forward(self, images: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
        b, t = transforms.shape[0], transforms.shape[1]
        x = images.unsqueeze(1).expand(-1, t, -1, -1, -1).reshape(-1, 3, self.size, self.size)
        x = self.transform(x, transforms.reshape(-1, 3))
        features = torch.cat([self.pooled(resize(x) * self.scale + self.shift)
                              for resize in self.resizes], dim=1)
        return self.density(features).view(b, t).mean(dim=1)


def onnx_graph(graph: ScoreGraph, n_transforms: int) -> bytes:
    images = torch.rand(2, 3, graph.size, graph.size)
    transforms = torch.zeros(2, n_transforms, 3)
    transforms[..., 1:] = 1.0
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(graph, (images, transforms), buffer, input_names=["images", "transforms"],
                          output_names=["scores"], opset_version=OPSET, dynamo=False,
                          dynamic_axes={"images": {0: "batch"}, "transforms": {0: "batch"},
                                        "scores": {0: "batch"}})
    return buffer.getvalue()


def run_transforms(model: SavedModel) -> np.ndarray:
    """The test transforms the run gave its test images (n_run, T, 3), in ``test_keys`` order."""
    keys = model.meta["test_keys"]
    return model.detector.test_params(len(keys)).astype(np.float32)


def export_model(model_path: Path, fmt: str, out: Path) -> Path:
    """Write the graph (``model.onnx``, or ``model.xml`` + ``.bin``), ``run_transforms.npz`` (the
    run's test images' transforms by content key) and ``model.json`` into ``out``."""
    if fmt not in FORMATS:
        raise BenchError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
    needs = ["onnx"] + (["openvino"] if fmt == "openvino" else [])
    missing = [p for p in needs if importlib.util.find_spec(p) is None]
    if missing:  # torch's exporter writes ONNX; OpenVINO converts it
        raise BenchError(f"export --format {fmt} needs {' and '.join(missing)}; run pip install "
                         "-e '.[cpu]' (or pip install onnx openvino).")
    model = load_model(model_path)
    detector = model.detector
    if not isinstance(detector, FeaturePipelineDetector):
        raise BenchError(f"method {model.meta['method']} cannot be exported yet: export covers "
                         "DifferNet and the methods on its feature pipeline (ocsvm, knn); use "
                         "predict with its .pt model.")
    graph = ScoreGraph(detector).eval()
    n_transforms = detector.config.n_test_transforms
    onnx = onnx_graph(graph, n_transforms)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "onnx":
        write_bytes(out / GRAPH_FILES["onnx"], onnx)
    else:
        import openvino as ov

        xml = out / GRAPH_FILES["openvino"]
        # OpenVINO writes the .xml and its .bin itself; from the ONNX bytes in memory.
        ov.save_model(ov.Core().read_model(onnx, b""), str(xml), compress_to_fp16=False)
    keys = model.meta["test_keys"]
    with io.BytesIO() as buffer:
        np.savez(buffer, keys=np.array(keys, dtype=str), transforms=run_transforms(model))
        write_bytes(out / "run_transforms.npz", buffer.getvalue())
    cfg = detector.config
    meta = {
        "format": EXPORT_FORMAT, "graph": GRAPH_FILES[fmt], "engine": fmt,
        "method": model.meta["method"], "cell_id": model.meta["cell_id"],
        "seed": model.meta["seed"], "backbone": model.meta["backbone"],
        "source_model": str(Path(model_path).resolve()),
        "input": {"images": ["batch", 3, cfg.image_size, cfg.image_size],
                  "transforms": ["batch", n_transforms, 3], "scores": ["batch"]},
        "image_size": cfg.image_size,
        "preprocessing": "decode as RGB, resize to image_size x image_size (antialiased "
                         "bilinear, uint8), divide by 255; ImageNet normalisation is inside "
                         "the graph",
        "normalization": {"mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
                          "applied": "inside the graph"},
        "transforms": {"n_test_transforms": n_transforms, "config": _draw_fields(cfg),
                       "run_images": "run_transforms.npz"},
        "threshold": model.meta["threshold"], "threshold_fpr": model.meta["threshold_fpr"],
        "threshold_from": model.meta["threshold_from"],
    }
    write_text(out / "model.json", json.dumps(meta, indent=2) + "\n")
    return out


def _draw_fields(cfg) -> dict:
    """The config fields ``transform_draws.test_transforms`` reads."""
    names = ("n_test_transforms", "rotation_degrees", "photometric", "photometric_range",
             "rotation_mode", "test_transform_mode", "train_transforms")
    return {n: getattr(cfg, n) for n in names if hasattr(cfg, n)}
