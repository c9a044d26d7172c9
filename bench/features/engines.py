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
from torch import nn

from bench.config import Engine as EngineName
from bench.config import Precision
from bench.errors import BenchError
from bench.features.backbones import Backbone, FeatureMaps, shared_backbone
from bench.features.extractor import PooledBackbone

ENGINES: tuple[str, ...] = typing.get_args(EngineName)  # the config field's choices
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)
# The order ``auto`` tries on a CPU at fp32, fastest first (see the module docstring).
CPU_FP32_PREFERENCE = ("onnxruntime", "openvino", "torch")
# Whether ONNX Runtime's threads spin while they wait for work (its default) or yield the core
# to the transforms' producer thread: extraction 32.1 vs 32.6 img/s on a 2-core EPYC, within
# the noise (benchmarks/transform_cost.py); streams of one thread have no pool to spin.
ORT_SPINNING = True
# Batches ONNX Runtime runs at once in ``bank.extract``, each in its own session on its share of
# the threads (1: one call at a time on all of them, as before). Measured side by side on a
# 2-core AMD EPYC (benchmarks/transform_cost.py, nothing else running), EfficientNet-Lite0 at
# 448/224/112 px, batches of 16: the engine alone 37.2 img/s as one 2-thread call, 39.9 as two
# 1-thread streams; the whole extraction 32.1 -> 34.6 img/s (36.2 with the cheaper transforms).
# The same numbers either way (tests/test_features.py).
ORT_STREAMS = 2


def engine_available(name: str) -> bool:
    """Whether the engine's packages are installed: PyTorch always is; the others also need
    ``onnx``, which PyTorch's exporter uses to write the graph they load."""
    if name == "torch":
        return True
    return all(importlib.util.find_spec(pkg) is not None for pkg in (name, "onnx"))


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX): elsewhere bf16 is emulated,
    slower than fp32 and for nothing, so it is refused (Linux's /proc/cpuinfo; False where that
    cannot be read)."""
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh
                          if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
    if precision == "bf16" and not cuda and not native_bf16():
        raise BenchError("this CPU has no native bf16 (AVX512-BF16 or AMX), where it would run "
                         "slower than fp32; use --set extractor_precision=fp32 (the default).")
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
    """Runs one frozen module for inference: the pooled backbone (``__call__``: each scale's
    batch -> (B, C x scales), the pooled pipeline) or the backbone's feature maps at some stages
    (``outputs``: (B, 3, s, s) -> one (B, C_i, h_i, w_i) array per stage, the spatial methods).
    """

    name = "engine"

    def __init__(self, backbone: Backbone, module: nn.Module, device: str, precision: str):
        self.backbone, self.device, self.precision = backbone, device, precision
        self.module = module

    def outputs(self, x: torch.Tensor) -> list[np.ndarray]:
        raise NotImplementedError

    def pooled(self, x: torch.Tensor) -> np.ndarray:
        return self.outputs(x)[0]

    def __call__(self, scaled: list[torch.Tensor]) -> np.ndarray:
        return np.concatenate([self.pooled(x) for x in scaled], axis=1)

    def streams(self) -> list[Callable[[list[torch.Tensor]], np.ndarray]]:
        """Callables like ``__call__`` that may run at the same time, one per thread of
        ``bank.extract``: the same graph and numbers, the threads shared among them."""
        return [self]

    def describe(self) -> str:
        """What ran, for the record."""
        return f"{self.name} {self.version()} {self.precision}"

    def version(self) -> str:
        return torch.__version__


class TorchEngine(Engine):
    name = "torch"

    def __init__(self, backbone: Backbone, module: nn.Module, device: str, precision: str):
        # channels_last roughly doubles CPU throughput of these convnets (benchmarks/).
        super().__init__(backbone, module.to(device, memory_format=torch.channels_last), device,
                         precision)

    def _autocast(self):
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def outputs(self, x: torch.Tensor) -> list[np.ndarray]:
        with torch.inference_mode(), self._autocast():
            out = self.module(x.to(self.device, memory_format=torch.channels_last))
        return [o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,))]


def onnx_bytes(module: nn.Module) -> bytes:
    """``module`` as an ONNX graph with free batch size and image size (and free map sizes)."""
    buffer = io.BytesIO()
    module = module.eval()
    example = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        out = module(example)
    outs = out if isinstance(out, tuple) else (out,)
    names = [f"out{i}" for i in range(len(outs))]
    axes = {"images": {0: "batch", 2: "height", 3: "width"}}
    for name, o in zip(names, outs):
        axes[name] = {0: "batch"} if o.dim() == 2 else {0: "batch", 2: f"{name}_h", 3: f"{name}_w"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(module, (example,), buffer, input_names=["images"], output_names=names,
                          opset_version=17, dynamo=False, dynamic_axes=axes)
    return buffer.getvalue()


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, backbone: Backbone, module: nn.Module, device: str, precision: str):
        super().__init__(backbone, module, device, precision)
        import onnxruntime as ort

        self.ort, self.graph = ort, onnx_bytes(module)
        self.spinning, threads = ORT_SPINNING, torch.get_num_threads()
        self.session = self._session(threads)
        self.n_streams = max(1, min(ORT_STREAMS, threads))
        self._streams: list[Callable] | None = None

    def _session(self, threads: int):
        options = self.ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning",
                                         "1" if self.spinning else "0")
        return self.ort.InferenceSession(self.graph, options, providers=["CPUExecutionProvider"])

    def outputs(self, x: torch.Tensor) -> list[np.ndarray]:
        return self.session.run(None, {"images": x.contiguous().numpy()})

    def streams(self) -> list[Callable[[list[torch.Tensor]], np.ndarray]]:
        if self.n_streams == 1:
            return [self]
        if self._streams is None:  # made on first use: the maps' path never needs them
            threads = max(1, torch.get_num_threads() // self.n_streams)
            self._streams = [_SessionStream(self._session(threads))
                             for _ in range(self.n_streams)]
        return self._streams

    def version(self) -> str:
        import onnxruntime

        return onnxruntime.__version__


class _SessionStream:
    """``Engine.__call__`` on one ONNX Runtime session of its own."""

    def __init__(self, session):
        self.session = session

    def __call__(self, scaled: list[torch.Tensor]) -> np.ndarray:
        return np.concatenate([self.session.run(None, {"images": x.contiguous().numpy()})[0]
                               for x in scaled], axis=1)


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, backbone: Backbone, module: nn.Module, device: str, precision: str):
        super().__init__(backbone, module, device, precision)
        import openvino as ov

        self.core, self.ov_type = ov.Core(), ov.Type
        self.model = self.core.read_model(onnx_bytes(module), b"")
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
            # The precision OpenVINO settled on (an ov.Type; its text is "<Type: 'bfloat16'>").
            used = compiled.get_property("INFERENCE_PRECISION_HINT")
            if self.precision == "bf16" and used != self.ov_type.bf16:
                raise BenchError("OpenVINO cannot run bf16 on this CPU (it has no native bf16); "
                                 "use --set extractor_precision=fp32.")
            self.compiled[size] = compiled
        return self.compiled[size]

    def outputs(self, x: torch.Tensor) -> list[np.ndarray]:
        compiled = self._compiled(x.shape[-1])
        result = compiled(x.contiguous().numpy())
        return [result[output] for output in compiled.outputs]

    def version(self) -> str:
        import openvino

        return openvino.__version__.split("-")[0]


ENGINE_CLASSES = {"torch": TorchEngine, "onnxruntime": OnnxRuntimeEngine, "openvino": OpenVinoEngine}


def build_engine(backbone: Backbone, name: str, device: str, precision: str,
                 maps: tuple[int, ...] | None = None) -> Engine:
    """The engine ``name`` (``auto`` resolved for ``device`` and ``precision``) running the
    pooled ``backbone``, or with ``maps`` its feature maps at those stages."""
    module = PooledBackbone(backbone.module) if maps is None else FeatureMaps(backbone, maps)
    return ENGINE_CLASSES[resolve_engine(name, device, precision)](backbone, module, device,
                                                                   precision)


def shared_engine(backbone: str, stage: int | None, name: str, device: str,
                  precision: str, maps: tuple[int, ...] | None = None) -> Engine:
    """One engine per backbone and stage (or feature-map stages), resolved engine, device and
    precision, and process."""
    return _shared_engine(backbone, stage, resolve_engine(name, device, precision), device,
                          precision, None if maps is None else tuple(sorted(set(maps))))


@functools.cache
def _shared_engine(backbone: str, stage: int | None, name: str, device: str,
                   precision: str, maps: tuple[int, ...] | None) -> Engine:
    return build_engine(shared_backbone(backbone, stage), name, device, precision, maps)
