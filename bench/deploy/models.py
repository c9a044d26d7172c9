"""Saved models: a fitted detector kept beside its record (``run --save-models``) and used to
score new images (``bench.py predict``).

A model file holds the method's name and config, the backbone's name (not its weights: they
come from where the run got them), the learned state (``Saveable``: a flow, a classifier, the
image baselines' networks), the content keys of the test images the run scored (so
``predict`` gives those images exactly the transforms, hence the scores, of the record; the
image baselines score an image the same wherever it comes) and a decision threshold chosen on
normal images only: the ``(1 - fpr)`` quantile of the held-out training normals' scores of the
``--validation`` split. Without a validation split there is no threshold (the test set never
sets one). Model files are pickles: load only your own.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from bench.data import Sample
from bench.data.content import content_key
from bench.deploy.prediction import score_table
from bench.errors import BenchError
from bench.methods import build_detector
from bench.registry import Localizer, Predictor, RunContext, Saveable
from bench.store.atomic import save_torch

log = logging.getLogger(__name__)
MODEL_FORMAT = 1
DEFAULT_THRESHOLD_FPR = 0.05


def can_save(detector: Any) -> bool:
    """Saveable, a Predictor, and an image's score does not depend on the images scored with
    it (``bench.registry``'s protocols, whatever the detector subclasses)."""
    return (isinstance(detector, Saveable) and isinstance(detector, Predictor)
            and detector.scores_alone())


def choose_threshold(val_scores: Sequence[float], val_labels: Sequence[int],
                     fpr: float) -> float | None:
    """The score above which at most ``fpr`` of the held-out normals lie (None: no normals).
    Only validation data goes in: the test set never sets a threshold."""
    normals = np.asarray(val_scores, dtype=np.float64)[np.asarray(val_labels) == 0]
    if len(normals) == 0:
        return None
    return float(np.quantile(normals, 1.0 - fpr, method="higher"))


def save_model(path: Path, detector: Any, record: Any, test: Sequence[Sample],
               fpr: float = DEFAULT_THRESHOLD_FPR) -> Path:
    threshold = (choose_threshold(record.val_scores, record.val_labels, fpr)
                 if record.val_scores else None)
    payload = {
        "format": MODEL_FORMAT, "method": record.method, "config": record.config,
        "backbone": record.backbone, "seed": record.seed, "cell_id": record.cell_id,
        "source": record.info.get("method_source"), "state": detector.get_state(),
        "test_keys": [content_key(s.path) for s in test],
        "threshold": threshold, "threshold_fpr": fpr if threshold is not None else None,
        "threshold_from": "validation normals" if threshold is not None else None,
    }
    return save_torch(path, payload)


@dataclass
class SavedModel:
    detector: Any  # Saveable and a Predictor (can_save)
    meta: dict[str, Any]

    @property
    def threshold(self) -> float | None:
        return self.meta["threshold"]


def load_model(path: Path, device: str = "cpu", cache_dir: Path | None = None) -> SavedModel:
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise BenchError(f"model file {path} does not exist; save models with run "
                         "--save-models (they go under <results-dir>/models/).") from None
    except Exception as err:
        raise BenchError(f"model file {path} cannot be read ({type(err).__name__}); save it "
                         "again with run --save-models.") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise BenchError(f"{path} is not a differnet-bench model file of format {MODEL_FORMAT}; "
                         "save it again with run --save-models.")
    detector = build_detector(payload["method"], payload["config"],
                              RunContext(seed=payload["seed"], device=device, cache_dir=cache_dir))
    detector.set_state(payload["state"])
    return SavedModel(detector, {k: v for k, v in payload.items() if k != "state"})


def predict(model: SavedModel, paths: Sequence[Path], batch: int = 64,
            show_progress: bool = True) -> pd.DataFrame:
    """``prediction.score_table``: each image scored by the model (``score_new``)."""
    detector, run_keys = model.detector, model.meta["test_keys"]

    def score(chunk: list[Path]) -> np.ndarray:
        return detector.score_new([Sample(path=p, label=0) for p in chunk], run_keys)

    return score_table(paths, score, model.threshold, batch, show_progress)


def write_maps(model: SavedModel, paths: Sequence[Path], out_dir: Path) -> int:
    """Each image's localization map as a PNG (scaled to its own maximum), for methods that
    localize; returns how many were written."""
    if not isinstance(model.detector, Localizer):
        raise BenchError(f"method {model.meta['method']} has no localization maps; drop --maps.")
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        (grad,) = model.detector.localize([Sample(path=path, label=0)])
        scaled = grad / grad.max() if grad.max() > 0 else grad
        # Numbered: images of different folders may share a name.
        Image.fromarray((255 * scaled).astype(np.uint8)).save(out_dir / f"{i:04d}_{path.stem}_map.png")
    return len(paths)
