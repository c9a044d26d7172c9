"""The CLI checks before it runs: a bad --device, a --set value of the wrong type or name, or a
file where a folder belongs ends in one line and exit code 2 before any cell or data work."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from cli_helpers import TINY, invoke, one_line_error

import bench
from bench.config import check_override_types, field_types, value_fits
from bench.differnet.config import DifferNetConfig
from bench.errors import BenchError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_planning(monkeypatch):
    """Fail the test if the CLI gets as far as planning cells (which may download data)."""
    reached = []

    def plan(suite, **_kwargs):
        reached.append(suite)
        raise BenchError("reached plan")

    monkeypatch.setattr("bench.run.suites.plan", plan)
    return reached


def run_mvtec(tmp_path: Path, *args: str):
    """A run that would download MVTec AD if it got past the checks."""
    return invoke("run", "--suite", "mvtec", "--data-root", str(tmp_path / "nothing"),
                  "--results-dir", str(tmp_path / "r"), *TINY, *args)


def test_a_device_this_machine_lacks_fails_up_front(tmp_path, no_planning):
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, or cuda:0 with none
    assert missing in one_line_error(run_mvtec(tmp_path, "--device", missing))
    assert no_planning == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_without_a_gpu_fails_up_front(tmp_path, no_planning):
    assert "no CUDA GPU" in one_line_error(run_mvtec(tmp_path, "--device", "cuda"))
    assert no_planning == []


def test_an_unknown_device_fails_up_front(tmp_path, no_planning):
    message = one_line_error(run_mvtec(tmp_path, "--device", "gpu"))
    assert "unknown device 'gpu'" in message and "cpu" in message
    assert no_planning == []


def test_set_value_of_the_wrong_type_names_field_and_type(tmp_path, no_planning):
    message = one_line_error(run_mvtec(tmp_path, "--set", "epochs=ten"))
    assert "epochs" in message and "expected int" in message and "'ten'" in message
    message = one_line_error(run_mvtec(tmp_path, "--set", "multi_scale=False"))
    assert "multi_scale" in message and "expected bool" in message and "multi_scale=true" in message
    message = one_line_error(run_mvtec(tmp_path, "--set", "scales=[64,32.5]"))
    assert "tuple[int, ...]" in message
    assert no_planning == []


def test_set_unknown_name_is_answered_with_the_valid_names(tmp_path, no_planning):
    message = one_line_error(run_mvtec(tmp_path, "--methods", "differnet,knn", "--set", "epoch=10"))
    assert "'epoch'" in message and "did you mean epochs" in message
    assert "n_coupling_blocks" in message and "pca_components" in message
    assert no_planning == []


def test_set_values_of_the_right_type_reach_the_plan(tmp_path, no_planning):
    # An int fits a float field; a TOML array fits a tuple; text fits a str field.
    result = run_mvtec(tmp_path, "--methods", "differnet,knn", "--set", "lr=1", "--set",
                       "scales=[64,32,16]", "--set", "score=nll", "--set", "pca_components=8")
    assert "reached plan" in one_line_error(result)
    (suite,) = no_planning
    assert suite.overrides == {"lr": 1, "scales": [64, 32, 16], "score": "nll", "pca_components": 8}


def test_a_suite_file_override_of_the_wrong_type_is_caught_too(tmp_path, no_planning):
    suite = tmp_path / "mine.toml"
    suite.write_text('dataset = "synthetic"\nmethods = ["differnet"]\n[overrides]\nepochs = "ten"\n')
    message = one_line_error(invoke("run", "--suite", str(suite), *TINY))
    assert "suite mine [overrides] epochs" in message and "expected int" in message


def test_value_fits_the_field_types():
    types = field_types(DifferNetConfig)
    assert value_fits(3, types["epochs"]) and not value_fits(3.0, types["epochs"])
    assert not value_fits(True, types["epochs"]) and not value_fits(1, types["multi_scale"])
    assert value_fits(3, types["lr"]) and value_fits(2e-4, types["lr"])
    assert value_fits(None, types["photometric"]) and value_fits(False, types["photometric"])
    assert value_fits([0.8, 0.8], types["adam_betas"]) and not value_fits([0.8], types["adam_betas"])
    assert value_fits([], types["scales"]) and not value_fits("448", types["scales"])
    with pytest.raises(BenchError, match="expected float"):
        check_override_types({"differnet": DifferNetConfig}, {"lr": "fast"})


def test_list_fields_shows_type_paper_default_and_description():
    result = invoke("list", "--fields", "differnet")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert set(rows) == {f.name for f in DifferNetConfig.__dataclass_fields__.values()}
    assert rows["epochs"][:5] == ["epochs", "int", "192", "Sec.", "4.2"]
    assert rows["scales"][1:4] == ["tuple[int,", "...]", "[448,224,112]"]
    assert rows["photometric"][1:5] == ["bool", "|", "None", "-"]
    knn = invoke("list", "--fields", "knn").output
    assert any(line.split()[:3] == ["pca_components", "int", "64"] and "PCA" in line
               for line in knn.splitlines())
    assert "unknown method" in one_line_error(invoke("list", "--fields", "nope"))


@pytest.mark.parametrize("command", [
    ["run", "--suite", "mvtec", "--results-dir", "{file}"],
    ["run", "--suite", "mvtec", "--cache-dir", "{file}"],
    ["report", "--out", "{file}"],
    ["results", "--results-dir", "{file}"],
])
def test_a_file_where_a_folder_belongs(tmp_path, no_planning, command):
    existing = tmp_path / "a_file.txt"
    existing.write_text("not a folder")
    result = invoke(*[part.format(file=existing) for part in command])
    message = one_line_error(result)
    assert str(existing) in message and "is a file" in message
    assert no_planning == []


def test_results_out_may_not_be_a_folder(tmp_path):
    message = one_line_error(invoke("results", "--results-dir", str(tmp_path / "r"),
                                    "--format", "csv", "--out", str(tmp_path)))
    assert "--out" in message and "is a folder" in message


def test_version_is_the_package_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output == f"differnet-bench {bench.__version__}\n"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert bench.__version__ == pyproject["project"]["version"]


def bench_py(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "bench.py"), *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [["-v", "results"], ["results", "-v"], ["results", "--verbose"]])
def test_verbose_before_or_after_the_subcommand(tmp_path, args):
    done = bench_py(*args, "--results-dir", str(tmp_path / "r"), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "DEBUG" in done.stderr and "debug logging on" in done.stderr


def test_no_debug_lines_without_verbose(tmp_path):
    done = bench_py("results", "--results-dir", str(tmp_path / "r"), tmp_path=tmp_path)
    assert done.returncode == 0 and "DEBUG" not in done.stderr
