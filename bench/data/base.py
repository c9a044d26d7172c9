"""What every dataset yields: labelled image samples grouped into a train/test split."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from bench.errors import BenchError, CorruptImageError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
NORMAL = "good"


@dataclass(frozen=True)
class Sample:
    """One image. ``label`` is 0 for defect-free, 1 for defective; ``defect`` is the folder name."""

    path: Path
    label: int
    defect: str = NORMAL
    mask_path: Path | None = None

    @property
    def name(self) -> str:
        return f"{self.defect}/{self.path.name}"


@dataclass
class Split:
    """The train (defect-free only) and test samples of one dataset category."""

    dataset: str
    category: str
    train: list[Sample]
    test: list[Sample]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.train:
            raise BenchError(
                f"{self.dataset}/{self.category} has no training images: put defect-free images "
                "in <category>/train/good."
            )
        if any(s.label != 0 for s in self.train):
            raise BenchError(f"{self.dataset}/{self.category}: training images must all be defect-free.")
        labels = {s.label for s in self.test}
        if labels != {0, 1}:
            raise BenchError(
                f"{self.dataset}/{self.category} needs both defect-free (test/good) and defective "
                "(test/<defect>) test images to compute an AUROC; add the missing kind."
            )


@dataclass(frozen=True)
class DownloadInfo:
    """Where a dataset's archive comes from and how it becomes category folders."""

    url: str
    archive_name: str
    sha256: str | None  # None where the host rebuilds the archive on demand (GitHub)
    # (unpacked archive, staging folder) -> the dataset's category folders inside staging,
    # checking the archive's contents on the way
    lay_out: Callable[[Path, Path], None]


@dataclass(frozen=True)
class DatasetSpec:
    """What one dataset module declares: its categories, transforms, download and split.

    ``load`` reads one category's split from the data root (``category``, ``seed`` and the
    dataset's split ``variant``); ``prepare`` makes categories that are generated rather than
    downloaded, called with the data root, the categories wanted (None: all) and a suite's
    ``dataset_options``. A new dataset is one module that defines a ``SPEC`` (and one suite file).
    """

    name: str
    categories: tuple[str, ...] | None  # None: whatever categories are found under the root
    photometric: bool  # Sec. 4.2: brightness/contrast transforms were used for MTD only
    load: Callable[..., Split]
    download: DownloadInfo | None = None
    prepare: Callable[[Path, tuple[str, ...] | None, dict[str, Any]], None] | None = None
    # Names accepted besides ``categories`` (MVTec's "all", the 15 categories pooled), and the
    # categories each needs on disk.
    extra_categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The ways its train/test split can be drawn, the default first (MTD: the authors' files or
    # a seeded random split). A cell's id, its record and the report carry a dataset's variant
    # only when it has more than one.
    split_variants: tuple[str, ...] = ("default",)

    @property
    def downloadable(self) -> bool:
        return self.download is not None

    @property
    def has_split_variants(self) -> bool:
        return len(self.split_variants) > 1

    @property
    def default_split_variant(self) -> str:
        return self.split_variants[0]

    def split_variant(self, asked: str | None) -> str:
        """The variant ``asked`` for (None: the default), checked against the dataset's."""
        if asked is None:
            return self.default_split_variant
        if asked not in self.split_variants:
            raise BenchError(f"dataset {self.name} has no split variant {asked!r}; choose one of "
                             f"{', '.join(self.split_variants)} (--split-variant).")
        return asked


def few_shot(train: list[Sample], shots: int | None, seed: int) -> list[Sample]:
    """A seeded random subset of ``shots`` training images (all of them when ``shots`` is None)."""
    if shots is None or shots >= len(train):
        if shots is not None and shots > len(train):
            raise BenchError(
                f"asked for {shots} training images but only {len(train)} exist; pick --shots "
                f"of at most {len(train)}."
            )
        return list(train)
    if shots < 1:
        raise BenchError(f"--shots must be at least 1, got {shots}.")
    rng = np.random.default_rng([seed, shots])
    chosen = rng.choice(len(train), size=shots, replace=False)
    return [train[i] for i in sorted(chosen)]


def corrupt_image(path: Path) -> CorruptImageError | None:
    """Why ``path`` is not a readable image (the error to raise or record), or None: a quick
    check of the header and structure, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as err:
        return CorruptImageError(f"image {path} cannot be read ({type(err).__name__}); replace "
                                 "or delete the corrupt file.")
    return None


def load_image(path: Path) -> Image.Image:
    """Open an image as RGB (grayscale replicated to 3 channels), or say which file is broken."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except FileNotFoundError:
        raise BenchError(f"image {path} does not exist; check the dataset folder.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(
            f"image {path} cannot be read ({type(err).__name__}); replace or delete the corrupt file."
        ) from None


def load_mask(sample: Sample, size: tuple[int, int]) -> np.ndarray:
    """The sample's binary defect mask at ``size`` (W, H); all zeros when it has none."""
    if sample.mask_path is None:
        return np.zeros((size[1], size[0]), dtype=bool)
    try:
        with Image.open(sample.mask_path) as mask:
            return np.asarray(mask.convert("L").resize(size, Image.NEAREST)) > 0
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CorruptImageError(
            f"mask {sample.mask_path} cannot be read ({type(err).__name__}); replace or delete "
            "the corrupt file."
        ) from None
