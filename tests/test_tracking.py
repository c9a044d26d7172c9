"""MLflow tracking against the real package: ``run --track mlflow`` logs every finished cell as
a run (params, metrics, loss per epoch, tags, the record and its ROC curve), into a store inside
the results folder by default or a tracking server named by MLFLOW_TRACKING_URI (one started
on 127.0.0.1 here); ``results --to mlflow`` logs a store after the fact and never twice; a
tracker that fails costs a warning, not a cell; without MLflow the option says how to get it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cli_helpers import one_line_error
from click.testing import CliRunner

from bench.cli import cli
from bench.store.results import ResultsStore

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

RUN = ["--suite", "smoke", "--methods", "differnet,knn", "--categories", "blobs", "--preset",
       "tiny", "--backbone", "random", "--no-progress"]


def run(root: Path, store: Path, *extra: str):
    result = CliRunner().invoke(cli, ["run", *RUN, "--data-root", str(root), "--results-dir",
                                      str(store), *extra])
    assert result.exit_code == 0, result.output
    return result


def runs_of(client: MlflowClient, experiment: str):
    found = client.get_experiment_by_name(experiment)
    return [] if found is None else client.search_runs([found.experiment_id])


@pytest.fixture(scope="module")
def tracked(synthetic_root, tmp_path_factory):
    """A store whose two cells ran with --track mlflow into its own embedded tracker."""
    store = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        output = run(synthetic_root, store, "--track", "mlflow").output
    return store, output


def test_run_logs_every_finished_cell(tracked):
    store, output = tracked
    assert "MLflow: 2 runs added, 0 already there" in output
    client = MlflowClient("sqlite:///" + str(store / "mlflow" / "mlflow.db"))
    runs = {r.data.params["method"]: r for r in runs_of(client, "smoke")}
    assert set(runs) == {"differnet", "knn"}
    records = {r.method: r for r in ResultsStore(store).records()}
    differnet, record = runs["differnet"], records["differnet"]
    assert differnet.info.status == "FINISHED" and differnet.info.run_name == record.cell_id
    params, metrics, tags = differnet.data.params, differnet.data.metrics, differnet.data.tags
    assert params["config.epochs"] == str(record.config["epochs"])
    assert params["seed"] == "0" and params["preset"] == "tiny" and params["category"] == "blobs"
    assert params["data_fingerprint"] == record.data_fingerprint
    assert metrics["image_auroc"] == pytest.approx(record.auroc)
    assert metrics["peak_memory_mb"] == pytest.approx(record.peak_memory_mb)
    assert metrics["minutes"] == pytest.approx((record.fit_s + record.score_s) / 60)
    losses = client.get_metric_history(differnet.info.run_id, "loss")
    assert [m.value for m in sorted(losses, key=lambda m: m.step)] == pytest.approx(
        record.info["loss_history"])
    assert tags["commit"] == (record.git_commit or "unknown") and tags["reduced"] == "true"
    assert tags["values_chosen_on_test_data"] == "none"
    artifacts = {a.path for a in client.list_artifacts(differnet.info.run_id)}
    assert artifacts == {f"{record.cell_id}.json", "roc.png"}


def test_logging_again_adds_nothing(tracked, synthetic_root, monkeypatch):
    store, _ = tracked
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    again = CliRunner().invoke(cli, ["results", "--results-dir", str(store), "--to", "mlflow"])
    assert again.exit_code == 0 and "0 runs added, 2 already there" in again.output
    rerun = run(synthetic_root, store, "--track", "mlflow").output  # cells skipped, not relogged
    assert "0 runs added, 2 already there" in rerun
    client = MlflowClient("sqlite:///" + str(store / "mlflow" / "mlflow.db"))
    assert len(runs_of(client, "smoke")) == 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "served"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("the MLflow server did not start")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_results_to_a_tracking_server(tracked, server, monkeypatch, tmp_path):
    store, _ = tracked
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    for added, present in ((2, 0), (0, 2)):
        result = CliRunner().invoke(cli, ["results", "--results-dir", str(store), "--to",
                                          "mlflow", "--experiment", "lab", "--method", "knn,differnet"])
        assert result.exit_code == 0, result.output
        assert f"{added} runs added, {present} already there" in result.output
    client = MlflowClient(server)
    runs = runs_of(client, "lab")
    assert sorted(r.data.params["method"] for r in runs) == ["differnet", "knn"]
    (knn,) = [r for r in runs if r.data.params["method"] == "knn"]
    assert "roc.png" in {a.path for a in client.list_artifacts(knn.info.run_id)}
    assert not (store / "mlflow" / "mlruns").exists()


def test_a_tracker_that_fails_costs_a_warning_not_a_cell(synthetic_root, tmp_path,
                                                         monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")  # nobody there
    result = run(synthetic_root, tmp_path / "store", "--track", "mlflow")
    warnings = [r.getMessage() for r in caplog.records if r.name == "bench.run.tracking"]
    assert len(warnings) == 1 and "results --to mlflow" in warnings[0], warnings
    assert "0 runs added" in result.output and "2 not logged" in result.output
    records = ResultsStore(tmp_path / "store").records()
    assert [r.status for r in records] == ["ok", "ok"]


def test_a_tracking_uri_mlflow_refuses_or_cannot_write_is_one_line_before_any_cell(
        synthetic_root, tmp_path, monkeypatch):
    """A file store (the form most MLflow users have, refused by MLflow 3) and a database in a
    folder that cannot be made: one line naming the fix, exit 2, no cell run, no traceback."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    store = tmp_path / "store"
    for uri, fix in ((tmp_path.resolve().as_uri() + "/mlruns", "MLFLOW_ALLOW_FILE_STORE=true"),
                     (f"sqlite:///{blocker}/mlflow.db", "a folder this user can write")):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        for args in (["run", *RUN, "--data-root", str(synthetic_root), "--results-dir",
                      str(store), "--track", "mlflow"],
                     ["results", "--results-dir", str(store), "--to", "mlflow"]):
            line = one_line_error(CliRunner().invoke(cli, args))
            assert uri in line and fix in line, line
    assert "sqlite:///" in line and not ResultsStore(store).has_records()


def test_an_unreachable_server_stops_results_to_mlflow_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    start = time.perf_counter()
    line = one_line_error(CliRunner().invoke(cli, ["results", "--results-dir", str(tmp_path),
                                                   "--to", "mlflow"]))
    assert "cannot reach the MLflow server" in line and "start it" in line
    assert time.perf_counter() - start < 30  # no minutes of retries


def test_a_suite_tracking_table(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    suite = tmp_path / "mine.toml"
    suite.write_text('dataset = "synthetic"\nmethods = ["knn"]\npreset = "tiny"\n'
                     'backbone = "random"\ncategories = ["blobs"]\n'
                     '[tracking]\nbackend = "mlflow"\nexperiment = "my grid"\n')
    result = CliRunner().invoke(cli, ["run", "--suite", str(suite), "--data-root",
                                      str(synthetic_root), "--results-dir", str(tmp_path / "r"),
                                      "--no-progress"])
    assert result.exit_code == 0 and "1 runs added" in result.output, result.output
    client = MlflowClient("sqlite:///" + str(tmp_path / "r" / "mlflow" / "mlflow.db"))
    assert len(runs_of(client, "my grid")) == 1
    off = CliRunner().invoke(cli, ["run", "--suite", str(suite), "--data-root",
                                   str(synthetic_root), "--results-dir", str(tmp_path / "r2"),
                                   "--no-progress", "--track", "none"])
    assert off.exit_code == 0 and "MLflow" not in off.output


def test_without_mlflow_the_option_says_how_to_install_it(synthetic_root, tmp_path,
                                                         monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow now raises ImportError
    for args in (["run", *RUN, "--data-root", str(synthetic_root), "--results-dir",
                  str(tmp_path), "--track", "mlflow"],
                 ["results", "--results-dir", str(tmp_path), "--to", "mlflow"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "pip install" in result.output
    assert not ResultsStore(tmp_path).has_records()  # said before any cell ran


def test_a_log_cut_short_is_done_again(tracked, tmp_path, monkeypatch):
    from bench.run.tracking import TrackingOptions, make_tracker

    store, _ = tracked
    monkeypatch.chdir(tmp_path)  # MLflow keeps a SQLite URI's artifacts under ./mlruns
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "cut.db"))
    record = ResultsStore(store).records()[0]
    first = make_tracker(ResultsStore(store), TrackingOptions(experiment="cut"))
    monkeypatch.setattr(first.client, "set_terminated", lambda *a, **k: 1 / 0)  # killed here
    with pytest.raises(ZeroDivisionError):
        first.log(record)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "cut.db"))
    again = make_tracker(ResultsStore(store), TrackingOptions(experiment="cut"))
    assert again.log_all([record]) == (1, 0)
    (run,) = runs_of(MlflowClient("sqlite:///" + str(tmp_path / "cut.db")), "cut")
    assert run.info.status == "FINISHED" and run.data.metrics["image_auroc"] == record.auroc
