"""The datasets the harness knows, by name, and the generic steps every one goes through:
which categories it has, making sure they are on disk (use, download or generate), and loading
one category's train/test split with a seeded few-shot subset.

Each dataset is one module that defines a ``SPEC`` (``bench.data.base.DatasetSpec``); the list
below is the one place that names them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench.data.base import DatasetSpec, Split, few_shot
from bench.data.download import import_dataset
from bench.data.folder import SPEC as FOLDER
from bench.data.folder import is_category_dir, list_categories
from bench.data.mtd import SPEC as MTD
from bench.data.mvtec import SPEC as MVTEC
from bench.data.synthetic import SPEC as SYNTHETIC
from bench.errors import BenchError

log = logging.getLogger(__name__)

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (MVTEC, MTD, FOLDER, SYNTHETIC)}


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


def download_dataset(name: str, data_root: Path, source: str | None = None, *,
                     force: bool = False, progress: bool = True) -> Path:
    """Download (or import from ``source``) a downloadable dataset into ``data_root``."""
    spec = get_spec(name)
    if name not in downloadable_datasets():
        raise BenchError(
            f"dataset {name!r} cannot be downloaded (only {', '.join(downloadable_datasets())} "
            "can); pass --data-root pointing at its folder instead."
        )
    return import_dataset(name, spec.download, spec.categories, data_root, source, force=force,
                          progress=progress)


def ensure_dataset(name: str, data_root: Path, categories: list[str] | None = None,
                   options: dict[str, Any] | None = None) -> None:
    """Make sure the categories needed are on disk: use what is there, else download or generate
    (a generated dataset with a suite's ``options``)."""
    spec = get_spec(name)
    data_root = Path(data_root)
    if spec.prepare is not None:
        spec.prepare(data_root, tuple(categories) if categories else None, options or {})
        return
    if options:
        raise BenchError(f"dataset {name!r} is not generated and takes no dataset_options; "
                         "remove them from the suite.")
    needed = list(categories or spec.categories or [])
    for extra, members in spec.extra_categories.items():
        if extra in needed:
            needed = [c for c in needed if c != extra] + [c for c in members if c not in needed]
    if needed and all(is_category_dir(data_root / c) for c in needed):
        return
    if not spec.downloadable:
        if not data_root.is_dir() or not list_categories(data_root):
            raise BenchError(
                f"no dataset categories found under {data_root}; pass --data-root pointing at a "
                "folder of <category>/train/good and <category>/test/<defect> folders."
            )
        return
    download_dataset(name, data_root)


def downloadable_datasets() -> list[str]:
    """The datasets ``download`` can fetch."""
    return [n for n, s in DATASETS.items() if s.downloadable and s.categories is not None]


def load_split(name: str, category: str, data_root: Path, *, shots: int | None = None,
               seed: int = 0, split_variant: str | None = None) -> Split:
    """The train/test split of one category, with a seeded few-shot subset of the training set.

    ``split_variant`` picks one of the dataset's split variants (``DatasetSpec.split_variants``;
    None: its default), e.g. MTD's ``authors`` (the original authors' 761 training files) or
    ``random`` (a seeded 80/20 split as Sec. 4.1 describes).
    """
    spec = get_spec(name)
    known = (*spec.categories, *spec.extra_categories) if spec.categories is not None else None
    if known is not None and category not in known:
        raise BenchError(f"{name} has no category {category!r}; choose from {', '.join(known)}.")
    variant = spec.split_variant(split_variant)
    split = spec.load(Path(data_root), category, seed=seed, variant=variant)
    full_train = len(split.train)
    split.train = few_shot(split.train, shots, seed)
    split.meta.update(
        n_train_available=full_train,
        train_files=[s.path.name for s in split.train] if shots is not None else None,
        split_variant=variant if spec.has_split_variants else None,
    )
    return split
