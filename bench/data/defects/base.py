"""What every synthetic defect recipe shares: the interface, its parameters, and where a defect
may go.

A recipe turns one held-out training image into a defective copy and a boolean mask of every
pixel it changed. It sees only training normals: the image itself and, through ``Canvas.donor``,
other training images that are not held out. Images are float32 arrays in 0-255, (H, W) for
grayscale or (H, W, 3) for colour; a recipe never changes a pixel outside its mask
(tests/test_defects.py checks it for every registered recipe after rounding to uint8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from bench.errors import BenchError

Range = tuple[float, float]


@dataclass(frozen=True)
class RecipeParams:
    """A recipe's parameters: ranges to draw from (its severity: size, opacity, contrast)."""

    def draw(self, rng: np.random.Generator, name: str) -> float:
        low, high = getattr(self, name)
        return float(rng.uniform(low, high))


@dataclass
class Canvas:
    """What a recipe may read: the image, where a defect may be centred (``region``: the whole
    image, borders included, for textures and tiles; the object where a foreground can be told),
    and a source of other training normals (``donor``)."""

    image: np.ndarray
    region: np.ndarray  # bool (H, W)
    donor: Callable[[np.random.Generator], np.ndarray]

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]

    def centre(self, rng: np.random.Generator) -> tuple[float, float]:
        """A point (y, x) drawn uniformly from ``region``."""
        ys, xs = np.nonzero(self.region)
        i = int(rng.integers(len(ys)))
        return float(ys[i]) + rng.uniform(-0.5, 0.5), float(xs[i]) + rng.uniform(-0.5, 0.5)


class Recipe:
    """The interface: ``name``, ``version`` (bumped when the images it makes change), a
    ``Params`` dataclass of ranges, and ``make(canvas, rng) -> (defective, mask)``.

    Register a subclass with ``@register_recipe`` (``bench.data.defects``); a plugin package may
    do the same and be named as ``module.path:Class`` or through the entry point group
    ``differnet_bench.recipes``.
    """

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    Params: ClassVar[type[RecipeParams]] = RecipeParams
    description: ClassVar[str] = ""

    def __init__(self, **overrides: Any):
        names = {f.name for f in dataclasses.fields(self.Params)}
        unknown = set(overrides) - names
        if unknown:
            raise BenchError(f"recipe {self.name}: unknown parameter(s) {', '.join(sorted(unknown))}"
                             f"; its parameters are {', '.join(sorted(names)) or 'none'}.")
        self.params = self.Params(**overrides)

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def spec(self) -> str:
        """The recipe as ``--recipes`` spells it: its name, then the parameters that differ
        from its defaults (``perlin/opacity=0.1:0.4``)."""
        default = self.Params()
        parts = [self.name]
        for f in dataclasses.fields(self.params):
            value = getattr(self.params, f.name)
            if value != getattr(default, f.name):
                shown = ":".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value}"
                parts.append(f"{f.name}={shown}")
        return "/".join(parts)

    def identity(self) -> dict[str, Any]:
        """Everything its images depend on (a cache key's part)."""
        return {"name": self.name, "version": self.version,
                "params": dataclasses.asdict(self.params)}


# -- helpers the recipes share ------------------------------------------------------------------


def coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)


def add(image: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``image`` plus ``delta`` (H, W) on every channel, clipped to 0-255."""
    d = delta[..., None] if image.ndim == 3 else delta
    return np.clip(image + d, 0, 255)


def blend(image: np.ndarray, other: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``image`` moved towards ``other`` by ``alpha`` (H, W, 0..1) per pixel."""
    a = alpha[..., None] if image.ndim == 3 else alpha
    return image * (1 - a) + other * a


def like(donor: np.ndarray, image: np.ndarray) -> np.ndarray:
    """``donor`` at ``image``'s size and channels."""
    h, w = image.shape[:2]
    if donor.shape[:2] != (h, w):
        donor = resized(donor, h, w)
    if donor.ndim != image.ndim:
        donor = donor.mean(axis=-1) if donor.ndim == 3 else np.repeat(donor[..., None], 3, -1)
    return donor.astype(np.float32)


def resized(array: np.ndarray, h: int, w: int) -> np.ndarray:
    """A float 0-255 image resized bilinearly (PIL, per channel: exact for floats)."""
    if array.ndim == 2:
        return np.asarray(Image.fromarray(array.astype(np.float32), mode="F")
                          .resize((w, h), Image.BILINEAR), dtype=np.float32)
    return np.stack([resized(array[..., c], h, w) for c in range(array.shape[2])], axis=-1)


def jitter(patch: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """CutPaste's colour jitter: brightness and contrast by up to +-``amount`` (and per channel
    for colour, a small hue-like shift)."""
    brightness = 1 + rng.uniform(-amount, amount)
    contrast = 1 + rng.uniform(-amount, amount)
    mean = patch.mean()
    out = (patch - mean) * contrast + mean * brightness
    if patch.ndim == 3:
        out = out * (1 + rng.uniform(-amount / 2, amount / 2, size=3))
    return np.clip(out, 0, 255)


def box(h: int, w: int, area: float, aspect: float) -> tuple[int, int]:
    """A rectangle's (height, width) of ``area`` (a fraction of h * w) and ``aspect`` (h / w),
    at least 2 pixels and at most the image."""
    ph = int(np.clip(round(np.sqrt(area * h * w * aspect)), 2, h))
    pw = int(np.clip(round(np.sqrt(area * h * w / aspect)), 2, w))
    return ph, pw


def place(length: int, centre: float, limit: int) -> int:
    """The start of a span of ``length`` centred near ``centre``, kept inside ``[0, limit)`` so
    it may touch the border (defects reach the edges of textures and tiles)."""
    return int(np.clip(round(centre - length / 2), 0, limit - length))


def log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def supersampled_line(h: int, w: int, points: np.ndarray, width: float, factor: int = 4
                      ) -> np.ndarray:
    """Coverage (H, W, 0..1) of a polyline through ``points`` ((N, 2) as y, x) of ``width``
    pixels, drawn ``factor`` times larger and averaged down (an anti-aliased line)."""
    from PIL import ImageDraw

    canvas = Image.new("L", (w * factor, h * factor), 0)
    draw = ImageDraw.Draw(canvas)
    xy = [(float(x) * factor + factor / 2, float(y) * factor + factor / 2) for y, x in points]
    stroke = max(1, round(width * factor))
    draw.line(xy, fill=255, width=stroke, joint="curve")
    for x, y in (xy[0], xy[-1]):  # round caps
        r = stroke / 2
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    big = np.asarray(canvas, dtype=np.float32) / 255
    return big.reshape(h, factor, w, factor).mean(axis=(1, 3))
