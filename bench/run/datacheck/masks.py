"""Ground-truth masks, where the dataset has them: one for every defective test image, of the
image's size, binary and not empty; for defect-free test images none, or an empty one
(``ground_truth/good/``). Pixel metrics (``run --localize``) read them: a mask of another size
is stretched, a grey one thresholded at 1, an empty one counts no defect."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from bench.data.base import NORMAL, Sample
from bench.store.checks import Finding

SHOWN = 5
PROBLEMS = {
    "missing": "no mask",
    "unreadable": "a mask that cannot be read",
    "size": "a mask of another size than the image",
    "not_binary": "a mask that is not binary (grey values besides 0 and one other; the pixel "
                  "metrics count every pixel above 0 as defect)",
    "empty": "an empty mask (no defect pixel)",
    "normal_not_empty": "a non-empty mask for a defect-free image",
}


def normal_mask(sample: Sample) -> Path | None:
    """A mask for a defect-free test image, if the folder has one: ``ground_truth/good/`` beside
    ``test/`` (the layout's own place for it)."""
    gt = sample.path.parent.parent.parent / "ground_truth" / NORMAL
    for candidate in (gt / f"{sample.path.stem}_mask.png", gt / f"{sample.path.stem}.png"):
        if candidate.is_file():
            return candidate
    return None


def mask_problem(mask_path: Path, image_size: tuple[int, int] | None, normal: bool) -> str | None:
    """Which of ``PROBLEMS`` the mask has, or None."""
    try:
        with Image.open(mask_path) as mask:
            size = mask.size
            values = np.unique(np.asarray(mask.convert("L")))
    except Exception:  # any reason a file is not an image
        return "unreadable"
    if normal:
        return "normal_not_empty" if values.max() > 0 else None
    if image_size is not None and size != image_size:
        return "size"
    if values.max() == 0:
        return "empty"
    if len(values) > 2 or (len(values) == 2 and values[0] != 0):  # all defect is binary too
        return "not_binary"
    return None


def mask_findings(category: str, test: Sequence[Sample], sizes: Sequence[tuple[int, int] | None],
                  name: Callable[[Sample], str]) -> tuple[list[Finding], bool]:
    """Findings about the test images' masks (one per problem and folder), and whether the
    data has masks at all (none anywhere: a dataset without masks, nothing to check)."""
    defective = [(s, size) for s, size in zip(test, sizes) if s.label == 1]
    has_masks = any(s.mask_path is not None for s, _ in defective)
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    for sample, size in zip(test, sizes):
        if sample.label == 0:
            path = normal_mask(sample)
            problem = None if path is None else mask_problem(path, size, normal=True)
        elif not has_masks:
            continue
        elif sample.mask_path is None:
            problem = "missing"
        else:
            problem = mask_problem(sample.mask_path, size, normal=False)
        if problem is not None:
            found[(sample.defect, problem)].append(name(sample))
    out = []
    for (split, problem), files in sorted(found.items()):
        n_folder = sum(s.defect == split for s in test)
        shown = ", ".join(files[:SHOWN]) + (f" and {len(files) - SHOWN} more"
                                            if len(files) > SHOWN else "")
        out.append(Finding(category, "mask", "warning", split, files,
                           f"{len(files)} of {n_folder} images in {split} have "
                           f"{PROBLEMS[problem]}: {shown}", {"problem": problem}))
    return out, has_masks
