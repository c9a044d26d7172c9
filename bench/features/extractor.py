"""f_ex of Sec. 3: the frozen backbone at 3 scales, each global-average-pooled, concatenated.

``MultiScaleExtractor`` is the differentiable PyTorch module (gradient maps, Sec. 3.3, pass
through it). The fast inference engines (``bench.features.engines``) run the same computation
scale by scale: ``PooledBackbone`` on the output of ``transforms.scale_inputs``.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.config import FeatureConfig
from bench.features.backbones import Backbone
from bench.features.transforms import scale_inputs


def extractor_scales(config: FeatureConfig) -> tuple[int, ...]:
    """The input sizes the backbone sees: Sec. 4.2's three, or the largest alone (Table 3 A/B)."""
    return tuple(config.scales) if config.multi_scale else (config.image_size,)


class PooledBackbone(nn.Module):
    """The backbone followed by global average pooling: (B, 3, s, s) -> (B, C)."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x).mean(dim=(2, 3))


class MultiScaleExtractor(nn.Module):
    """f_ex: normalised images (B, 3, S, S) -> features (B, C x number of scales)."""

    def __init__(self, backbone: Backbone, config: FeatureConfig):
        super().__init__()
        self.pooled = PooledBackbone(backbone.module)
        self.scales = extractor_scales(config)
        self.mode = config.downscale_mode
        self.dim = backbone.channels * len(self.scales)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pooled(x) for x in scale_inputs(images, self.scales, self.mode)],
                         dim=1)
