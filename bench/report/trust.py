"""How far a validation ranks configurations as the test set does: the figures of an agreement
study (``bench.py agreement``), from per-image scores alone (no torch, no method).

For a grid of points (configurations), each with a validation AUROC and a test AUROC:

- Kendall's tau-b and Spearman's rho between the two (scipy), each with a 95 % bootstrap
  interval: the test images (normal and defective apart), the held-out normals and the
  held-out images whose defective copies are scored (one resample for every recipe) are
  resampled with replacement, the same resample for every point, and every figure is
  recomputed (percentile interval);
- the selection regret: the test AUROC of the test-best point minus that of the
  validation-best point (points of AUROC; the first point given wins a validation tie, as
  ``select`` picks), with its bootstrap interval;
- whether a test-best point is among the validation's top 3;
- beside them, the regret of the default point (the preset as it is) and the expected regret
  of a point picked at random (test-best minus the mean).

Recipes combined: each recipe ranks the points by its validation AUROC and the ranks are
summed (Borda count; ties share their mean rank); the sum then stands for the validation AUROC.

With two or more seeds, the same figures with one seed's test AUROCs standing for the validation
and another seed's as the test (``seed_figures``): how far the test's own ranking repeats from
one training run to the next, the most a validation could agree with a single run's test.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

BOOTSTRAP = 1000
COMBINED = "combined (Borda)"
ANOTHER_SEED = "test of another seed"


@dataclass
class Unit:
    """One category x seed of a study: per point, its scores on the same images.

    ``test``: (points, n_test) scores with ``test_labels``; ``normals``: (points, n_val) scores of
    the held-out normals; ``defects[recipe]``: (points, n_val) scores of each held-out image's
    defective copy under the recipe (row j of every recipe belongs to held-out image j)."""

    test: np.ndarray
    test_labels: np.ndarray
    normals: np.ndarray
    defects: dict[str, np.ndarray] = field(default_factory=dict)


def aurocs(negatives: np.ndarray, positives: np.ndarray) -> np.ndarray:
    """AUROC per row of (points, n_neg) and (points, n_pos) scores (ties count a half).

    >>> aurocs(np.array([[0.0, 1.0]]), np.array([[1.0, 2.0]]))
    array([0.875])
    """
    n_neg, n_pos = negatives.shape[1], positives.shape[1]
    ranks = stats.rankdata(np.concatenate([negatives, positives], axis=1), axis=1)
    return (ranks[:, n_neg:].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_neg * n_pos)


def borda(values: np.ndarray) -> np.ndarray:
    """(recipes, points) validation AUROCs -> each point's summed rank (1 = worst)."""
    return stats.rankdata(values, axis=1).sum(axis=0)


def figures(val: np.ndarray, test: np.ndarray, default: int | None = None) -> dict[str, float]:
    """The agreement figures of one validation (``val``) against the test (``test``), per point.

    >>> f = figures(np.array([0.9, 0.8, 0.7, 0.6]), np.array([0.95, 0.85, 0.9, 0.7]), default=3)
    >>> round(f["kendall_tau_b"], 3), round(f["regret"], 3), f["test_best_in_top3"]
    (0.667, 0.0, True)
    >>> round(f["default_regret"], 3), round(f["random_regret"], 3)
    (25.0, 10.0)
    """
    # Equal AUROCs computed two ways differ in the last bits; rounded, they tie as they should.
    val, test = np.round(np.asarray(val, float), 10), np.round(np.asarray(test, float), 10)
    best_test = test.max()
    chosen = int(np.argmax(val))  # the first of tied points, as select picks
    top3 = np.argsort(-val, kind="stable")[:3]
    with warnings.catch_warnings():  # a constant side (a resample of ties) gives NaN, said so
        warnings.simplefilter("ignore")
        tau = stats.kendalltau(val, test, variant="b").statistic if len(val) > 1 else np.nan
        rho = stats.spearmanr(val, test).statistic if len(val) > 1 else np.nan
    return {
        "points": len(val),
        "kendall_tau_b": float(tau),
        "spearman": float(rho),
        "regret": 100 * float(best_test - test[chosen]),
        "test_best_in_top3": bool(np.isin(np.flatnonzero(test == best_test), top3).any()),
        "default_regret": 100 * float(best_test - test[default]) if default is not None else np.nan,
        "random_regret": 100 * float(best_test - test.mean()),
        "chosen": chosen,
        "test_best": int(np.argmax(test)),
    }


def seed_figures(tests: Mapping[int, np.ndarray], default: int | None = None) -> dict | None:
    """The figures with seed a's test AUROCs (per point) as the validation and seed b's as the
    test, averaged over every ordered pair of seeds (a != b); the top-3 flag holds only if it
    holds for every pair. None with fewer than two seeds. No bootstrap: the spread between
    training runs is what it measures.

    >>> row = seed_figures({0: np.array([0.9, 0.8, 0.7]), 1: np.array([0.8, 0.9, 0.7])})
    >>> round(row["kendall_tau_b"], 3), round(row["regret"], 3), row["pairs"]
    (0.333, 10.0, 2)
    """
    seeds = sorted(tests)
    if len(seeds) < 2:
        return None
    pairs = [figures(tests[a], tests[b], default) for a in seeds for b in seeds if a != b]
    mean = {k: float(np.mean([p[k] for p in pairs]))
            for k in ("kendall_tau_b", "spearman", "regret", "default_regret", "random_regret")}
    return {"recipe": ANOTHER_SEED, "points": pairs[0]["points"], **mean,
            "test_best_in_top3": all(p["test_best_in_top3"] for p in pairs),
            "val_median": np.nan, "val_iqr": np.nan, "pairs": len(pairs)}


def _point_aurocs(units: Sequence[Unit], recipes: Sequence[str], rng=None
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per recipe, each point's validation AUROC (mean over units), and each point's test AUROC;
    with ``rng``, on one bootstrap resample of every unit's images."""
    val = {r: [] for r in recipes}
    test = []
    for u in units:
        neg, pos = u.test[:, u.test_labels == 0], u.test[:, u.test_labels == 1]
        held = np.arange(u.normals.shape[1])
        normals = np.arange(u.normals.shape[1])
        if rng is not None:
            neg = neg[:, rng.integers(neg.shape[1], size=neg.shape[1])]
            pos = pos[:, rng.integers(pos.shape[1], size=pos.shape[1])]
            normals = rng.integers(len(normals), size=len(normals))
            held = rng.integers(len(held), size=len(held))
        test.append(aurocs(neg, pos))
        for r in recipes:
            val[r].append(aurocs(u.normals[:, normals], u.defects[r][:, held]))
    return {r: np.mean(v, axis=0) for r, v in val.items()}, np.mean(test, axis=0)


def study_figures(units: Sequence[Unit], recipes: Sequence[str], combine: Sequence[str] = (),
                  default: int | None = None, bootstrap: int = BOOTSTRAP, seed: int = 0
                  ) -> list[dict]:
    """One row of figures per recipe (and, when ``combine`` names two or more recipes, one for
    them combined by Borda count), each with its 95 % bootstrap intervals and the validation
    AUROCs' median and interquartile range over the points."""
    recipes = list(recipes)
    val, test = _point_aurocs(units, recipes)
    rows = {r: {"recipe": r, **figures(val[r], test, default),
                "val_median": float(np.median(val[r])),
                "val_iqr": float(np.subtract(*np.percentile(val[r], [75, 25])))}
            for r in recipes}
    combined = [r for r in combine if r in val]
    if len(combined) >= 2:
        score = borda(np.array([val[r] for r in combined]))
        rows[COMBINED] = {"recipe": COMBINED, **figures(score, test, default),
                          "val_median": np.nan, "val_iqr": np.nan, "combines": combined}
    draws: dict[str, list[tuple[float, float, float]]] = {r: [] for r in rows}
    rng = np.random.default_rng(seed)
    for _ in range(bootstrap):
        v, t = _point_aurocs(units, recipes, rng)
        if len(combined) >= 2:
            v[COMBINED] = borda(np.array([v[r] for r in combined]))
        for r in rows:
            f = figures(v[r], t, default)
            draws[r].append((f["kendall_tau_b"], f["spearman"], f["regret"]))
    for r, row in rows.items():
        if not draws[r]:
            continue
        d = np.array(draws[r], dtype=float)
        for i, name in enumerate(("kendall_tau_b", "spearman", "regret")):
            low, high = np.nanpercentile(d[:, i], [2.5, 97.5])
            row[f"{name}_ci"] = (float(low), float(high))
    return list(rows.values())


def point_table(units: Sequence[Unit], recipes: Sequence[str], names: Sequence[str]) -> list[dict]:
    """Per point: its name, validation AUROC per recipe and test AUROC (means over units)."""
    val, test = _point_aurocs(units, recipes)
    return [{"point": name, "test_auroc": float(test[i]),
             **{f"val:{r}": float(val[r][i]) for r in recipes}} for i, name in enumerate(names)]
