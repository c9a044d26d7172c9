"""Choose the default validation recipe mix honestly: tune it on one real dataset, judge it on
the other, each way round (issue 31, item 4). Run by hand on stored agreement studies:

    python benchmarks/recipe_mix.py --results-dir RESULTS --out mix-choice/

Every study under ``RESULTS/agreement/studies/`` scored the same pool of single recipes
(``--recipes``) on its own copy of every held-out image, so any mix of them can be scored
after the fact, exactly as ``--validation synthetic`` would score it: image j of a mix of k
recipes is recipe ``j mod k``'s copy of held-out image j (for methods that score each image
alone, PatchCore, PaDiM, CS-Flow, the very scores; DifferNet draws its test transforms by an
image's position in the list, and image j has the same position in every recipe's list, so its
scores too). The script prints, per study, how far the default mix scored as it is lies from the
same mix assembled from its singles (0 on PatchCore's MTD and ELPV studies of v2 and on
DifferNet's MTD study).

The criterion, fixed before any study was looked at:

- candidates: every mix of 1 to 4 recipes of the pool (sorted by name; v1 is not a candidate,
  it is the reference);
- admissible: on every tuning study, the mix's median validation AUROC over the grid lies in
  0.70-0.92 (it must not saturate; the issue asks for a median near 0.75-0.9);
- chosen: the highest mean Kendall tau-b over the tuning studies; ties: the lower mean
  selection regret, then the fewer recipes, then the name.

The test labels are read here, and only here, to choose the mix: one level above any method's
values (a preset's values are then chosen with ``select`` on the frozen mix, which never reads a
test label). The cross figures (tuned on one dataset, judged on the other) are the honest
estimate of how a mix chosen this way ranks on data it was not tuned on.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MEDIAN_RANGE = (0.70, 0.92)
MAX_RECIPES = 4


def load_studies(results_dir: Path) -> list[dict]:
    """The latest study of each (dataset, method, grid), with its units (bench.report.trust.Unit)
    built from its records."""
    from bench.run.agreement import study_units
    from bench.store.results import ResultsStore

    store = ResultsStore(results_dir).agreement()
    latest: dict[tuple, dict] = {}
    for path in sorted(store.studies_dir.glob("*.json")):
        study = json.loads(path.read_text())
        key = (study["dataset"], tuple(study["methods"]), study["grid"], study["preset"])
        if key not in latest or study["written_at"] >= latest[key]["written_at"]:
            latest[key] = {**study, "file": path.name}
    records = store.records()
    out = []
    for study in latest.values():
        recipes = [study["default_mix"], *study["recipes"]]
        for method in study["methods"]:
            if "cell_ids" in study:  # exactly the records behind the study
                ids = set(study["cell_ids"])
                mine = [r for r in records if r.cell_id in ids and r.method == method
                        and r.status == "ok"]
            else:  # a study written before it named its records
                mine = [r for r in records if r.method == method
                        and r.dataset == study["dataset"] and r.preset == study["preset"]
                        and r.variant in study["points"] and r.status == "ok"
                        and r.seed in study["seeds"]
                        and set(study["recipes"]) <= set(r.info.get("val_aurocs", {}))]
            pairs = [(_Cell(r), r) for r in mine]
            names = list(study["points"])
            units = study_units(pairs, names, recipes)
            if units is None:
                print(f"skipped {study['file']} {method}: some point has no record")
                continue
            out.append({"dataset": study["dataset"], "method": method, "file": study["file"],
                        "names": names, "units": units, "recipes": recipes,
                        "default": names.index("preset") if "preset" in names else None})
    return out


class _Cell:
    """What study_units reads of a cell, from its record."""

    def __init__(self, record):
        self.category, self.seed, self.variant = record.category, record.seed, record.variant


def mix_units(study: dict, mix: tuple[str, ...]) -> list:
    """The study's units with one more recipe: ``mix`` assembled from its singles."""
    from bench.report.trust import Unit

    name = "+".join(mix)
    out = []
    for u in study["units"]:
        n = u.normals.shape[1]
        columns = [u.defects[mix[j % len(mix)]][:, j] for j in range(n)]
        out.append(Unit(u.test, u.test_labels, u.normals, {**u.defects, name: np.stack(columns, 1)}))
    return out, name


def assembly_gap(study: dict) -> float | None:
    """How far the study's directly scored default mix lies from the same mix assembled from its
    singles (largest absolute score difference; 0.0 when the assembly is exact), or None when
    the study did not score every recipe of the default mix."""
    from bench.data.defects.mixes import MIXES

    mix = MIXES.get(study["recipes"][0])
    if mix is None or mix.legacy or not set(mix.recipes) <= set(study["recipes"]):
        return None
    units, name = mix_units(study, tuple(mix.recipes))
    return max(float(np.max(np.abs(u.defects[name] - u.defects[mix.name]))) for u in units)


def score(study: dict, mix: tuple[str, ...], bootstrap: int = 0) -> dict:
    from bench.report.trust import study_figures

    units, name = mix_units(study, mix)
    (row,) = study_figures(units, [name], (), study["default"], bootstrap)
    return row


def choose(studies: list[dict], pool: list[str]) -> tuple[tuple[str, ...], list[dict]]:
    """The criterion of the module docstring over ``studies``; also every admissible
    candidate's mean figures, best first."""
    table = []
    for k in range(1, MAX_RECIPES + 1):
        for mix in itertools.combinations(sorted(pool), k):
            rows = [score(s, mix) for s in studies]
            medians = [r["val_median"] for r in rows]
            if not all(MEDIAN_RANGE[0] <= m <= MEDIAN_RANGE[1] for m in medians):
                continue
            table.append({"mix": mix, "tau": float(np.mean([r["kendall_tau_b"] for r in rows])),
                          "regret": float(np.mean([r["regret"] for r in rows])),
                          "medians": medians})
    table.sort(key=lambda t: (-t["tau"], t["regret"], len(t["mix"]), t["mix"]))
    if not table:
        raise SystemExit(f"no candidate has its median validation AUROC in {MEDIAN_RANGE} on "
                         "every tuning study")
    return table[0]["mix"], table


def describe(study: dict, mix: tuple[str, ...] | str, bootstrap: int) -> dict:
    if isinstance(mix, str):  # a recipe or mix the study scored itself (v1)
        from bench.report.trust import study_figures

        (row,) = study_figures(study["units"], [mix], (), study["default"], bootstrap)
    else:
        row = score(study, mix, bootstrap)
    return {"dataset": study["dataset"], "method": study["method"], "study": study["file"],
            "validation": mix if isinstance(mix, str) else "+".join(mix),
            **{k: row.get(k) for k in ("points", "val_median", "val_iqr", "kendall_tau_b",
                                       "kendall_tau_b_ci", "spearman", "regret", "regret_ci",
                                       "test_best_in_top3", "default_regret",
                                       "random_regret")}}  # no intervals at --bootstrap 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args(argv)
    studies = load_studies(args.results_dir)
    if not studies:
        raise SystemExit(f"no agreement study under {args.results_dir / 'agreement'}: run "
                         "`bench.py agreement ... --recipes <the pool>` into that folder first")
    datasets = sorted({s["dataset"] for s in studies})
    from bench.data.defects.mixes import MIXES

    pool = sorted(set.intersection(*(set(s["recipes"]) for s in studies)) - set(MIXES))
    names = ", ".join(f"{s['dataset']}/{s['method']}" for s in studies)
    print(f"{len(studies)} studies ({names}); pool of {len(pool)} recipes")
    for s in studies:  # the assembly after the fact checked against a mix scored as it is
        gap = assembly_gap(s)
        if gap is not None:
            print(f"  {s['dataset']}/{s['method']}: {s['recipes'][0]} assembled from its "
                  f"recipes vs scored as a mix: largest score difference {gap:.3g}")
    result: dict = {"criterion": __doc__.split("The criterion")[1].split("The test labels")[0],
                    "pool": pool, "directions": [], "final": None}
    by_dataset = defaultdict(list)
    for s in studies:
        by_dataset[s["dataset"]].append(s)
    for tune in datasets:
        for judge in (d for d in datasets if d != tune):
            mix, table = choose(by_dataset[tune], pool)
            rows = [describe(s, m, args.bootstrap) for s in by_dataset[tune] + by_dataset[judge]
                    for m in (mix, "v1")]
            result["directions"].append({"tuned_on": tune, "judged_on": judge, "mix": mix,
                                         "top10": table[:10], "figures": rows})
            print(f"tuned on {tune}: {'+'.join(mix)}")
            for r in rows:
                print(f"  {r['dataset']:8s} {r['method']:10s} {r['validation']:40s} "
                      f"median {r['val_median']:.3f} tau {r['kendall_tau_b']:+.2f} "
                      f"regret {r['regret']:.1f}")
    mix, table = choose(studies, pool)
    rows = [describe(s, m, args.bootstrap) for s in studies for m in (mix, "v1")]
    result["final"] = {"tuned_on": datasets, "mix": mix, "top10": table[:10], "figures": rows}
    print(f"tuned on all: {'+'.join(mix)}")
    for r in rows:
        print(f"  {r['dataset']:8s} {r['method']:10s} {r['validation']:40s} "
              f"median {r['val_median']:.3f} tau {r['kendall_tau_b']:+.2f} regret {r['regret']:.1f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mix-choice.json").write_text(json.dumps(result, indent=1, default=str))
    print(f"wrote {args.out / 'mix-choice.json'}")


if __name__ == "__main__":
    main()
