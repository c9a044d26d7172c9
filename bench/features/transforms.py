"""The transforms T of Sec. 3.2 / 4.2 applied to whole batches: rotations, and brightness and
contrast for MTD.

A transform is three numbers (angle in degrees, brightness factor, contrast factor), drawn by
``bench.transform_draws`` (NumPy only, so an exported model draws them without torch), kept
with the features they produced, and applied the same way in training and inference (Sec. 4.2).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from bench.config import FeatureConfig
from bench.transform_draws import (  # noqa: F401 - drawn there, used from here
    IDENTITY,
    draw_transforms,
    test_transforms,
    train_transforms,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# grid_sampler_2d's codes for F.grid_sample's modes (its out= variant takes the codes)
_GRID_MODES = {"bilinear": 0, "nearest": 1, "bicubic": 2}
# the antialiased resizes F.interpolate calls for smooth modes, whose out= variants write into
# a reused tensor
_ANTIALIASED = {"bilinear": torch.ops.aten._upsample_bilinear2d_aa,
                "bicubic": torch.ops.aten._upsample_bicubic2d_aa}


class Scratch:
    """The temporaries of one batch (the float image, the sampling grid, the rotated and the
    resized images), kept and reused by the one thread that prepares batches in turn.

    A fresh tensor of a few MB is memory the system may map anew for every batch, and its page
    faults cost a fifth of the batch (``prepare_batch`` on 16 MTD images at 448 px, one thread,
    2-core EPYC: 51.9 ms with fresh tensors, 41.8 ms reusing them, 1568 and 621 page faults a
    batch; ``benchmarks/transform_cost.py``). Float32 only; not for two threads at once.
    """

    def __init__(self) -> None:
        self._held: dict[str, torch.Tensor] = {}

    def tensor(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A float32 tensor of ``shape`` under ``name``, whatever it holds from before."""
        held = self._held.get(name)
        if held is None or held.shape != shape:
            held = self._held[name] = torch.empty(shape)
        return held

    def kept(self, name: str, make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``make()``'s tensor, made the first time ``name`` is asked for (name what it
        depends on)."""
        if name not in self._held:
            self._held[name] = make()
        return self._held[name]


def _empty(scratch: Scratch | None, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape) if scratch is None else scratch.tensor(name, shape)


def rotation_grid(angles: torch.Tensor, size: int, scratch: Scratch | None = None
                  ) -> torch.Tensor:
    """Sampling grids (B, size, size, 2) for ``F.grid_sample`` that rotate square images
    counter-clockwise by ``angles`` degrees about their centre: the inverse map torchvision's
    ``rotate`` builds (``_get_inverse_affine_matrix(center, -angle, ...)``), evaluated at pixel
    centres in normalised coordinates as ``F.affine_grid(..., align_corners=False)`` does."""
    rad = torch.deg2rad(-angles.double())
    return grid_from(torch.cos(rad).float(), torch.sin(rad).float(), pixel_centres(size),
                     scratch)


def pixel_centres(size: int) -> torch.Tensor:
    """The centres of ``size`` pixels in normalised coordinates (``align_corners=False``)."""
    return (torch.arange(size, dtype=torch.float32) * 2 + 1) / size - 1


def grid_from(cos: torch.Tensor, sin: torch.Tensor, coords: torch.Tensor,
              scratch: Scratch | None = None) -> torch.Tensor:
    """``rotation_grid`` from the cosine and sine of each (negated) angle, (B,), and the pixel
    centres (size,); ops an ONNX graph has too (``bench.deploy.export.graph``).

    The grid of angle 0, (x, y) at every pixel, times the cosine plus its quarter turn,
    (y, -x), times the sine, computed straight in the (B, size, size, 2) layout
    ``grid_sample`` reads instead of stacked from two components: the numbers of
    ``cos * x + sin * y`` and ``cos * y - sin * x`` bit for bit, one copy fewer (in
    ``scratch``'s tensors when given, which keeps the axes of each size: give it only with
    ``pixel_centres(size)``, as ``rotation_grid`` does)."""
    size = coords.shape[0]

    def axes() -> torch.Tensor:
        x, y = coords.view(1, size).expand(size, size), coords.view(size, 1).expand(size, size)
        return torch.stack([torch.stack([x, y], dim=-1), torch.stack([y, -x], dim=-1)])

    if scratch is None:
        along, across = axes()
        grid = along * cos.view(-1, 1, 1, 1)
        return grid.add_(across * sin.view(-1, 1, 1, 1))
    # kept under the size: with a scratch, ``coords`` are always ``rotation_grid``'s centres
    along, across = scratch.kept(f"axes{size}", axes)
    shape = (cos.shape[0], size, size, 2)
    grid = torch.mul(along, cos.view(-1, 1, 1, 1), out=scratch.tensor("grid", shape))
    return grid.add_(torch.mul(across, sin.view(-1, 1, 1, 1), out=scratch.tensor("turn", shape)))


def rotate_batch(images: torch.Tensor, angles: torch.Tensor, interpolation: str,
                 scratch: Scratch | None = None) -> torch.Tensor:
    """Each image of (B, C, S, S) rotated by its own angle, with ``TF.rotate``'s geometry (centre
    of the image, zero fill, no expansion). Multiples of 90 degrees are exact pixel permutations
    (``torch.rot90``); the other angles share one ``grid_sample`` call (written into
    ``scratch``'s tensors when given: the same numbers)."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError("rotate_batch expects square images")
    quarter = torch.remainder(angles.double(), 360.0) / 90.0
    exact = quarter == torch.round(quarter)
    idx = torch.nonzero(~exact).flatten()
    if len(idx):
        source = images[idx] if len(idx) < len(images) else images
        grid = rotation_grid(angles[idx], images.shape[-1], scratch)
        if scratch is None:
            sampled = F.grid_sample(source, grid, mode=interpolation, padding_mode="zeros",
                                    align_corners=False)
        else:
            sampled = torch.ops.aten.grid_sampler_2d.out(
                source, grid, _GRID_MODES[interpolation], 0, False,  # zeros, align_corners
                out=scratch.tensor("sampled", tuple(source.shape)))
        if len(idx) == len(images):
            return sampled
    out = _empty(scratch, "rotated", tuple(images.shape))
    if len(idx):
        out[idx] = sampled
    for i in torch.nonzero(exact).flatten().tolist():
        out[i] = torch.rot90(images[i], int(quarter[i].round()) % 4, dims=(-2, -1))
    return out


def grayscale_mean(images: torch.Tensor, scratch: Scratch | None = None) -> torch.Tensor:
    """The mean of ``TF.rgb_to_grayscale`` of each image of (B, 3, H, W), or of the RGB image a
    one-channel batch stands for (three equal channels), with the same weights in the same
    order, (B, 1, 1, 1)."""
    if images.shape[-3] == 3:
        gray = TF.rgb_to_grayscale(images)
    else:
        gray = torch.mul(images, 0.2989, out=_empty(scratch, "gray", tuple(images.shape)))
        gray.add_(images, alpha=0.587).add_(images, alpha=0.114)
    return gray.mean(dim=(-3, -2, -1), keepdim=True)


def apply_transforms(images: torch.Tensor, params: np.ndarray, config: FeatureConfig,
                     scratch: Scratch | None = None) -> torch.Tensor:
    """Transform T_i of each float image in [0, 1], (B, C, S, S), with its own (angle,
    brightness, contrast) row of ``params`` (B, 3): rotation, then ``TF.adjust_brightness`` and
    ``TF.adjust_contrast`` vectorised over the batch (a factor of 1 leaves an image as it is).

    ``C`` is 3, or 1 for a batch of grayscale images (a third of the work; the result equals
    the transformed three-channel image's first channel).
    """
    p = torch.as_tensor(np.asarray(params, dtype=np.float32))
    out = rotate_batch(images, p[:, 0], config.rotation_interpolation, scratch)
    brightness, contrast = p[:, 1].view(-1, 1, 1, 1), p[:, 2].view(-1, 1, 1, 1)
    if bool((brightness != 1).any()):
        out.mul_(brightness).clamp_(0, 1)
    if bool((contrast != 1).any()):
        mean = grayscale_mean(out, scratch)
        out.mul_(contrast).add_(mean.mul(1.0 - contrast)).clamp_(0, 1)
    return out


def prepare_batch(images: torch.Tensor, params: np.ndarray, config: FeatureConfig,
                  scales: tuple[int, ...], out: list[torch.Tensor] | None = None,
                  scratch: Scratch | None = None) -> list[torch.Tensor]:
    """The extractor's inputs for uint8 images (B, C, S, S), C = 1 (grayscale) or 3: each image
    transformed by its row of ``params``, resized to every scale, normalised to 3 channels
    (written into ``out``, one (B', 3, s, s) buffer per scale with B' >= B, when given).

    The same numbers as transforming the 3-channel float image, normalising and resizing
    (``scale_inputs``), up to float rounding: resizing is linear, so it commutes with the
    per-channel normalisation, which is done last so grayscale images are carried as one
    channel until then. With ``scratch`` its temporaries are reused from batch to batch, to
    the same numbers.
    """
    if scratch is None:
        floats = TF.to_dtype(images, torch.float32, scale=True)
    else:  # TF.to_dtype's arithmetic, in place
        floats = scratch.tensor("floats", tuple(images.shape)).copy_(images).mul_(1.0 / 255)
    transformed = apply_transforms(floats, params, config, scratch)
    return normalized_scales(transformed, scales, config.downscale_mode, out, scratch)


def normalized_scales(images: torch.Tensor, scales: tuple[int, ...], mode: str = "bilinear",
                      out: list[torch.Tensor] | None = None, scratch: Scratch | None = None
                      ) -> list[torch.Tensor]:
    """Float images in [0, 1] (B, C, S, S), C = 1 or 3, resized to every scale and normalised
    with ImageNet's mean and deviation to 3 channels: the extractor's inputs (in ``out``'s
    buffers when given, else new ones).

    (x - mean) / std is one multiply-add per output channel, with the numbers of one broadcast
    over the channels; written into reused buffers it spares the page faults of a fresh 40 MB
    batch at 448 px (``prepare_batch`` on a batch of 16 MTD images, one thread: 68.2 -> 62.1
    ms; benchmarks/transform_cost.py)."""
    scale = 1.0 / torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    shift = -torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1) * scale
    n = images.shape[0]
    result = []
    for i, x in enumerate(scale_inputs(images, scales, mode, scratch)):
        size = x.shape[-1]
        y = out[i][:n] if out is not None else torch.empty(n, 3, size, size)
        for c in range(3):
            torch.addcmul(shift[c], x[:, c if x.shape[1] == 3 else 0], scale[c], out=y[:, c])
        result.append(y)
    return result


def scale_inputs(images: torch.Tensor, scales: tuple[int, ...], mode: str,
                 scratch: Scratch | None = None) -> list[torch.Tensor]:
    """``images`` resized to each of ``scales`` (antialiased for smooth modes; into
    ``scratch``'s tensors when given, the kernel ``F.interpolate`` calls); a scale equal to the
    input size passes the tensor through untouched."""
    out = []
    for size in scales:
        x = images
        if x.shape[-1] != size or x.shape[-2] != size:
            if scratch is not None and mode in _ANTIALIASED:
                x = _ANTIALIASED[mode].out(x, [size, size], False, None, None, out=scratch.tensor(
                    f"scale{size}", (*x.shape[:2], size, size)))
            else:
                smooth = mode in ("bilinear", "bicubic")
                x = F.interpolate(x, size=(size, size), mode=mode, antialias=smooth)
        out.append(x)
    return out


def normalize(batch: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation (Sec. 4.2: the extractor is pretrained on ImageNet)."""
    return TF.normalize(batch, IMAGENET_MEAN, IMAGENET_STD)
