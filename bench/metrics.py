"""Detection metrics (Sec. 4.3: image-level AUROC)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


def image_auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of anomaly scores (label 1 = defective)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(scores)):
        raise FloatingPointError("some anomaly scores are not finite")
    return float(roc_auc_score(np.asarray(labels), scores))
