"""The table ``predict`` prints, whatever scores the images: a ``.pt`` model in torch
(``bench.deploy.models``) or an exported graph without torch (``bench.deploy.export.runtime``). Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from bench.data.base import corrupt_image
from bench.progress import progress

COLUMNS = ["path", "score", "anomalous", "error"]


def readable(paths: Sequence[Path]) -> tuple[list[Path], dict[Path, str]]:
    """The images that open, and a one-sentence error for each that does not."""
    good, bad = [], {}
    for path in paths:
        problem = corrupt_image(path)
        if problem is None:
            good.append(path)
        else:
            bad[path] = str(problem)
    return good, bad


def score_table(paths: Sequence[Path], score: Callable[[list[Path]], Sequence[float]],
                threshold: float | None, batch: int = 64,
                show_progress: bool = True) -> pd.DataFrame:
    """Columns path, score (higher = more anomalous; ``score`` of ``batch`` readable images at
    a time), anomalous (score above ``threshold``; empty without one) and error (why an image
    was not scored)."""
    good, bad = readable(paths)
    scores: dict[Path, float] = {}
    with progress(len(good), "images", enabled=show_progress) as bar:
        for start in range(0, len(good), batch):
            chunk = good[start:start + batch]
            for p, value in zip(chunk, score(chunk)):
                scores[p] = float(value)
            bar.update(len(chunk))
    rows = []
    for path in paths:
        value = scores.get(path)
        anomalous = None if value is None or threshold is None else bool(value > threshold)
        rows.append({"path": str(path), "score": value, "anomalous": anomalous,
                     "error": bad.get(path, "")})
    return pd.DataFrame(rows, columns=COLUMNS)
