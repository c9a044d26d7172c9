"""Records built by hand for tests: a record marked ``ok`` must be whole (scores, labels and test
files of ``n_test`` each, and the AUROC those scores give: ``bench.store.record.whole_problem``),
so a test that wants a record of a given AUROC asks for scores that give it."""

from __future__ import annotations

from typing import Any


def whole_result(auroc: float, pairs_side: int = 100) -> dict[str, Any]:
    """Record fields for ``pairs_side`` defect-free and as many defective test images whose
    scores give exactly ``auroc`` (to 1 / pairs_side**2): the i-th defective image outranks
    the defect-free images with scores below its own."""
    n = pairs_side
    wins = round(auroc * n * n)
    assert abs(wins / (n * n) - auroc) < 1e-9, f"{auroc} is not a multiple of 1/{n * n}"
    good = [float(j) for j in range(n)]
    # Spread `wins` over the defective images, none beating more than all n defect-free ones.
    beaten = [wins // n + (1 if i < wins % n else 0) for i in range(n)]
    bad = [b - 0.5 for b in beaten]
    return {"scores": good + bad, "labels": [0] * n + [1] * n,
            "test_files": [f"good/{i:03d}.png" for i in range(n)]
            + [f"defect/{i:03d}.png" for i in range(n)], "n_test": 2 * n}
