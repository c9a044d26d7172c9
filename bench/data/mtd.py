"""Magnetic Tile Defects (Huang et al. 2018): check the GitHub archive and lay it out MVTec-style.

The archive holds ``MT_<Class>/Imgs/<name>.jpg`` with a ``<name>.png`` pixel mask beside each.
The import writes ``<out>/train/good`` (the original DifferNet authors' 761 training files),
``<out>/test/good`` (the other 191 defect-free images), ``<out>/test/<defect>`` and
``<out>/ground_truth/<defect>/<stem>_mask.png``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from bench.data.base import NORMAL, DatasetSpec, DownloadInfo, Sample, Split
from bench.data.folder import load_folder_split
from bench.errors import BenchError

MTD_CATEGORY = "mtd"
# The authors' 761 training files (how the import lays the folder out), or a seeded 80/20 split
# of all 952 defect-free images as Sec. 4.1 describes.
MTD_SPLITS = ("authors", "random")
MTD_URL = "https://github.com/abin24/Magnetic-tile-defect-datasets./archive/refs/heads/master.zip"
MTD_ARCHIVE_NAME = "Magnetic-tile-defect-datasets.-master.zip"
# GitHub re-creates archive bytes on demand, so a checksum would break; counts are checked instead.
MTD_CLASSES = {"Free": 952, "Blowhole": 115, "Break": 85, "Crack": 57, "Fray": 32, "Uneven": 103}
TRAIN_LIST = Path(__file__).with_name("mtd_train_filenames.txt")


def load_train_filenames(path: Path = TRAIN_LIST) -> list[str]:
    """The defect-free file names the original DifferNet authors trained on (761 of 952)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def find_mtd_root(extracted: Path) -> Path:
    """The folder holding the ``MT_<Class>`` folders: ``extracted`` itself or one level down."""
    for candidate in (extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())):
        if (candidate / "MT_Free").is_dir():
            return candidate
    raise BenchError(
        f"no MT_Free folder found in {extracted}: this is not the Magnetic Tile Defects archive; "
        f"download it from {MTD_URL}."
    )


def verify_mtd(root: Path) -> dict[str, list[Path]]:
    """Every class's images, after checking the exact counts and that each image has its mask."""
    images: dict[str, list[Path]] = {}
    for cls, expected in MTD_CLASSES.items():
        folder = root / f"MT_{cls}" / "Imgs"
        jpgs = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
        missing_masks = [p.name for p in jpgs if not p.with_suffix(".png").is_file()]
        if len(jpgs) != expected or missing_masks:
            detail = f"{len(jpgs)} images, expected {expected}"
            if missing_masks:
                detail += f", {len(missing_masks)} without a .png mask (e.g. {missing_masks[0]})"
            raise BenchError(
                f"MTD class {cls} has {detail}; the archive is incomplete or altered: delete it "
                "and download it again."
            )
        images[cls] = jpgs
    return images


def _link_or_copy(src: Path, dst: Path) -> None:
    # A hard link costs no space or time; fall back to a copy across file systems.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def layout_mtd(extracted: Path, out_category_dir: Path, train_files: list[str]) -> None:
    """Write the MVTec-style category folder ``out_category_dir`` from an extracted archive."""
    images = verify_mtd(find_mtd_root(Path(extracted)))
    free = {p.name: p for p in images["Free"]}
    unknown = sorted(set(train_files) - set(free))
    if unknown:
        raise BenchError(
            f"the MTD training list names {len(unknown)} files not in MT_Free (e.g. {unknown[0]}); "
            "fix the list so it holds only MT_Free file names."
        )
    out = Path(out_category_dir)
    train = set(train_files)
    groups = {("train", NORMAL): [free[n] for n in sorted(train)],
              ("test", NORMAL): [p for n, p in sorted(free.items()) if n not in train]}
    groups.update({("test", cls.lower()): images[cls] for cls in MTD_CLASSES if cls != "Free"})
    for (part, defect), files in groups.items():
        folder = out / part / defect
        folder.mkdir(parents=True, exist_ok=True)
        masks = out / "ground_truth" / defect
        if defect != NORMAL:
            masks.mkdir(parents=True, exist_ok=True)
        for image in files:
            _link_or_copy(image, folder / image.name)
            if defect != NORMAL:
                _link_or_copy(image.with_suffix(".png"), masks / f"{image.stem}_mask.png")


def random_split(split: Split, seed: int) -> Split:
    """All 952 defect-free images pooled and split 80/20 at random (seeded), as Sec. 4.1 says."""
    normal = sorted(split.train + [s for s in split.test if s.label == 0], key=lambda s: s.path.name)
    rng = np.random.default_rng([seed, 80])
    order = rng.permutation(len(normal))
    n_test = round(0.2 * len(normal))
    test_normal = [normal[i] for i in order[:n_test]]
    train = [Sample(normal[i].path, 0) for i in sorted(order[n_test:])]
    test = [Sample(s.path, 0) for s in test_normal] + [s for s in split.test if s.label == 1]
    return Split(split.dataset, split.category, train, test, meta=dict(split.meta))


def load_mtd(root: Path, category: str, seed: int = 0, variant: str = "authors") -> Split:
    if variant not in MTD_SPLITS:
        raise BenchError(f"unknown MTD split {variant!r}; choose one of {', '.join(MTD_SPLITS)}.")
    split = load_folder_split(Path(root), category, dataset="mtd")
    return random_split(split, seed) if variant == "random" else split


SPEC = DatasetSpec(
    "mtd", (MTD_CATEGORY,), photometric=True, load=load_mtd,
    download=DownloadInfo(
        MTD_URL, MTD_ARCHIVE_NAME, None,
        lambda unpacked, staging: layout_mtd(unpacked, staging / MTD_CATEGORY,
                                             load_train_filenames()),
    ),
    split_variants=MTD_SPLITS,
)
