"""Any MVTec-style folder: ``<category>/train/good``, ``<category>/test/<defect>``,
optionally ``<category>/ground_truth/<defect>/<stem>_mask.png``. MVTec AD, the imported MTD and
user folders are all read through here."""

from __future__ import annotations

from pathlib import Path

from bench.data.base import IMAGE_EXTENSIONS, NORMAL, DatasetSpec, Sample, Split
from bench.errors import BenchError


def _images(folder: Path) -> list[Path]:
    # Hidden files (macOS "._name.png" and the like) are not images.
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def _mask_for(category_dir: Path, defect: str, image: Path) -> Path | None:
    gt = category_dir / "ground_truth" / defect
    for candidate in (gt / f"{image.stem}_mask.png", gt / f"{image.stem}.png"):
        if candidate.is_file():
            return candidate
    return None


def is_category_dir(path: Path) -> bool:
    return (path / "train" / NORMAL).is_dir() and (path / "test").is_dir()


def list_categories(root: Path) -> list[str]:
    """Names of the sub-folders of ``root`` laid out as categories."""
    root = Path(root)
    if not root.is_dir():
        raise BenchError(f"data root {root} does not exist; pass --data-root pointing at your dataset.")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and is_category_dir(p))


def load_folder_split(root: Path, category: str, dataset: str = "folder") -> Split:
    """Read one category's samples, checking the layout and saying how to fix it."""
    category_dir = Path(root) / category
    train_dir = category_dir / "train" / NORMAL
    test_dir = category_dir / "test"
    if not train_dir.is_dir() or not test_dir.is_dir():
        raise BenchError(
            f"{category_dir} is not laid out as a dataset category: it needs train/good/ with "
            "defect-free images and test/<defect>/ folders (test/good/ for defect-free ones)."
        )
    train = [Sample(p, 0) for p in _images(train_dir)]
    test: list[Sample] = []
    for defect_dir in sorted(d for d in test_dir.iterdir() if d.is_dir()):
        defect = defect_dir.name
        label = 0 if defect == NORMAL else 1
        for image in _images(defect_dir):
            mask = None if label == 0 else _mask_for(category_dir, defect, image)
            test.append(Sample(image, label, defect, mask))
    return Split(dataset, category, train, test, meta={"root": str(Path(root).resolve())})


def folder_loader(dataset: str):
    """A ``DatasetSpec.load`` that reads the category folder as it is (no special split)."""

    def load(root: Path, category: str, seed: int = 0, variant: str = "default") -> Split:
        return load_folder_split(root, category, dataset)

    return load


# A user's own folders: categories are whatever is laid out under the data root.
SPEC = DatasetSpec("folder", None, photometric=False, load=folder_loader("folder"))
