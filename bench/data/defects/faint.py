"""Small, faint defects like the real ones of surface inspection (MTD's cracks, blowholes and
uneven tiles; ELPV's cracks and dark cell areas), ours:

- ``crack``: a thin dark line wandering as a random walk (with a branch now and then), 1-3
  pixels wide at 300 pixels, anti-aliased, darker by a drawn contrast;
- ``pit``: one to three small dark holes with irregular rims (blowholes);
- ``uneven``: a large, smooth, low-contrast darkening or brightening of an irregular region
  (a raised-cosine profile, so it starts from zero at its edge).

Each changes only the pixels its profile covers (the mask is where the profile is above
zero), and each may lie anywhere in the region, borders included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.defects.base import (
    Canvas,
    Range,
    Recipe,
    RecipeParams,
    add,
    coords,
    supersampled_line,
)
from bench.data.defects.perlin import perlin_noise
from bench.data.defects.registry import register_recipe


def _walk(start: tuple[float, float], angle: float, length: float, steps: int, wiggle: float,
          rng: np.random.Generator) -> np.ndarray:
    """Points (steps + 1, 2) of a random walk: ``length`` in all, the heading turning by a
    normal step of ``wiggle`` radians each step."""
    points = [np.array(start, dtype=np.float64)]
    for _ in range(steps):
        angle += rng.normal(0, wiggle)
        points.append(points[-1] + length / steps * np.array([np.sin(angle), np.cos(angle)]))
    return np.array(points)


@dataclass(frozen=True)
class CrackParams(RecipeParams):
    length: Range = (0.15, 0.6)  # of the shorter side
    width: Range = (0.003, 0.01)  # of the shorter side (about 1-3 px at 300 px)
    contrast: Range = (20, 70)  # grey levels darker at the line's core
    wiggle: float = 0.25  # radians of heading change per step (standard deviation)
    branch: float = 0.3  # the share of cracks with a branch


@register_recipe
class Crack(Recipe):
    name = "crack"
    Params = CrackParams
    description = "a thin dark random-walk crack, sometimes branched"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        h, w = canvas.shape
        side = min(h, w)
        length = rng.uniform(*p.length) * side
        width = max(0.7, rng.uniform(*p.width) * side)
        angle = rng.uniform(0, 2 * np.pi)
        start = canvas.centre(rng)
        steps = int(rng.integers(12, 30))
        # Walk both ways from the centre, so the crack passes through a point of the region.
        ahead = _walk(start, angle, length / 2, steps // 2, p.wiggle, rng)
        behind = _walk(start, angle + np.pi, length / 2, steps // 2, p.wiggle, rng)
        line = np.concatenate([behind[::-1], ahead[1:]])
        coverage = supersampled_line(h, w, line, width)
        if rng.random() < p.branch:
            fork = line[int(rng.integers(len(line)))]
            arm = _walk(tuple(fork), angle + rng.choice([-1, 1]) * rng.uniform(0.4, 1.2),
                        length * rng.uniform(0.2, 0.5), max(4, steps // 3), p.wiggle, rng)
            coverage = np.maximum(coverage, supersampled_line(h, w, arm, width * 0.8))
        contrast = rng.uniform(*p.contrast)
        return add(canvas.image, -contrast * coverage), coverage > 0


@dataclass(frozen=True)
class PitParams(RecipeParams):
    radius: Range = (0.004, 0.02)  # of the shorter side (about 1-6 px at 300 px)
    contrast: Range = (30, 90)  # grey levels darker at the centre
    count: Range = (1, 3)


@register_recipe
class Pit(Recipe):
    name = "pit"
    Params = PitParams
    description = "one to three small dark holes with irregular rims (blowholes)"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        h, w = canvas.shape
        yy, xx = coords(h, w)
        side = min(h, w)
        depth = np.zeros((h, w), np.float32)
        cy, cx = canvas.centre(rng)
        for i in range(int(rng.integers(int(p.count[0]), int(p.count[1]) + 1))):
            if i:  # the others near the first, as blowholes cluster
                cy, cx = (np.clip(cy + rng.normal(0, 0.03 * side), 0, h - 1),
                          np.clip(cx + rng.normal(0, 0.03 * side), 0, w - 1))
            radius = max(1.0, rng.uniform(*p.radius) * side)
            theta = np.arctan2(yy - cy, xx - cx)
            wobble = 1 + 0.25 * np.sin(3 * theta + rng.uniform(0, 2 * np.pi)) * rng.uniform(0, 1)
            r = np.hypot(yy - cy, xx - cx) / (radius * wobble)
            profile = np.clip(1 - r * r, 0, 1) ** 0.5
            depth = np.maximum(depth, profile * rng.uniform(*p.contrast))
        return add(canvas.image, -depth), depth > 0


@dataclass(frozen=True)
class UnevenParams(RecipeParams):
    radius: Range = (0.1, 0.35)  # of the shorter side
    contrast: Range = (8, 30)  # grey levels at the centre, darker or brighter
    darker: float = 0.7  # the share that darkens


@register_recipe
class Uneven(Recipe):
    name = "uneven"
    Params = UnevenParams
    description = "a large, smooth, low-contrast darkening or brightening"

    def make(self, canvas: Canvas, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        p = self.params
        h, w = canvas.shape
        yy, xx = coords(h, w)
        side = min(h, w)
        cy, cx = canvas.centre(rng)
        radius = rng.uniform(*p.radius) * side
        ratio = rng.uniform(0.5, 2.0)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = (dx * np.cos(angle) + dy * np.sin(angle)) / (radius * np.sqrt(ratio))
        v = (-dx * np.sin(angle) + dy * np.cos(angle)) / (radius / np.sqrt(ratio))
        rim = 1 + 0.3 * perlin_noise(h, w, (2, 2), rng)  # an irregular outline
        r = np.hypot(u, v) / rim
        profile = np.where(r < 1, 0.5 * (1 + np.cos(np.pi * np.minimum(r, 1))), 0.0)
        sign = -1.0 if rng.random() < p.darker else 1.0
        contrast = rng.uniform(*p.contrast)
        return add(canvas.image, sign * contrast * profile.astype(np.float32)), profile > 0
