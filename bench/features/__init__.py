"""Everything the methods on a frozen ImageNet backbone share. Two ways of reading the
backbone: the pooled pipeline of DifferNet, OCSVM and 1-NN (Fig. 2: the transforms T,
multi-scale pooled features, a bank of them every density model reads) and the feature maps of
PatchCore, PaDiM and CS-Flow (the maps of one or more stages, per image position); both run the
backbone in the same fast inference engines and cache what it computes on disk.

- ``backbones``: the frozen backbones by name (AlexNet, EfficientNet-Lite0, WideResNet-50,
  EfficientNet-B5, a random CNN), each cut into stages.
- ``engines``: PyTorch, ONNX Runtime or OpenVINO running the backbone for inference.
- ``base``: ``BackboneDetector``, the base of both detector classes below (the shared engine
  and what the record says of it), and the Gaussian smoothing of maps.
- The pooled pipeline: ``extractor`` (f_ex, the differentiable multi-scale module, and its
  resizing step), ``transforms`` (applying the transforms T to whole batches; they are drawn
  by ``bench.transform_draws``, NumPy only, so an exported model draws the same without
  torch), ``bank`` (batched, overlapped extraction and the on-disk feature cache),
  ``pipeline`` (``FeaturePipelineDetector``, the base of the methods on it, and the shared
  features' presets) and ``graphs`` (the density models as torch modules, for export).
- The feature maps: ``maps`` (the maps of untransformed images at one or more input sizes,
  batched and cached like the features) and ``spatial`` (``SpatialDetector``, the base of the
  methods on them, and a patch-score grid made a map over the whole image).
"""

from bench.features.backbones import BACKBONES, Backbone, build_backbone, shared_backbone
from bench.features.extractor import MultiScaleExtractor

__all__ = ["BACKBONES", "Backbone", "MultiScaleExtractor", "build_backbone", "shared_backbone"]
