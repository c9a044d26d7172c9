"""Results on data the paper never used (a user's own folders, synthetic defects) come first in
the report, each dataset with a table (method x category, mean ± 95 % CI over seeds) and ROC
curves of its own, both with the "Behind it" provenance box; and the report renders without
torch.

The store is made of hand-made fixture records (random scores, see test_report.py): their
numbers mean nothing, the tests check that the report carries them faithfully.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_report import fixture_record, fixture_records

from bench.report import NOT_RUN, ReportData, all_figures, all_tables, build_report
from bench.report.summary import ci95, seed_summary
from bench.report.tables import other_data_table
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]


def other_data_records():
    out = []
    # synthetic: DifferNet on two categories with 3 seeds, 1-NN on one with 2 seeds, a failed
    # OCSVM cell, a few-shot DifferNet cell
    for category in ("stripes", "dots"):
        out += [fixture_record("synthetic", category, "differnet", s, separation=1.0 + s)
                for s in range(3)]
    out += [fixture_record("synthetic", "stripes", "knn", s, backbone="alexnet") for s in (0, 1)]
    out.append(fixture_record("synthetic", "dots", "ocsvm", 0, status="failed"))
    out.append(fixture_record("synthetic", "stripes", "differnet", 0, shots=8))
    # folder: one category with 3 seeds, and a reduced second configuration of it
    out += [fixture_record("folder", "bolts", "differnet", s) for s in range(3)]
    out.append(fixture_record("folder", "bolts", "differnet", 0, preset="fast",
                              departures={"epochs": 40}, separation=-2.0))
    return out


def write_store(root: Path, records) -> Path:
    store = ResultsStore(root)
    for record in records:
        store.write(record)
    return root


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("other") / "results"
    # one MTD record, so the paper's part has something to follow
    return write_store(root, [*other_data_records(),
                              fixture_record("mtd", "mtd", "differnet", 0, separation=3.0)])


@pytest.fixture(scope="module")
def data(store_dir) -> ReportData:
    return ReportData.load(store_dir)


@pytest.fixture(scope="module")
def report(store_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("other_out")
    build_report(store_dir, out)
    return out


def test_synthetic_table_is_the_seed_summary(data):
    table = other_data_table(data, "synthetic")
    summary = seed_summary(data.frame[data.frame["dataset"] == "synthetic"])
    cells = table.data[table.data["category"] != "mean of the categories run"]
    ok = cells[cells["status"] == "ok"]
    assert set(zip(ok["column"], ok["category"])) == {
        ("DifferNet", "stripes"), ("DifferNet", "dots"), ("1-NN", "stripes"),
        ("DifferNet (8 shots)", "stripes")}
    for row in ok.itertuples():
        ids = row.cell_ids.split(";")
        frame = data.frame[data.frame["cell_id"].isin(ids)]
        assert row.ours == pytest.approx(100 * frame["auroc"].mean())
        assert row.n_seeds == frame["seed"].nunique()
        match = summary[(summary["category"] == row.category) & (summary["method"] == row.method)
                        & (summary["shots"].isna() if pd.isna(row.shots)
                           else summary["shots"] == row.shots)]
        assert len(match) == 1
        assert row.ours == pytest.approx(100 * match["auroc"].iloc[0])
        if row.n_seeds > 1:
            assert row.ci95 == pytest.approx(100 * match["ci95"].iloc[0])
            assert row.ci95 == pytest.approx(ci95(100 * frame["auroc"]))
    shown = table.display.set_index("category")
    stripes = ok[(ok["column"] == "DifferNet") & (ok["category"] == "stripes")].iloc[0]
    assert shown.loc["stripes", "DifferNet"] == f"{stripes.ours:.1f} ± {stripes.ci95:.1f}"
    assert shown.loc["dots", "1-NN"] == NOT_RUN
    assert shown.loc["dots", "OCSVM"] == "failed"
    assert list(shown.columns[:2]) == ["OCSVM", "1-NN"]  # the paper's method order
    # The mean row: the mean of the categories run, its CI over seeds of the per-seed mean.
    mean = table.data[(table.data["category"] == "mean of the categories run")
                      & (table.data["column"] == "DifferNet")].iloc[0]
    differnet = data.frame[(data.frame["dataset"] == "synthetic")
                           & (data.frame["method"] == "differnet") & data.frame["shots"].isna()]
    per_seed = 100 * differnet.pivot_table(index="seed", columns="category", values="auroc")
    assert mean.ours == pytest.approx(per_seed.mean().mean())
    assert mean.ci95 == pytest.approx(ci95(per_seed.mean(axis=1)))
    assert "Preset: paper" in table.provenance.text()


def test_folder_table_shows_the_paper_configuration(data):
    table = other_data_table(data, "folder")
    row = table.data.iloc[0]
    assert row.category == "bolts" and row.preset == "paper" and row.n_seeds == 3
    ids = row.cell_ids.split(";")
    assert row.ours == pytest.approx(
        100 * data.frame[data.frame["cell_id"].isin(ids)]["auroc"].mean())
    assert "fast" not in table.provenance.text()  # the reduced run stays in the appendix
    assert len(table.display) == 1  # one category: no mean row


def test_other_data_comes_first(data, tmp_path):
    tables, figures = all_tables(data), all_figures(data, tmp_path)
    assert [t.key for t in tables[:3]] == ["table_data_folder", "table_data_synthetic",
                                           "table1_mvtec"]
    assert [f.key for f in figures[:3]] == ["fig_roc_folder", "fig_roc_synthetic",
                                            "fig5_roc_mtd"]
    for item in [*tables[:2], *figures[:2]]:
        assert item.provenance is not None and "Preset:" in item.provenance.text()
    for figure in figures[:2]:
        assert not figure.placeholder and figure.png.stat().st_size > 1000


def test_report_shows_other_data_first_with_provenance(report):
    md = (report / "report.md").read_text()
    html = (report / "report.html").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:5] == [
        "## Your own data, table: AUROC per category and method",
        "## Your own data, figure: ROC curves per category",
        "## Synthetic defects, table: AUROC per category and method",
        "## Synthetic defects, figure: ROC curves per category",
        "## Table 1: MVTec AD, AUROC per category",
    ]
    for section in md.split("\n## ")[1:5]:
        assert "> **Behind it.** Preset:" in section
    assert "| category | OCSVM | 1-NN | DifferNet | DifferNet (8 shots) |" in md
    assert "data the paper never used come first" in md
    sections = html.split("<section ")[1:]
    assert [s.split('"')[1] for s in sections[:5]] == [
        "table_data_folder", "fig_roc_folder", "table_data_synthetic", "fig_roc_synthetic",
        "table1_mvtec"]
    for section in sections[:4]:
        assert '<div class="prov' in section and "Behind it." in section
    assert '<td class="failed">failed</td>' in sections[2]
    assert html.count("data:image/png;base64,") == 6  # two ROC figures and Figures 5-8
    assert (report / "tables" / "table_data_synthetic.csv").is_file()
    assert "\\begin{tabular}" in (report / "tables" / "table_data_folder.tex").read_text()


def test_paper_data_only_has_no_other_section(tmp_path):
    root = write_store(tmp_path / "results", fixture_records())
    result = build_report(root, tmp_path / "out")
    assert result.tables[0].key == "table1_mvtec"
    assert not [f for f in result.figures if f.dataset]
    assert "never used" not in (tmp_path / "out" / "report.md").read_text()


def test_report_renders_without_torch(tmp_path):
    """A store with every kind of record, and a gradient map for Figure 8, renders in a fresh
    interpreter that never imports torch, a method or the feature pipeline."""
    root = tmp_path / "data"
    (root / "grid" / "test" / "crack").mkdir(parents=True)
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(root / "grid/test/crack/000.png")
    record = fixture_record("mvtec", "grid", "differnet", 7, test_files=["good/000.png",
                            "crack/000.png"], n_good=1, n_bad=1)
    record.info["root"] = str(root)
    store_root = write_store(tmp_path / "results",
                             [*fixture_records(), *other_data_records(), record])
    maps = np.random.default_rng(0).random((2, 32, 32))
    ResultsStore(store_root).write_maps(record.cell_id, maps, record.test_files)
    out = tmp_path / "out"
    code = (
        "import sys; from pathlib import Path; from bench.report import build_report; "
        f"result = build_report(Path({str(store_root)!r}), Path({str(out)!r})); "
        "assert not [f.key for f in result.figures if f.placeholder], 'a placeholder'; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', "
        "'baselines') or m.startswith(('bench.differnet', 'bench.methods', 'bench.features'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (out / "report.html").is_file()
