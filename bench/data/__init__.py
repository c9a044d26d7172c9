"""Datasets: MVTec AD, Magnetic Tile Defects, any MVTec-style folder, synthetic defects.

One module per dataset (``mvtec``, ``mtd``, ``folder``, ``synthetic``) declares a ``SPEC``;
``catalog`` lists them and runs the generic steps; ``download`` fetches, verifies and unpacks
archives; ``imagecache`` decodes each image once per size.
"""

from bench.data.base import DatasetSpec, Sample, Split, few_shot, load_image, load_mask
from bench.data.catalog import (
    DATASETS,
    dataset_categories,
    download_dataset,
    downloadable_datasets,
    ensure_dataset,
    get_spec,
    load_split,
)
from bench.data.mtd import MTD_CATEGORY
from bench.data.mvtec import MVTEC_ALL, MVTEC_CATEGORIES, MVTEC_TEXTURES

__all__ = [
    "DATASETS", "MTD_CATEGORY", "MVTEC_ALL", "MVTEC_CATEGORIES", "MVTEC_TEXTURES", "DatasetSpec",
    "Sample", "Split", "dataset_categories", "download_dataset", "downloadable_datasets", "ensure_dataset", "few_shot",
    "get_spec", "load_image", "load_mask", "load_split",
]
