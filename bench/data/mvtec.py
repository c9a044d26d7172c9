"""MVTec AD (Bergmann et al. 2019): 15 categories, downloaded as one archive that already holds
MVTec-style category folders; the category "all" pools them as one normal class (Sec. 4.5)."""

from __future__ import annotations

from pathlib import Path

from bench.data.base import DatasetSpec, DownloadInfo, Sample, Split
from bench.data.folder import is_category_dir, load_folder_split
from bench.errors import BenchError

MVTEC_CATEGORIES = (
    # textures, then objects, in the order of the paper's Table 1
    "grid", "leather", "tile", "carpet", "wood",
    "bottle", "capsule", "pill", "transistor", "zipper",
    "cable", "hazelnut", "metal_nut", "screw", "toothbrush",
)
MVTEC_TEXTURES = frozenset(MVTEC_CATEGORIES[:5])
MVTEC_ALL = "all"  # all 15 categories pooled as one normal class (Sec. 4.5, "Multimodality")
MVTEC_URL = (
    "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download/"
    "420938113-1629952094/mvtec_anomaly_detection.tar.xz"
)
MVTEC_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
MVTEC_ARCHIVE_NAME = "mvtec_anomaly_detection.tar.xz"


def find_mvtec_root(extracted: Path) -> Path:
    """The folder holding the category folders: ``extracted`` itself or one level down."""
    for candidate in (extracted, *sorted(p for p in extracted.iterdir() if p.is_dir())):
        if any((candidate / c).is_dir() for c in MVTEC_CATEGORIES):
            return candidate
    raise BenchError(
        f"no MVTec AD category folder found in {extracted}: this is not the MVTec AD archive; "
        f"download it from {MVTEC_URL}."
    )


def layout_mvtec(
    extracted: Path, out_root: Path, categories: tuple[str, ...] = MVTEC_CATEGORIES
) -> None:
    """Check each category has train/good and test, then move the category folders to ``out_root``."""
    root = find_mvtec_root(Path(extracted))
    for category in categories:
        if not is_category_dir(root / category):
            raise BenchError(
                f"MVTec AD category {category} is missing or lacks train/good and test in the "
                "archive; delete the archive and download it again."
            )
    Path(out_root).mkdir(parents=True, exist_ok=True)
    for category in categories:
        # Same file system (both inside the data root), so this is a cheap rename.
        (root / category).rename(Path(out_root) / category)


def pooled_split(data_root: Path) -> Split:
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


def load_mvtec(root: Path, category: str, seed: int = 0, variant: str = "default") -> Split:
    if category == MVTEC_ALL:
        return pooled_split(Path(root))
    return load_folder_split(Path(root), category, dataset="mvtec")


SPEC = DatasetSpec(
    "mvtec", MVTEC_CATEGORIES, photometric=False, load=load_mvtec,
    download=DownloadInfo(MVTEC_URL, MVTEC_ARCHIVE_NAME, MVTEC_SHA256, layout_mvtec),
    extra_categories={MVTEC_ALL: MVTEC_CATEGORIES},
)
