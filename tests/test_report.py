"""The report (bench/report): every artefact written, the numbers equal the results table's,
missing cells read "not run", the ablation and multimodal suites, MVTec's pooled category.

The store mixes two kinds of records:
- real ones, produced by running tiny DifferNet cells on a small synthetic dataset (with
  localization maps, so Figure 8 has real gradient maps and images);
- hand-made FIXTURE records for MVTec AD and MTD cells (random scores, labelled as fixtures in
  ``info``), so that every table and figure has data without the real datasets. Their numbers
  mean nothing; the tests only check that the report carries them faithfully.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.data import MVTEC_CATEGORIES, ensure_dataset, load_split
from bench.data.synthetic import make_synthetic
from bench.metrics import image_auroc
from bench.paper import paper_table
from bench.report import (
    NOT_RUN,
    ReportData,
    all_figures,
    all_tables,
    build_report,
    multimodal,
    table1,
    table2,
    table3,
)
from bench.report.figures import figure7_fewshot, figure8_localization
from bench.report.summary import ci95
from bench.run.runner import RunOptions, run_cells
from bench.run.suites import Suite, load_suite, plan
from bench.store.results import Record, ResultsStore

FIXTURE = "hand-made test fixture, not a real run"
OTHER = "fixture_other"  # an unregistered method name: shows as an extra, ours-only column


def fixture_record(dataset: str, category: str, method: str, seed: int, *, shots=None,
                   variant=None, preset="paper", backbone="alexnet", separation=1.5,
                   status="ok", config=None, departures=None, test_files=None,
                   n_good=20, n_bad=30) -> Record:
    """A record as the runner writes it, with random scores (clearly marked as a fixture)."""
    key = f"{category}/{method}/{variant}"
    rng = np.random.default_rng([seed, shots or 0, *key.encode()])
    labels = np.r_[np.zeros(n_good, int), np.ones(n_bad, int)]
    scores = rng.normal(0, 1, len(labels)) + separation * labels
    if test_files is None:
        test_files = [f"good/{i:03d}.png" for i in range(n_good)] + [
            f"crack/{i:03d}.png" for i in range(n_bad)]
    cell_id = "__".join([method, category, f"shots-{shots or 'all'}", f"seed-{seed}", preset,
                         *([f"variant-{variant}"] if variant else []), backbone or "-", "fixture"])
    ok = status == "ok"
    return Record(
        cell_id=cell_id, status=status, method=method, dataset=dataset, category=category,
        seed=seed, shots=shots, preset=preset, backbone=backbone, variant=variant,
        config=config or {}, config_hash="fixture", reduced=bool(departures),
        departures=departures or {}, auroc=image_auroc(labels, scores) if ok else None,
        scores=scores.tolist() if ok else [], labels=labels.tolist() if ok else [],
        test_files=test_files if ok else [], n_train=shots or 200, n_test=len(labels),
        error=None if ok else "RuntimeError: fixture failure", info={"fixture": FIXTURE},
    )


def fixture_records() -> list[Record]:
    out = []
    # Table 1: DifferNet on grid and bottle with 3 seeds, 16 shots on grid, one failed cell,
    # and an unregistered method on grid.
    for category in ("grid", "bottle"):
        out += [fixture_record("mvtec", category, "differnet", s) for s in range(3)]
    out.append(fixture_record("mvtec", "grid", "differnet", 0, shots=16))
    out.append(fixture_record("mvtec", "tile", "differnet", 0, status="failed"))
    out.append(fixture_record("mvtec", "grid", OTHER, 0, backbone=None, separation=0.5))
    # A second, reduced configuration of a cell that has a paper one: the table keeps 'paper'.
    out.append(fixture_record("mvtec", "grid", "differnet", 0, preset="fast",
                              departures={"epochs": 40}, separation=-1.0))
    # Table 3: variants A and G on grid and bottle.
    for variant, values in {"A": (False, False, 1), "G": (True, True, 64)}.items():
        config = dict(zip(("multi_scale", "train_transforms", "n_test_transforms"), values,
                          strict=True))
        paper = {"multi_scale": True, "train_transforms": True, "n_test_transforms": 64}
        departures = {k: v for k, v in config.items() if paper[k] != v}
        for category in ("grid", "bottle"):
            out.append(fixture_record("mvtec", category, "differnet", 0, variant=variant,
                                      config=config, departures=departures))
    # Table 2, Figures 5-7: MTD, DifferNet with 3 seeds, the other method, few-shot subsets.
    out += [fixture_record("mtd", "mtd", "differnet", s, separation=3.0) for s in range(3)]
    out.append(fixture_record("mtd", "mtd", OTHER, 0, backbone=None, separation=0.8))
    for shots in (2, 8):
        out += [fixture_record("mtd", "mtd", "differnet", s, shots=shots, separation=shots / 4)
                for s in range(3)]
    # Multimodal: the pooled category, test files prefixed by their category.
    files = [f"{c}/{d}/{i:03d}.png" for c in ("grid", "bottle") for d, n in (("good", 5),
             ("crack", 5)) for i in range(n)]
    labels_order = [0] * 5 + [1] * 5 + [0] * 5 + [1] * 5
    record = fixture_record("mvtec", "all", "differnet", 0, test_files=files, n_good=5, n_bad=5,
                            config={"n_coupling_blocks": 12},
                            departures={"n_coupling_blocks": 12})
    rng = np.random.default_rng(7)
    labels = np.array(labels_order)
    record.labels = labels.tolist()
    record.scores = (rng.normal(0, 1, 20) + 2 * labels).tolist()
    record.auroc = image_auroc(labels, np.array(record.scores))
    record.n_test = 20
    out.append(record)
    return out


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("report")
    root = make_synthetic(base / "synthetic", categories=("blobs",), n_train=6, n_test_good=3,
                          n_test_defect=2, size=64)
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["blobs"],
                  preset="tiny", backbone="random", shots=[None], seeds=[0],
                  overrides={"epochs": 2, "n_bank_transforms": 2, "n_test_transforms": 2,
                             "localize_rotations": 2})
    store = ResultsStore(base / "results")
    summary = run_cells(plan(suite, data_root=root), store, RunOptions(localize=True))
    assert len(summary.done) == 1 and not summary.failed
    for record in fixture_records():
        store.write(record)
    return base / "results"


@pytest.fixture(scope="module")
def rendered(store_dir, tmp_path_factory):
    """The report rendered through the command line, timed."""
    out = tmp_path_factory.mktemp("out")
    start = time.perf_counter()
    done = CliRunner().invoke(cli, ["report", "--results-dir", str(store_dir), "--out", str(out)])
    seconds = time.perf_counter() - start
    assert done.exit_code == 0, done.output
    assert "report.html" in done.output
    return ReportData.load(store_dir), out, seconds


@pytest.fixture(scope="module")
def data(store_dir) -> ReportData:
    return ReportData.load(store_dir)


def tidy_mean(frame: pd.DataFrame, cell_ids: str) -> float:
    rows = frame[frame["cell_id"].isin(cell_ids.split(";"))]
    assert (rows["status"] == "ok").all()
    return float(100 * rows["auroc"].mean())


def test_every_artefact_written_in_time(rendered):
    _, out, seconds = rendered
    assert seconds < 60
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    for key in ("fig5_roc_mtd", "fig6_scores_mtd", "fig7_fewshot", "fig8_localization"):
        for ext in ("png", "pdf"):
            assert (out / "figures" / f"{key}.{ext}").stat().st_size > 1000
    for key in ("table1_mvtec", "table2_mtd", "table3_ablation", "table_multimodal",
                "appendix_all_results"):
        assert (out / "tables" / f"{key}.csv").is_file()
        tex = (out / "tables" / f"{key}.tex").read_text()
        assert "\\begin{tabular}" in tex and "\\caption{" in tex
    html = (out / "report.html").read_text()
    # Figures 5-8, and the ROC curves of the synthetic data the paper never used
    assert (out / "figures" / "fig_roc_synthetic.png").stat().st_size > 1000
    assert html.count("data:image/png;base64,") == 5
    assert "<link" not in html and 'src="http' not in html  # self-contained


def test_table1_numbers_equal_the_results_table(data):
    table = table1(data)
    cells = table.data[table.data["group"].isin(["textures", "objects"])]
    ok = cells[cells["status"] == "ok"]
    assert set(zip(ok["column"], ok["category"])) == {
        ("DifferNet", "grid"), ("DifferNet", "bottle"), ("DifferNet (16 shots)", "grid"),
        (OTHER, "grid")}
    for row in ok.itertuples():
        assert row.ours == pytest.approx(tidy_mean(data.frame, row.cell_ids), abs=1e-9)
    grid = ok[(ok["column"] == "DifferNet") & (ok["category"] == "grid")].iloc[0]
    assert grid.n_seeds == 3 and grid.preset == "paper"  # the 'fast' run is not the one shown
    values = 100 * data.frame[data.frame["cell_id"].isin(grid.cell_ids.split(";"))]["auroc"]
    assert grid.ci95 == pytest.approx(ci95(values))
    assert grid["paper"] == 84.0 and grid["diff"] == pytest.approx(grid.ours - 84.0)
    display = table.display
    assert display.loc[("textures", "grid"), ("DifferNet", "ours")] == (
        f"{grid.ours:.1f} ± {grid.ci95:.1f}")
    assert display.loc[("textures", "carpet"), ("DifferNet", "ours")] == NOT_RUN
    assert display.loc[("textures", "grid"), ("GeoTrans", "ours")] == NOT_RUN
    assert display.loc[("textures", "tile"), ("DifferNet", "ours")] == "failed"
    # Mean row: the categories run, against the paper's values for the same categories.
    mean = table.data[(table.data["category"] == "mean of the categories run")
                      & (table.data["column"] == "DifferNet")].iloc[0]
    per_cat = ok[ok["column"] == "DifferNet"]["ours"]
    assert mean.ours == pytest.approx(per_cat.mean()) and mean.n_categories == 2
    assert mean.paper == pytest.approx((84.0 + 99.0) / 2)
    assert display.loc[("mean", "categories run"), ("DifferNet", "ours")] == "2/15"
    # Both of the paper's mean rows: as printed (94.9) and recomputed (94.69).
    assert display.loc[("mean", "paper: Average row as printed"), ("DifferNet", "paper")] == "94.9"
    assert display.loc[("mean", "paper: mean of its 15 values"), ("DifferNet", "paper")] == "94.7"
    assert "1 seed per cell" in table.provenance.flag_text()  # the 16-shot cell has one seed


def test_table2_numbers_equal_the_results_table(data):
    table = table2(data)
    rows = table.data.set_index("column")
    assert list(rows.index[:7]) == list(paper_table("table2_mtd_auroc.csv")["method"])
    differnet = rows.loc["DifferNet"]
    assert differnet.ours == pytest.approx(tidy_mean(data.frame, differnet.cell_ids))
    assert differnet.n_seeds == 3 and differnet.paper == 97.7
    other = rows.loc[OTHER]
    assert other.ours == pytest.approx(tidy_mean(data.frame, other.cell_ids))
    assert rows.loc["GeoTrans", "status"] == NOT_RUN
    shown = table.display.set_index("method")
    assert shown.loc["GeoTrans", "ours"] == NOT_RUN
    assert shown.loc["DifferNet", "ours"] == f"{differnet.ours:.1f} ± {differnet.ci95:.1f}"
    assert 0 <= differnet.recall_at_0fp <= 100


def test_table3_numbers_equal_the_results_table(data):
    table = table3(data)
    rows = table.data.set_index("config")
    assert list(rows.index) == list("ABCDEFG")
    for config in "AG":
        row = rows.loc[config]
        ids = row.cell_ids.split(";")
        frame = data.frame[data.frame["cell_id"].isin(ids)]
        per_category = 100 * frame.groupby("category")["auroc"].mean()
        assert row.ours == pytest.approx(per_category.mean()) and row.n_categories == 2
    assert rows.loc["A", "multi_scale"] == "no" and rows.loc["A", "test_transforms"] == 1
    assert rows.loc["B", "status"] == NOT_RUN
    shown = table.display.set_index("config")
    assert shown.loc["B", "ours (mean over categories run)"] == NOT_RUN
    assert shown.loc["A", "categories run"] == "2/15"
    assert table.notes  # fewer than 15 categories: said so
    # the variants' own settings are expected departures, not flagged
    assert "multi_scale" not in table.provenance.flag_text()


def test_multimodal_table(data):
    table = multimodal(data)
    rows = table.data.set_index("row")
    pooled = rows.loc["pooled: one AUROC over all test images"]
    assert pooled.ours == pytest.approx(tidy_mean(data.frame, pooled.cell_ids))
    record = data.records[pooled.cell_ids]
    labels, scores = np.array(record.labels), np.array(record.scores)
    grid = 100 * image_auroc(labels[:10], scores[:10])
    bottle = 100 * image_auroc(labels[10:], scores[10:])
    assert rows.loc["grid", "ours"] == pytest.approx(grid)
    mean = rows.loc["mean of the per-category AUROCs"]
    assert mean.ours == pytest.approx((grid + bottle) / 2) and mean.paper == 90.2
    assert rows.loc["carpet", "status"] == NOT_RUN
    assert "n_coupling_blocks" not in table.provenance.flag_text()


def test_report_text_carries_the_numbers_and_flags(rendered, data, tmp_path):
    _, out, _ = rendered
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    differnet = table2(data).data.set_index("column").loc["DifferNet"]
    text = f"{differnet.ours:.1f} ± {differnet.ci95:.1f}"
    assert text in md and text in html
    assert NOT_RUN in md and f'<td class="missing">{NOT_RUN}</td>' in html
    # Every figure has data; the synthetic runs behind Figure 8 are flagged.
    figures = all_figures(data, tmp_path)
    assert not [f.key for f in figures if f.placeholder]
    fig8 = figures[-1]
    assert "reduced preset 'tiny'" in fig8.provenance.flag_text()
    assert "substitute backbone random" in fig8.provenance.flag_text()
    # Its record says which preset values were decided on test data: none (tiny, random).
    assert "Values chosen on test data: none." in fig8.provenance.text()
    assert "reduced preset 'tiny'" in md
    for item in [*all_tables(data), *figures]:
        if item.key == "table_today":  # today's methods ran nowhere here: one line, no record
            assert item.provenance.text() == "No results recorded for this item yet."
            continue
        if item.key in ("table_trust", "data_checks"):  # made of studies and checks, not records
            assert item.provenance is None
            continue
        assert item.provenance is not None and "Preset:" in item.provenance.text()


def test_missing_image_is_skipped_with_a_note(store_dir, tmp_path):
    data = ReportData.load(store_dir)
    for record in data.records.values():  # point the real runs at a data root that is gone
        if record.info.get("maps_file"):
            record.info["root"] = str(tmp_path / "gone")
    fig8 = figure8_localization(data, tmp_path)
    assert fig8.placeholder and any("image not found" in n for n in fig8.notes)


def test_empty_store_reads_not_run(tmp_path):
    result = build_report(tmp_path / "nothing", tmp_path / "out")
    assert all(f.placeholder for f in result.figures)
    t1 = result.tables[0].display
    assert (t1.loc[[("textures", c) for c in ("grid", "wood")], ("DifferNet", "ours")]
            == NOT_RUN).all()
    assert (tmp_path / "out" / "report.html").is_file()
    (today,) = [t for t in result.tables if t.key.startswith("table_today")]
    assert len(today.display) == 1 and "not run on MTD or MVTec AD" in today.caption


def test_ablation_command():
    done = CliRunner().invoke(cli, ["ablation", "--help"])
    assert done.exit_code == 0 and "--preset" in done.output and "A-G" in done.output


def test_ablation_suite_matches_the_paper_table():
    suite = load_suite("ablation")
    paper = paper_table("table3_ablation_mvtec_mean_auroc.csv").set_index("config")
    assert list(suite.variants) == list(paper.index)
    for name, values in suite.variants.items():
        assert values["multi_scale"] == (paper.loc[name, "multi_scale"] == "yes")
        assert values["train_transforms"] == (paper.loc[name, "train_transforms"] == "yes")
        assert values["n_test_transforms"] == paper.loc[name, "test_transforms"]
    multi = load_suite("multimodal")
    assert multi.categories == ["all"]
    assert multi.scoped_overrides() == {"differnet": {"n_coupling_blocks": 12}}


def _fake_mvtec(root: Path) -> None:
    image = Image.fromarray(np.full((8, 8, 3), 128, np.uint8))
    for category in MVTEC_CATEGORIES:
        for folder in ("train/good", "test/good", "test/crack"):
            (root / category / folder).mkdir(parents=True)
            image.save(root / category / folder / "000.png")


def test_mvtec_all_pools_the_15_categories(tmp_path):
    _fake_mvtec(tmp_path)
    ensure_dataset("mvtec", tmp_path, ["all"])  # on disk already: no download
    split = load_split("mvtec", "all", tmp_path)
    assert len(split.train) == 15 and len(split.test) == 30
    names = [s.name for s in split.test]
    assert len(set(names)) == 30 and "bottle/crack/000.png" in names
    few = load_split("mvtec", "all", tmp_path, shots=4, seed=1)
    assert len(few.train) == 4
    cells = {c.method: c for c in plan(load_suite("multimodal"), data_root=tmp_path)}
    assert {c.category for c in cells.values()} == {"all"}
    assert cells["differnet"].config.n_coupling_blocks == 12  # DifferNet's only (Sec. 4.5)
    assert cells["csflow"].config.n_coupling_blocks == 4


def test_figure7_draws_other_methods_on_the_same_subsets(tmp_path):
    from bench.report.figures.fig7_fewshot import _compared

    store = ResultsStore(tmp_path)
    for method in ("differnet", "knn"):
        for shots in (2, 8, None):
            store.write(fixture_record("mtd", "mtd", method, 0, shots=shots))
    store.write(fixture_record("mtd", "mtd", "ocsvm", 0))  # no few-shot records: no line
    compared = _compared(ReportData.load(tmp_path), "mtd", "mtd")
    assert list(compared) == ["knn"] and len(compared["knn"]["rows"]) == 3
    figure = figure7_fewshot(ReportData.load(tmp_path), tmp_path / "figures")
    assert not figure.placeholder and "other methods" in figure.caption
