"""Datasets: MVTec AD, Magnetic Tile Defects, any MVTec-style folder, synthetic defects."""

from bench.data.base import Sample, Split, few_shot, load_image, load_mask
from bench.data.datasets import (
    DATASETS,
    MTD_CATEGORY,
    MVTEC_CATEGORIES,
    MVTEC_TEXTURES,
    DatasetSpec,
    dataset_categories,
    ensure_dataset,
    get_spec,
    load_split,
)

__all__ = [
    "DATASETS", "MTD_CATEGORY", "MVTEC_CATEGORIES", "MVTEC_TEXTURES", "DatasetSpec", "Sample",
    "Split", "dataset_categories", "ensure_dataset", "few_shot", "get_spec", "load_image",
    "load_mask", "load_split",
]
