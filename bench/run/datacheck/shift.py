"""Are the test images drawn like the training normals? Each test folder against the training
set: simple per-image statistics (brightness, contrast, sharpness, size; Mann-Whitney U test,
the relative change of the median and its size in training deviations), and a two-sample test
on backbone embeddings.

The embedding test is MMD (maximum mean discrepancy) with a Gaussian kernel (the median
distance as its width) and a permutation p-value (``PERMUTATIONS`` seeded relabellings: the
same data always gives the same p). Its effect size is the classifier AUROC of a two-sample
classifier test: a logistic regression on the standardised embeddings, cross-validated (seeded
folds), telling the folder's images from the training images: 0.5 when they are drawn alike,
towards 1 the more a model can tell them apart. For test normals that is a broken benchmark
(an ``error``: every method may score the difference rather than defects); for a defect folder
it is expected (``info``), and the statistics say which way each folder moved, so "the defects
differ" is told from "the whole test set differs". The 1-NN distance, a detector's own view, is
not the effect size: it mixes the shift with how dense the training set is (on MTD with its test
normals 15 % darker, the darker images lay closer to the training set than it lies to itself: a
1-NN AUROC of 0.39).

Measured on MTD, whose training normals span six exposures: its test normals 15 % darker or
brighter gave MMD p = 0.001 with a classifier AUROC of 0.58 and 0.49 and a brightness move of
0.4 and 0.5 training deviations, a warning (a small shift inside the training set's range; 1-NN
on the fast preset scored 77.9 % image AUROC unchanged, 82.2 % and 76.1 % with them); on a
folder lit alike throughout (the tests' synthetic widgets) the same change is hundreds of
training deviations and an error (there 1-NN scored 0 % with test normals 20 % darker).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from bench.data.base import NORMAL
from bench.run.datacheck.images import STATISTICS
from bench.store.checks import Finding

ALPHA = 0.01  # a test folder counts as unlike the training set below this p-value
MIN_EFFECT = 0.6  # and with at least this classifier AUROC (below: significant but small, a warning)
# A statistic moved when its median moved by at least this many training deviations (robust:
# 1.4826 x the median absolute deviation) with p < ALPHA / 4; by LARGE_MOVE or more, test
# normals are unlike the training normals whatever the embeddings say.
MIN_MOVE = 0.5
LARGE_MOVE = 1.0
PERMUTATIONS = 1000
MAX_PER_SIDE = 1000  # larger folders are subsampled (seeded) for the embedding tests
FOLDS = 5
MIN_IMAGES = 5
SEED = 0
WORDS = {"brightness": ("brighter", "darker"), "contrast": ("higher contrast", "lower contrast"),
         "sharpness": ("sharper", "blurrier"), "size": ("larger", "smaller")}


@dataclass
class Comparison:
    """One test folder against the training set."""

    split: str
    n: int
    p_embedding: float | None
    classifier_auroc: float | None
    changes: dict[str, float]  # statistic -> relative change of the median
    moves: dict[str, float]  # statistic -> change of the median in training deviations
    p_statistics: dict[str, float]

    @property
    def embeddings_differ(self) -> bool:
        return self.p_embedding is not None and self.p_embedding < ALPHA

    def moved(self, by: float = 0.0) -> dict[str, float]:
        """The statistics that moved (relative change of the median): significant (Bonferroni
        over the four) and by at least ``by`` training deviations."""
        return {s: c for s, c in self.changes.items()
                if self.p_statistics[s] < ALPHA / len(STATISTICS) and abs(self.moves[s]) >= by}

    def values(self) -> dict:
        # Stored as JSON: a move against a training set without spread (infinite) is null.
        return {"n": self.n, "mmd_p": self.p_embedding, "classifier_auroc": self.classifier_auroc,
                "median_change": self.changes, "deviations": self.moves, "p": self.p_statistics}


def mmd_permutation_test(x: np.ndarray, y: np.ndarray, permutations: int = PERMUTATIONS,
                         seed: int = SEED) -> float:
    """The permutation p-value of the (biased) squared MMD between samples ``x`` and ``y``
    (rows), Gaussian kernel with the median pairwise distance as its width.

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(40, 3)), rng.normal(size=(30, 3))
    >>> mmd_permutation_test(a, b) > 0.05, mmd_permutation_test(a, b + 1.0) < 0.01
    (True, True)
    """
    z = np.vstack([x, y]).astype(np.float64)
    sq = (z * z).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    width = np.median(d2[np.triu_indices(len(z), 1)])
    kernel = np.exp(-d2 / width) if width > 0 else np.ones_like(d2)
    weights = np.r_[np.full(len(x), 1 / len(x)), np.full(len(y), -1 / len(y))]
    observed = weights @ kernel @ weights
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, 200):
        w = np.stack([rng.permutation(weights)
                      for _ in range(min(200, permutations - start))], axis=1)
        exceed += int((np.einsum("ip,ip->p", kernel @ w, w) >= observed - 1e-12).sum())
    return (1 + exceed) / (1 + permutations)


def classifier_auroc(x: np.ndarray, y: np.ndarray, seed: int = SEED) -> float:
    """Cross-validated AUROC of a logistic regression telling the rows of ``y`` from those of
    ``x`` (balanced class weights, seeded stratified folds).

    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(60, 4)), rng.normal(size=(30, 4))
    >>> classifier_auroc(a, b) < 0.65, classifier_auroc(a, b + 1.0) > 0.85
    (True, True)
    """
    z = np.vstack([x, y])
    labels = np.r_[np.zeros(len(x)), np.ones(len(y))]
    folds = StratifiedKFold(min(FOLDS, len(x), len(y)), shuffle=True, random_state=seed)
    model = LogisticRegression(class_weight="balanced", max_iter=2000)
    scores = cross_val_predict(model, z, labels, cv=folds, method="decision_function")
    return float(roc_auc_score(labels, scores))


def compare(split: str, train_stats: dict[str, np.ndarray], test_stats: dict[str, np.ndarray],
            train_emb: np.ndarray | None, test_emb: np.ndarray | None) -> Comparison:
    n = len(next(iter(test_stats.values())))
    changes, moves, pvalues = {}, {}, {}
    for name in STATISTICS:
        a, b = train_stats[name], test_stats[name]
        base, shift = float(np.median(a)), float(np.median(b) - np.median(a))
        changes[name] = shift / abs(base) if base else 0.0
        spread = 1.4826 * float(np.median(np.abs(a - base)))
        moves[name] = shift / spread if spread > 0 else (0.0 if shift == 0 else math.inf)
        pvalues[name] = (float(stats.mannwhitneyu(a, b).pvalue)
                         if len(a) >= MIN_IMAGES and n >= MIN_IMAGES and np.ptp(np.r_[a, b]) > 0
                         else 1.0)
    p_emb = auroc = None
    if (train_emb is not None and test_emb is not None and len(train_emb) >= MIN_IMAGES
            and n >= MIN_IMAGES):
        # Standardised by the training set, so no feature dominates by its scale alone.
        mean, std = train_emb.mean(axis=0), train_emb.std(axis=0) + 1e-6
        a, b = (train_emb - mean) / std, (test_emb - mean) / std
        rng = np.random.default_rng(SEED)
        a_sub = a[rng.permutation(len(a))[:MAX_PER_SIDE]]
        b_sub = b[rng.permutation(len(b))[:MAX_PER_SIDE]]
        p_emb = mmd_permutation_test(a_sub, b_sub)
        auroc = classifier_auroc(a_sub, b_sub)
    return Comparison(split, n, p_emb, auroc, changes, moves, pvalues)


def describe(c: Comparison) -> str:
    """The comparison in words: the embedding test and the statistics that moved."""
    if c.p_embedding is None:
        emb = f"too few images for the embedding test (fewer than {MIN_IMAGES})"
    else:
        emb = (f"embeddings: MMD p = {_p(c.p_embedding)}, a classifier tells them apart at "
               f"AUROC {c.classifier_auroc:.2f}")
    moved = [f"{_word(s, v)} ({100 * v:+.0f} % median {s}, {c.moves[s]:+.1f} training "
             f"deviations, p = {_p(c.p_statistics[s])})" for s, v in c.moved().items()]
    return emb + ("; " + ", ".join(moved) if moved else "; no statistic moved")


def shift_findings(category: str, comparisons: list[Comparison]) -> list[Finding]:
    """One finding per test folder: for test normals an ``error`` when their embeddings differ
    from the training set's with at least ``MIN_EFFECT``, or a statistic moved by
    ``LARGE_MOVE`` training deviations (a warning when less), ``info`` otherwise; for defect
    folders ``info``."""
    normal = next((c for c in comparisons if c.split == NORMAL), None)
    out = []
    for c in comparisons:
        if c.split != NORMAL:
            out.append(Finding(category, "shift", "info", c.split, [],
                               f"{c.split} against the training normals: {describe(c)}",
                               c.values()))
            continue
        large = (c.embeddings_differ and c.classifier_auroc is not None
                 and c.classifier_auroc >= MIN_EFFECT)
        if large or c.moved(LARGE_MOVE):
            severity, verdict = "error", "test normals are unlike the training normals"
        elif c.embeddings_differ or c.moved(MIN_MOVE):
            severity, verdict = "warning", "test normals differ a little from the training normals"
        else:
            severity, verdict = "info", "test normals are drawn like the training normals"
        if severity != "info":
            verdict += _whole_test_set(c, [d for d in comparisons if d.split != NORMAL])
        detail = f"{verdict}: {describe(c)}"
        out.append(Finding(category, "shift", severity, c.split, [], detail, c.values()))
    if normal is None:
        out.append(Finding(category, "shift", "warning", None, [],
                           "no defect-free test folder (test/good) to compare", {}))
    return out


def _whole_test_set(normal: Comparison, defects: list[Comparison]) -> str:
    """Whether the defect folders moved like the test normals (the same way, by at least half
    as many training deviations: the whole test set differs) or not (the normals alone)."""
    moved = normal.moved()
    if not moved or not defects:
        return ""
    same = [d.split for d in defects
            if all(s in d.moved() and d.moves[s] * normal.moves[s] > 0
                   and abs(d.moves[s]) >= abs(normal.moves[s]) / 2 for s in moved)]
    if len(same) == len(defects):
        return (" (the defect folders moved the same way: the whole test set differs from the "
                "training set, not only its defects)")
    if same:
        return f" (of the defect folders, {', '.join(same)} moved the same way)"
    return " (the defect folders did not move that way: the test normals alone differ)"


def _word(statistic: str, change: float) -> str:
    return WORDS[statistic][0 if change > 0 else 1]


def _p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"
