"""Mistakes a user can make end in one line that says what to do, and exit code 2; a cell
that cannot run (a corrupt image, missing weights) is recorded as failed and the others run."""

from __future__ import annotations

import shutil
from pathlib import Path

from cli_helpers import TINY, one_line_error
from cli_helpers import invoke as run

from bench.store.results import ResultsStore


def test_wrong_folder_layout(tmp_path):
    (tmp_path / "widgets" / "test" / "crack").mkdir(parents=True)  # no train/good
    (tmp_path / "gadgets" / "images").mkdir(parents=True)
    result = run("run", "--suite", "folder", "--categories", "widgets", "--data-root",
                 str(tmp_path), "--results-dir", str(tmp_path / "r"), *TINY)
    assert "train/good" in one_line_error(result)


def test_empty_folder_dataset(tmp_path):
    result = run("run", "--suite", "folder", "--data-root", str(tmp_path),
                 "--results-dir", str(tmp_path / "r"), *TINY)
    assert "--data-root" in one_line_error(result)


def failed_lines(result) -> list[str]:
    """A grid with cells that cannot run: the others run, exit code 1, one FAILED line each."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return [line for line in result.output.splitlines() if line.startswith("FAILED")]


def test_corrupt_image_fails_its_cells_only(synthetic_root: Path, tmp_path):
    root = tmp_path / "data"
    for category in ("blobs", "stripes"):
        shutil.copytree(synthetic_root / category, root / category)
    broken = sorted((root / "blobs" / "train" / "good").iterdir())[3]
    broken.write_bytes(b"this is not a png")
    result = run("run", "--suite", "folder", "--data-root", str(root),
                 "--results-dir", str(tmp_path / "r"), *TINY)
    (line,) = failed_lines(result)
    assert broken.name in line and "replace or delete" in line and "(corrupt_image)" in line
    records = {r.category: r for r in ResultsStore(tmp_path / "r").records()}
    assert records["blobs"].status == "failed" and records["blobs"].failure == "corrupt_image"
    assert records["stripes"].status == "ok"  # the grid went on


def test_missing_alexnet_weights(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    result = run("run", "--suite", "smoke", "--methods", "differnet,knn,dsebm", "--data-root",
                 str(synthetic_root), "--results-dir", str(tmp_path / "r"), "--preset", "tiny",
                 "--backbone", "alexnet", "--no-progress")
    lines = failed_lines(result)
    assert lines and all("alexnet-owt-7be5be79.pth" in line and "--backbone efficientnet_lite0"
                         in line and "(missing_weights)" in line for line in lines)
    records = ResultsStore(tmp_path / "r").records()
    assert {r.failure for r in records if r.backbone} == {"missing_weights"}
    assert {r.status for r in records if not r.backbone} == {"ok"}  # image methods still ran


def test_unknown_method_and_preset(synthetic_root, tmp_path):
    result = run("run", "--suite", "smoke", "--methods", "nope", "--data-root", str(synthetic_root))
    assert "unknown method" in one_line_error(result)
    result = run("run", "--suite", "smoke", "--preset", "huge", "--data-root", str(synthetic_root))
    assert "unknown preset" in one_line_error(result)
