"""MVTec AD (Bergmann et al. 2019): its archive already holds MVTec-style category folders."""

from __future__ import annotations

from pathlib import Path

from bench.data.datasets import MVTEC_CATEGORIES
from bench.data.folder import is_category_dir
from bench.errors import BenchError

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
