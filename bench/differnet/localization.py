"""Localization (Sec. 3.3, Eq. 7): the flow's loss back-propagated to the input image.

The loss is back-propagated through the PyTorch extractor (the inference engines have no
gradients); the gradients are blurred with a Gaussian, their absolute values summed over
channels, and the maps of evenly spaced rotations rotated back and averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

from bench.data.base import Sample
from bench.data.imagecache import ImageCache
from bench.differnet.config import DifferNetConfig
from bench.differnet.flow import DifferNetFlow
from bench.features.base import gaussian_smooth
from bench.features.extractor import MultiScaleExtractor
from bench.features.transforms import normalize


def gradient_maps(flow: DifferNetFlow, extractor: MultiScaleExtractor, images: ImageCache,
                  test: Sequence[Sample], config: DifferNetConfig, device: str) -> np.ndarray:
    """g_x of Eq. 7 for each test image, (n_images, image_size, image_size), float32."""
    cfg = config
    extractor = extractor.to(device)
    angles = [i * 360.0 / cfg.localize_rotations for i in range(cfg.localize_rotations)]
    maps = np.zeros((len(test), cfg.image_size, cfg.image_size), dtype=np.float32)
    flow.eval()
    for i, sample in enumerate(test):
        image = images.load_float(sample.path, cfg.image_size)
        rotated = torch.stack([TF.rotate(image, a) for a in angles]).to(device)
        rotated.requires_grad_(True)
        loss = flow.nll(extractor(normalize(rotated))).sum()
        (grad,) = torch.autograd.grad(loss, rotated)
        grad = gaussian_smooth(grad, cfg.localize_sigma)
        per_rotation = grad.abs().sum(dim=1, keepdim=True)
        back = torch.stack([TF.rotate(m, -a) for m, a in zip(per_rotation, angles)])
        maps[i] = back.mean(dim=0)[0].detach().cpu().numpy()
    return maps
