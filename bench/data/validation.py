"""A validation split made from training normals only, so a run can be judged without the test set.

``--validation synthetic`` holds out a seeded share of a cell's *training* images; each held-out
image is kept as a defect-free validation image and also gives one defective copy, made by one
of four documented, seeded defects drawn at the image's own resolution, with a mask:

- ``patch``: a rectangle (2-6 % of the image) cut from another training image and pasted at a
  random place (CutPaste, Li et al. 2021), so the defect is real texture in the wrong place;
- ``scratch``: a straight line 1-2 % of the image wide and 20-50 % long, darker or brighter;
- ``blob``: a filled ellipse (1-4 % of the image) of another intensity, with a soft edge;
- ``dent``: a smooth Gaussian darkening or brightening (sigma 3-6 % of the image).

The rest of the training images train the model. Nothing here opens a test file: the sources
are the training samples and nothing else (tests/test_validation.py checks every file opened).
The images are written under the cache (``<cache>/validation/<key>/``) and reused.

>>> DEFECT_KINDS
('patch', 'scratch', 'blob', 'dent')
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import Sample
from bench.store.atomic import raise_if_disk_full

DEFECT_KINDS = ("patch", "scratch", "blob", "dent")
VALIDATION_SHARE = 0.2  # of the training images, held out (at least 2, at most half)
RECIPE = "v1"  # change with the defect recipes, so cached validation sets are remade


@dataclass
class ValidationSplit:
    train: list[Sample]  # what the model trains on
    validation: list[Sample]  # held-out normals (label 0) and their defective copies (label 1)
    meta: dict


def _gray_or_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        if img.mode in ("L", "I;16", "I", "F"):
            return np.asarray(img.convert("L"), dtype=np.float32)
        return np.asarray(img.convert("RGB"), dtype=np.float32)


def _paste_patch(image: np.ndarray, donor: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    area = rng.uniform(0.02, 0.06) * h * w
    aspect = rng.uniform(0.5, 2.0)
    ph = int(np.clip(round(np.sqrt(area * aspect)), 2, h - 1))
    pw = int(np.clip(round(np.sqrt(area / aspect)), 2, w - 1))
    dh, dw = donor.shape[:2]
    donor = np.asarray(Image.fromarray(donor.astype(np.uint8)).resize((w, h), Image.BILINEAR),
                       dtype=np.float32) if (dh, dw) != (h, w) else donor
    if donor.ndim != image.ndim:  # a grayscale donor for a colour image or the other way round
        donor = donor.mean(axis=-1) if donor.ndim == 3 else np.repeat(donor[..., None], 3, -1)
    sy, sx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
    ty, tx = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
    out = image.copy()
    out[ty:ty + ph, tx:tx + pw] = donor[sy:sy + ph, sx:sx + pw]
    mask = np.zeros((h, w), bool)
    mask[ty:ty + ph, tx:tx + pw] = True
    return out, mask


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.mgrid[0:h, 0:w].astype(np.float32)


def _shifted(image: np.ndarray, weight: np.ndarray, rng: np.random.Generator, low: float,
             high: float) -> np.ndarray:
    """``image`` moved by +-(low..high) grey levels where ``weight`` (0..1) says."""
    shift = rng.choice([-1.0, 1.0]) * rng.uniform(low, high)
    w = weight[..., None] if image.ndim == 3 else weight
    return np.clip(image + shift * w, 0, 255)


def _scratch(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    yy, xx = _coords(h, w)
    size = min(h, w)
    cy, cx = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0.2 * w, 0.8 * w)
    angle = rng.uniform(0, np.pi)
    along = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    across = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    half_length = rng.uniform(0.1, 0.25) * size
    half_width = max(0.5, rng.uniform(0.005, 0.01) * size)
    mask = (np.abs(along) <= half_length) & (np.abs(across) <= half_width)
    return _shifted(image, mask.astype(np.float32), rng, 40, 90), mask


def _blob(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    yy, xx = _coords(h, w)
    area = rng.uniform(0.01, 0.04) * h * w
    ratio = rng.uniform(0.5, 2.0)
    ry, rx = np.sqrt(area * ratio / np.pi), np.sqrt(area / ratio / np.pi)
    cy, cx = rng.uniform(ry, h - ry), rng.uniform(rx, w - rx)
    r = np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)
    weight = np.clip((1.15 - r) / 0.3, 0, 1)  # a soft edge
    return _shifted(image, weight, rng, 35, 80), r <= 1.0


def _dent(image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    h, w = image.shape[:2]
    yy, xx = _coords(h, w)
    sigma = rng.uniform(0.03, 0.06) * min(h, w)
    cy, cx = rng.uniform(0.15 * h, 0.85 * h), rng.uniform(0.15 * w, 0.85 * w)
    weight = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2))
    return _shifted(image, weight, rng, 40, 80), weight >= 0.5


def make_defect(image: np.ndarray, kind: str, donor: np.ndarray, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """A defective copy of ``image`` (float 0-255, HxW or HxWx3) and its boolean mask."""
    if kind == "patch":
        return _paste_patch(image, donor, rng)
    return {"scratch": _scratch, "blob": _blob, "dent": _dent}[kind](image, rng)


def _key(train: list[Sample], seed: int, share: float) -> str:
    blob = json.dumps({"files": [str(s.path) for s in train], "seed": seed, "share": share,
                       "recipe": RECIPE})
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synthetic_validation(train: list[Sample], seed: int, folder: Path,
                         share: float = VALIDATION_SHARE) -> ValidationSplit:
    """Hold out ``share`` of ``train`` (seeded) and pair the held-out images with synthetic
    defects made from them, written under ``folder`` (a cache's ``validation/``); returns the
    reduced training set and the validation samples."""
    n = len(train)
    n_val = int(min(max(2, round(share * n)), n // 2))
    if n_val < 2 or n - n_val < 1:
        raise ValueError(f"{n} training images are too few to hold out a validation split")
    rng = np.random.default_rng([seed, 7001])
    held = sorted(rng.choice(n, size=n_val, replace=False).tolist())
    held_set = set(held)
    kept = [s for i, s in enumerate(train) if i not in held_set]
    folder = Path(folder) / _key(train, seed, share)
    if not (folder / "done").is_file():
        _write(train, held, kept, seed, folder)
    validation = [Sample(train[i].path, 0) for i in held]
    for j, i in enumerate(held):
        kind = DEFECT_KINDS[j % len(DEFECT_KINDS)]
        name = f"{j:04d}_{train[i].path.stem}.png"
        validation.append(Sample(folder / kind / name, 1, kind, folder / "masks" / kind / name))
    meta = {"kind": "synthetic", "share": share, "n_train": len(kept), "n_normal": n_val,
            "n_defective": n_val, "defects": list(DEFECT_KINDS), "recipe": RECIPE,
            "held_out": [train[i].path.name for i in held]}
    return ValidationSplit(kept, validation, meta)


def _write(train: list[Sample], held: list[int], kept: list[Sample], seed: int,
           folder: Path) -> None:
    """The defective images and masks, built in a temporary folder and renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".validation-", dir=folder.parent))
    try:
        for j, i in enumerate(held):
            kind = DEFECT_KINDS[j % len(DEFECT_KINDS)]
            rng = np.random.default_rng([seed, 7002, j])
            image = _gray_or_rgb(train[i].path)
            donor = _gray_or_rgb(kept[rng.integers(len(kept))].path) if kind == "patch" else None
            defective, mask = make_defect(image, kind, donor, rng)
            name = f"{j:04d}_{train[i].path.stem}.png"
            for sub, array in ((kind, defective.round().astype(np.uint8)),
                               (f"masks/{kind}", mask.astype(np.uint8) * 255)):
                (work / sub).mkdir(parents=True, exist_ok=True)
                Image.fromarray(array).save(work / sub / name)
        (work / "done").write_text("complete\n")
        if not (folder / "done").is_file():  # else another process finished it meanwhile
            if folder.exists():  # a half-made folder from a killed run
                shutil.rmtree(folder)
            os.replace(work, folder)
    except OSError as err:
        raise_if_disk_full(err, folder.parent)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
