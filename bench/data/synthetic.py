"""A small synthetic defect dataset for tests and smoke runs: no download, a second to make.

Each category is a family of textures ("stripes": oriented sinusoidal stripes, "blobs": smooth
gaussian blobs on a noisy background) with per-image jitter; test images carry one defect,
"scratch" (a thin bright or dark line) or "spot" (a filled disc of another intensity), each
covering only a few percent of the image so that mean brightness alone does not give it away
(``defect_scale`` widens both: the smoke suite uses 3, see ``bench/suites/smoke.toml``).
On request a third kind, "smudge": a disc where the texture is wiped out and replaced by its own
mean intensity. It changes texture, not intensity, so a per-pixel intensity reference (the
distance to the mean training image) cannot find it; a detector must see the missing pattern.
"""

from __future__ import annotations

import shutil
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.data.base import NORMAL, DatasetSpec
from bench.data.folder import folder_loader, is_category_dir, list_categories
from bench.errors import BenchError

DEFECTS = ("scratch", "spot")  # the default set; "smudge" is made only when asked for


def _stripes(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    angle = np.deg2rad(30 + rng.normal(0, 4))
    cycles = 6 * rng.uniform(0.9, 1.1)
    wave = np.sin(2 * np.pi * cycles * (xx * np.cos(angle) + yy * np.sin(angle))
                  + rng.uniform(0, 2 * np.pi))
    return 0.5 + rng.uniform(0.2, 0.3) * wave


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    img = np.full((size, size), 0.3)
    for _ in range(rng.integers(3, 7)):
        cy, cx = rng.uniform(0, size, 2)
        sigma = size * rng.uniform(0.06, 0.12)
        img += rng.uniform(0.25, 0.45) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return img


# Texture generator and an RGB tint per category, so the categories differ in colour too.
TEXTURES: dict[str, tuple[Callable[[np.random.Generator, int], np.ndarray], tuple[float, ...]]] = {
    "stripes": (_stripes, (1.0, 0.85, 0.65)),
    "blobs": (_blobs, (0.7, 0.9, 1.0)),
}


def _scratch(rng: np.random.Generator, size: int, scale: float = 1.0) -> np.ndarray:
    """A thin straight line of random direction, about 2 % of the image (``scale`` x its width)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cy, cx = rng.uniform(0.3 * size, 0.7 * size, 2)
    angle = rng.uniform(0, np.pi)
    along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    half_length = size * rng.uniform(0.25, 0.4)
    return (np.abs(along) <= half_length) & (np.abs(across) <= (0.0125 * size + 0.5) * scale)


def _spot(rng: np.random.Generator, size: int, scale: float = 1.0) -> np.ndarray:
    """A filled disc, about 2-4 % of the image (``scale`` x its radius)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    cy, cx = rng.uniform(0.2 * size, 0.8 * size, 2)
    radius = size * rng.uniform(0.08, 0.11) * scale
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2


_DEFECT_MASKS = {"scratch": _scratch, "spot": _spot, "smudge": _spot}


def _render(rng: np.random.Generator, category: str, size: int, defect: str | None,
            defect_scale: float = 1.0) -> tuple[np.ndarray, np.ndarray | None]:
    texture, tint = TEXTURES[category]
    gray = texture(rng, size) + rng.uniform(-0.05, 0.05)  # global brightness jitter
    mask = None
    if defect is not None:
        mask = _DEFECT_MASKS[defect](rng, size, defect_scale)
        level = gray[mask].mean()
        if defect != "smudge":
            # Bright or dark at random, so the defect does not shift the mean one way.
            level += rng.choice([-1, 1]) * rng.uniform(0.3, 0.4)
        gray = np.where(mask, level, gray)
    rgb = gray[..., None] * np.asarray(tint) + rng.normal(0, 0.03, (size, size, 3))
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8), mask


def _write_category(out: Path, category: str, rng: np.random.Generator, size: int,
                    counts: dict[tuple[str, str], int], defect_scale: float) -> None:
    for (part, defect), count in counts.items():
        folder = out / part / defect
        folder.mkdir(parents=True)
        if defect != NORMAL:
            (out / "ground_truth" / defect).mkdir(parents=True)
        for i in range(count):
            image, mask = _render(rng, category, size, None if defect == NORMAL else defect,
                                  defect_scale)
            Image.fromarray(image).save(folder / f"{i:03d}.png")
            if mask is not None:
                Image.fromarray(mask.astype(np.uint8) * 255).save(
                    out / "ground_truth" / defect / f"{i:03d}_mask.png")


def make_synthetic(
    root: Path,
    categories: tuple[str, ...] = ("stripes", "blobs"),
    n_train: int = 40,
    n_test_good: int = 16,
    n_test_defect: int = 16,
    size: int = 128,
    seed: int = 0,
    defects: tuple[str, ...] = DEFECTS,
    defect_scale: float = 1.0,
) -> Path:
    """Write MVTec-style synthetic categories under ``root`` and return ``root``.

    ``n_test_defect`` images are made per defect type; ``defect_scale`` multiplies a spot's
    radius and a scratch's width (1: the default data). The same arguments give the same bytes.
    Categories already under ``root`` are kept as they are.
    """
    unknown = [c for c in categories if c not in TEXTURES]
    if unknown:
        raise BenchError(f"no synthetic category {unknown[0]!r}; choose from {', '.join(TEXTURES)}.")
    unknown = [d for d in defects if d not in _DEFECT_MASKS]
    if unknown:
        raise BenchError(f"no synthetic defect {unknown[0]!r}; choose from {', '.join(_DEFECT_MASKS)}.")
    if not defect_scale > 0:
        raise BenchError(f"defect_scale must be positive, got {defect_scale!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    counts = {("train", NORMAL): n_train, ("test", NORMAL): n_test_good}
    counts.update({("test", d): n_test_defect for d in defects})
    # Built in a hidden temporary folder and renamed into place: a folder that exists is whole.
    work = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=root))
    try:
        for category in categories:
            dest = root / category
            if is_category_dir(dest):
                continue
            if dest.exists():
                raise BenchError(f"{dest} exists but is not a dataset category folder; move it "
                                 "away or pick another --data-root.")
            # Seeded by the category's name, so a category looks the same whatever else is made.
            rng = np.random.default_rng([seed, zlib.crc32(category.encode())])
            _write_category(work / category, category, rng, size, counts, defect_scale)
            (work / category).rename(dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return root


# What a suite's [dataset_options] may set: make_synthetic's knobs except where and which.
OPTIONS = ("n_train", "n_test_good", "n_test_defect", "size", "seed", "defects", "defect_scale")


def prepare_synthetic(data_root: Path, categories: tuple[str, ...] | None,
                      options: dict[str, Any] | None = None) -> None:
    """Generate on demand: the categories asked for, or all of them into an empty root, with a
    suite's ``options`` (``OPTIONS``). Categories already on disk are used as they are."""
    options = options or {}
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise BenchError(f"unknown synthetic dataset option(s) {', '.join(unknown)}; the options "
                         f"are {', '.join(OPTIONS)}.")
    data_root = Path(data_root)
    wanted = [c for c in (categories or TEXTURES) if not is_category_dir(data_root / c)]
    if wanted and (categories or not data_root.is_dir() or not list_categories(data_root)):
        make_synthetic(data_root, tuple(wanted), **options)


SPEC = DatasetSpec("synthetic", None, photometric=False, load=folder_loader("synthetic"),
                   prepare=prepare_synthetic)
