"""The feature pipeline DifferNet, OCSVM and 1-NN share (Fig. 2): frozen ImageNet backbones,
the transforms T, multi-scale pooled features computed by a fast inference engine, and the
cached bank of features every density model reads.

- ``backbones``: the frozen backbones by name (AlexNet, EfficientNet-Lite0, a random CNN).
- ``extractor``: f_ex, the differentiable multi-scale module, and its resizing step.
- ``engines``: PyTorch, ONNX Runtime or OpenVINO running the extractor for inference.
- ``transforms``: drawing the transforms and applying them to whole batches.
- ``bank``: batched, overlapped extraction and the on-disk feature cache.
- ``pipeline``: the base class of the feature-based detectors.
"""

from bench.features.backbones import BACKBONES, Backbone, build_backbone, shared_backbone
from bench.features.extractor import MultiScaleExtractor

__all__ = ["BACKBONES", "Backbone", "MultiScaleExtractor", "build_backbone", "shared_backbone"]
