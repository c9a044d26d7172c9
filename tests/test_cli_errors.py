"""Mistakes a user can make end in one line that says what to do, and exit code 2."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from bench.cli import cli

TINY = ["--preset", "tiny", "--backbone", "random", "--no-progress"]


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


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


def test_corrupt_image(synthetic_root: Path, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "blobs", root / "blobs")
    broken = sorted((root / "blobs" / "train" / "good").iterdir())[3]
    broken.write_bytes(b"this is not a png")
    result = run("run", "--suite", "folder", "--data-root", str(root),
                 "--results-dir", str(tmp_path / "r"), *TINY)
    message = one_line_error(result)
    assert broken.name in message and "replace or delete" in message
    assert not (tmp_path / "r" / "records").exists()


def test_missing_alexnet_weights(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    result = run("run", "--suite", "smoke", "--data-root", str(synthetic_root),
                 "--results-dir", str(tmp_path / "r"), "--preset", "tiny",
                 "--backbone", "alexnet", "--no-progress")
    message = one_line_error(result)
    assert "alexnet-owt-7be5be79.pth" in message and "--backbone efficientnet_lite0" in message


def test_unknown_method_and_preset(synthetic_root, tmp_path):
    result = run("run", "--suite", "smoke", "--methods", "nope", "--data-root", str(synthetic_root))
    assert "unknown method" in one_line_error(result)
    result = run("run", "--suite", "smoke", "--preset", "huge", "--data-root", str(synthetic_root))
    assert "unknown preset" in one_line_error(result)
