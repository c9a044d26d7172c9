"""The dataset registry: which datasets exist, where their categories live, how to get them.

Every dataset lives under one data root as MVTec-style category folders
(``<data_root>/<category>/train/good`` ...): MVTec AD's 15 categories, ``mtd`` for the Magnetic
Tile Defects import, the synthetic categories, or a user's own folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.base import Sample, Split, few_shot
from bench.data.folder import is_category_dir, list_categories, load_folder_split
from bench.errors import BenchError

MVTEC_CATEGORIES = (
    # textures, then objects, in the order of the paper's Table 1
    "grid", "leather", "tile", "carpet", "wood",
    "bottle", "capsule", "pill", "transistor", "zipper",
    "cable", "hazelnut", "metal_nut", "screw", "toothbrush",
)
MVTEC_TEXTURES = frozenset(MVTEC_CATEGORIES[:5])
MVTEC_ALL = "all"  # all 15 MVTec AD categories pooled as one normal class (Sec. 4.5, "Multimodality")
MTD_CATEGORY = "mtd"
MTD_SPLITS = ("authors", "random")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    categories: tuple[str, ...] | None  # None: whatever categories are found under the root
    photometric: bool  # Sec. 4.2: brightness/contrast transforms were used for MTD only
    downloadable: bool


DATASETS: dict[str, DatasetSpec] = {
    "mvtec": DatasetSpec("mvtec", MVTEC_CATEGORIES, photometric=False, downloadable=True),
    "mtd": DatasetSpec("mtd", (MTD_CATEGORY,), photometric=True, downloadable=True),
    "folder": DatasetSpec("folder", None, photometric=False, downloadable=False),
    "synthetic": DatasetSpec("synthetic", None, photometric=False, downloadable=False),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise BenchError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.") from None


def dataset_categories(name: str, data_root: Path) -> list[str]:
    """The categories a dataset offers: fixed for MVTec AD and MTD, discovered otherwise."""
    spec = get_spec(name)
    if spec.categories is not None:
        return list(spec.categories)
    return list_categories(data_root)


def ensure_dataset(name: str, data_root: Path, categories: list[str] | None = None) -> None:
    """Make sure the categories needed are on disk: use what is there, else download or generate."""
    spec = get_spec(name)
    data_root = Path(data_root)
    needed = (categories or list(spec.categories)) if spec.categories else categories
    if name == "mvtec" and needed and MVTEC_ALL in needed:
        needed = list(MVTEC_CATEGORIES)
    if name == "synthetic":
        from bench.data.synthetic import TEXTURES, make_synthetic

        # Generated on demand: the categories asked for, or all of them into an empty root.
        wanted = [c for c in (categories or TEXTURES) if not is_category_dir(data_root / c)]
        if wanted and (categories or not data_root.is_dir() or not list_categories(data_root)):
            make_synthetic(data_root, tuple(wanted))
        return
    if needed and all(is_category_dir(data_root / c) for c in needed):
        return
    if not spec.downloadable:
        if not data_root.is_dir() or not list_categories(data_root):
            raise BenchError(
                f"no dataset categories found under {data_root}; pass --data-root pointing at a "
                "folder of <category>/train/good and <category>/test/<defect> folders."
            )
        return
    from bench.data.download import download_dataset

    download_dataset(name, data_root)


def load_split(
    name: str,
    category: str,
    data_root: Path,
    *,
    shots: int | None = None,
    seed: int = 0,
    mtd_split: str = "authors",
) -> Split:
    """The train/test split of one category, with a seeded few-shot subset of the training set.

    For MTD, ``mtd_split="authors"`` uses the original authors' 761 training files (how the
    import lays the folder out); ``"random"`` pools all 952 defect-free images and draws a
    seeded 80/20 split, as Sec. 4.1 describes.
    """
    spec = get_spec(name)
    if name == "mvtec" and category == MVTEC_ALL:
        split = _pooled_mvtec_split(Path(data_root))
    elif spec.categories is not None and category not in spec.categories:
        raise BenchError(
            f"{name} has no category {category!r}; choose from "
            f"{', '.join(spec.categories)}{', all' if name == 'mvtec' else ''}."
        )
    else:
        split = load_folder_split(Path(data_root), category, dataset=name)
    if name == "mtd" and mtd_split != "authors":
        split = _random_mtd_split(split, seed, mtd_split)
    full_train = len(split.train)
    split.train = few_shot(split.train, shots, seed)
    split.meta.update(
        n_train_available=full_train,
        train_files=[s.path.name for s in split.train] if shots is not None else None,
        mtd_split=mtd_split if name == "mtd" else None,
    )
    return split


def _pooled_mvtec_split(data_root: Path) -> Split:
    """All 15 MVTec AD categories as one normal class: the union of their train and test sets.

    Each sample's ``defect`` is prefixed with its category, so its name reads
    ``<category>/<defect>/<file>`` and stays unique across categories.
    """
    train: list[Sample] = []
    test: list[Sample] = []
    for category in MVTEC_CATEGORIES:
        part = load_folder_split(data_root, category, dataset="mvtec")
        train += [Sample(s.path, 0, f"{category}/{s.defect}") for s in part.train]
        test += [Sample(s.path, s.label, f"{category}/{s.defect}", s.mask_path) for s in part.test]
    return Split("mvtec", MVTEC_ALL, train, test,
                 meta={"root": str(data_root.resolve()), "pooled_categories": list(MVTEC_CATEGORIES)})


def _random_mtd_split(split: Split, seed: int, mode: str) -> Split:
    if mode not in MTD_SPLITS:
        raise BenchError(f"unknown MTD split {mode!r}; choose one of {', '.join(MTD_SPLITS)}.")
    normal = sorted(split.train + [s for s in split.test if s.label == 0], key=lambda s: s.path.name)
    rng = np.random.default_rng([seed, 80])
    order = rng.permutation(len(normal))
    n_test = round(0.2 * len(normal))
    test_normal = [normal[i] for i in order[:n_test]]
    train = [Sample(normal[i].path, 0) for i in sorted(order[n_test:])]
    test = [Sample(s.path, 0) for s in test_normal] + [s for s in split.test if s.label == 1]
    return Split(split.dataset, split.category, train, test, meta=dict(split.meta))
