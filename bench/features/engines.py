"""Inference engines for the frozen extractor: the same pooled backbone, run scale by scale.

The extractor never trains, so on a CPU it can run in a graph runtime instead of eager
PyTorch. Measured side by side on a 2-core AMD EPYC (AVX2, no AVX-512) with
``benchmarks/extract_throughput.py``, EfficientNet-Lite0 at 448 px, fp32:

    PyTorch eager, channels_last   ~8 images/s
    OpenVINO 2026.4                ~39 images/s   (features within 1e-6 relative)
    ONNX Runtime 1.32              ~46 images/s   (features within 1e-6 relative)

So ``auto`` picks ONNX Runtime, then OpenVINO, then PyTorch on a CPU, and always PyTorch on
CUDA. The gradient maps of Sec. 3.3 always use the PyTorch module (they need gradients).

Precision is a separate choice: ``fp32`` (the paper's) everywhere; ``bf16`` through PyTorch
autocast or OpenVINO's inference hint, and ``fp16`` through autocast on CUDA. Reduced
precision changes the features (a few percent relative error), so it is part of a feature
cache key and of a cell's identity, and never the default.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import io
import typing
import warnings
from collections.abc import Callable

import numpy as np
import torch

from bench.config import Engine as EngineName
from bench.config import Precision
from bench.errors import BenchError
from bench.features.backbones import Backbone, shared_backbone
from bench.features.extractor import PooledBackbone

ENGINES: tuple[str, ...] = typing.get_args(EngineName)  # the config field's choices
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
# The order ``auto`` tries on a CPU at fp32, fastest first (see the module docstring).
CPU_FP32_PREFERENCE = ("onnxruntime", "openvino", "torch")


def engine_available(name: str) -> bool:
    """Whether the engine's packages are installed: PyTorch always is; the others also need
    ``onnx``, which PyTorch's exporter uses to write the graph they load."""
    if name == "torch":
        return True
    return all(importlib.util.find_spec(pkg) is not None for pkg in (name, "onnx"))


def resolve_engine(name: str, device: str, precision: str) -> str:
    """The concrete engine ``name`` means on ``device`` at ``precision``; never a silent
    substitute: an engine that cannot do what is asked is an error."""
    if name not in ENGINES:
        raise BenchError(f"unknown extractor_engine {name!r}; choose one of {', '.join(ENGINES)}.")
    if precision not in PRECISIONS:
        raise BenchError(
            f"unknown extractor_precision {precision!r}; choose one of {', '.join(PRECISIONS)}."
        )
    cuda = device.startswith("cuda")
    if name == "auto":
        if cuda or precision == "fp16":
            name = "torch"
        elif precision == "bf16":
            name = "openvino" if engine_available("openvino") else "torch"
        else:
            name = next(e for e in CPU_FP32_PREFERENCE if engine_available(e))
    if name != "torch" and cuda:
        raise BenchError(f"extractor_engine {name} runs on the CPU only; use --set "
                         "extractor_engine=torch (or auto) with a CUDA device.")
    if not engine_available(name):
        raise BenchError(f"extractor_engine {name} is not installed; run pip install {name} onnx "
                         "(or pip install -e '.[cpu]'), or use --set extractor_engine=auto.")
    supported = {"torch": ("fp32", "bf16", "fp16") if cuda else ("fp32", "bf16"),
                 "onnxruntime": ("fp32",), "openvino": ("fp32", "bf16")}[name]
    if precision not in supported:
        raise BenchError(f"extractor_engine {name} cannot run {precision} on {device}; choose "
                         f"extractor_precision from {', '.join(supported)}.")
    return name


class Engine:
    """Pooled features of each scale's batch: list of (B, 3, s, s) -> (B, C x scales)."""

    name = "engine"

    def __init__(self, backbone: Backbone, device: str, precision: str):
        self.backbone, self.device, self.precision = backbone, device, precision

    def pooled(self, x: torch.Tensor) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, scaled: list[torch.Tensor]) -> np.ndarray:
        return np.concatenate([self.pooled(x) for x in scaled], axis=1)

    def describe(self) -> str:
        """What ran, for the record."""
        return f"{self.name} {self.version()} {self.precision}"

    def version(self) -> str:
        return torch.__version__


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, backbone: Backbone, device: str, precision: str):
        super().__init__(backbone, device, precision)
        # channels_last roughly doubles CPU throughput of these convnets (benchmarks/).
        self.module = PooledBackbone(backbone.module).to(device, memory_format=torch.channels_last)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def pooled(self, x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode(), self._autocast():
            out = self.module(x.to(self.device, memory_format=torch.channels_last))
        return out.float().cpu().numpy()


def onnx_bytes(backbone: Backbone) -> bytes:
    """The pooled backbone as an ONNX graph with free batch size and image size."""
    buffer = io.BytesIO()
    module = PooledBackbone(backbone.module).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, (torch.zeros(1, 3, 64, 64),), buffer, input_names=["images"],
                          output_names=["features"], opset_version=17, dynamo=False,
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                        "features": {0: "batch"}})
    return buffer.getvalue()


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, backbone: Backbone, device: str, precision: str):
        super().__init__(backbone, device, precision)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(onnx_bytes(backbone), options,
                                            providers=["CPUExecutionProvider"])

    def pooled(self, x: torch.Tensor) -> np.ndarray:
        return self.session.run(None, {"images": x.contiguous().numpy()})[0]

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, backbone: Backbone, device: str, precision: str):
        super().__init__(backbone, device, precision)
        import openvino as ov

        self.core = ov.Core()
        self.model = self.core.read_model(onnx_bytes(backbone), b"")
        self.compiled: dict[int, Callable] = {}
        hint = {"fp32": "f32", "bf16": "bf16"}[precision]
        self.config = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY",
                       "INFERENCE_NUM_THREADS": torch.get_num_threads()}

    def _compiled(self, size: int):
        # One static-size model per scale: faster than a dynamic spatial shape.
        if size not in self.compiled:
            model = self.model.clone()
            model.reshape({"images": [-1, 3, size, size]})
            compiled = self.core.compile_model(model, "CPU", self.config)
            used = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
            if self.precision == "bf16" and "bf16" not in used:
                raise BenchError("OpenVINO cannot run bf16 on this CPU (it has no native bf16); "
                                 "use --set extractor_precision=fp32.")
            self.compiled[size] = compiled
        return self.compiled[size]

    def pooled(self, x: torch.Tensor) -> np.ndarray:
        compiled = self._compiled(x.shape[-1])
        return compiled(x.contiguous().numpy())[0]

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]


ENGINE_CLASSES = {"torch": TorchEngine, "onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine}


def build_engine(backbone: Backbone, name: str, device: str, precision: str) -> Engine:
    """The engine ``name`` (``auto`` resolved for ``device`` and ``precision``) for ``backbone``."""
    return ENGINE_CLASSES[resolve_engine(name, device, precision)](backbone, device, precision)


def shared_engine(backbone: str, stage: int | None, name: str, device: str,
                  precision: str) -> Engine:
    """One engine per backbone and stage, resolved engine, device and precision, and process."""
    return _shared_engine(backbone, stage, resolve_engine(name, device, precision), device,
                          precision)


@functools.cache
def _shared_engine(backbone: str, stage: int | None, name: str, device: str,
                   precision: str) -> Engine:
    return build_engine(shared_backbone(backbone, stage), name, device, precision)
