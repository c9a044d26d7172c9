"""Localization, measured: DifferNet's gradient maps scored with pixel AUROC and PRO against
the synthetic defects' masks beside the two trivial references; the report table and the
``localize`` panels read them back from the store.

On the default synthetic defects (aligned textures, large intensity changes) the distance to the
mean training image is a strong reference: measured with the first fixture's settings, pixel
AUROC / PRO were DifferNet 0.62 / 0.28, mean image 0.96 / 0.85, constant 0.50 / 0.15 (blobs).
There the test checks what holds: DifferNet's maps beat the constant map.

Where the defect is a change of texture at unchanged intensity ("smudge": the stripes wiped out
over a disc), no per-pixel intensity reference can find it and DifferNet's maps beat both
references. Measured with the second fixture's settings on four synthetic data seeds (0-3),
pixel AUROC / PRO: DifferNet 0.79 / 0.50, 0.80 / 0.43, 0.84 / 0.56, 0.72 / 0.36; mean image
0.18 / 0.00, 0.11 / 0.00, 0.12 / 0.00, 0.16 / 0.00 (it ranks the flat disc as the most normal
region); constant 0.50 / 0.15. With 2 rotations instead of the default 4, DifferNet's were lower
(0.76 / 0.41 at seed 0, 0.57 / 0.18 at seed 3), so the test keeps the default."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.data.synthetic import make_synthetic
from bench.report import ReportData
from bench.report.tables import localization
from bench.run.runner import RunOptions, run_cells
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore


@pytest.fixture(scope="module")
def localized(synthetic_root, tmp_path_factory) -> tuple[Path, object]:
    store = ResultsStore(tmp_path_factory.mktemp("localized"))
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["blobs"],
                  preset="tiny", backbone="efficientnet_lite0",
                  overrides={"localize_rotations": 2})
    (record,) = run_cells(plan(suite, data_root=synthetic_root), store, RunOptions(localize=True)).done
    return store.root, record


def test_maps_are_scored_beside_the_references(localized):
    _, record = localized
    scores = record.info["localization"]
    assert (record.pixel_auroc, record.pro) == (scores["method"]["pixel_auroc"],
                                                scores["method"]["pro"])
    assert scores["method"]["pixel_auroc"] > scores["constant"]["pixel_auroc"] == 0.5, scores
    assert scores["method"]["pro"] > scores["constant"]["pro"], scores
    assert scores["constant"]["pro"] == pytest.approx(0.15)  # straight from (0, 0) to (1, 1)
    assert scores["mean_image"]["pixel_auroc"] > 0.5  # the defects change the intensity


@pytest.fixture(scope="module")
def smudged(tmp_path_factory) -> dict[str, dict[str, float]]:
    root = make_synthetic(tmp_path_factory.mktemp("smudge"), categories=("stripes",), n_train=20,
                          n_test_good=8, n_test_defect=8, size=64, defects=("smudge",))
    store = ResultsStore(tmp_path_factory.mktemp("smudged"))
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["stripes"],
                  preset="tiny", backbone="efficientnet_lite0")
    (record,) = run_cells(plan(suite, data_root=root), store, RunOptions(localize=True)).done
    return record.info["localization"]


@pytest.mark.parametrize("metric", ["pixel_auroc", "pro"])
def test_maps_beat_both_references_on_a_texture_defect(smudged, metric):
    method, constant, mean_image = (smudged[k][metric] for k in ("method", "constant", "mean_image"))
    assert method > max(constant, mean_image) + 0.1, smudged


def test_report_table_shows_the_method_beside_the_references(localized):
    root, record = localized
    table = localization(ReportData.load(root))
    assert len(table.data) == 3
    assert table.data["pixel_auroc"].iloc[0] == pytest.approx(100 * record.pixel_auroc)


def test_localize_command_draws_panels(localized, tmp_path):
    root, record = localized
    image = next(f for f, label in zip(record.test_files, record.labels) if label == 1)
    result = CliRunner().invoke(cli, ["localize", "--results-dir", str(root), "--images", image,
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert len(list(tmp_path.glob("*.png"))) == 1
    missing = CliRunner().invoke(cli, ["localize", "--results-dir", str(root), "--images",
                                       "nope.png"])
    assert missing.exit_code == 2 and "--localize" in missing.output
