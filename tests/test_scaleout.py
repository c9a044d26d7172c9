"""Scale-out: runs killed at random moments, two runners on one store, the submitit executor
(with a preempted task that resumes from its checkpoint), leases, data fingerprints, and the
failures that must not stop a grid."""

from __future__ import annotations

import json
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import TINY

from bench.data.fingerprint import matches_manifest, split_fingerprint, write_manifest
from bench.errors import CorruptImageError, MissingWeightsError
from bench.run.cells import cell_split
from bench.run.executors import CellJob, ExecutorOptions, make_submitit_executor
from bench.run.runner import RunOptions, failure_kind, run_cells
from bench.run.suites import Suite, plan
from bench.store.leases import Lease
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
RUN_LINE = re.compile(r"bench\.run\.runner: run (\S+)")


def bench_process(args: list[str], log: Path) -> subprocess.Popen:
    """``bench.py`` in a child process of its own, its output in ``log``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, str(REPO / "bench.py"), *args], cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def grid_args(root: Path, store: Path, methods: str, seeds: str) -> list[str]:
    return ["run", "--suite", "smoke", "--methods", methods, "--seeds", seeds,
            "--data-root", str(root), "--results-dir", str(store), *TINY]


def expected_cells(root: Path, methods: str, seeds: str) -> set[str]:
    suite = Suite(name="smoke", dataset="synthetic", methods=methods.split(","),
                  seeds=[int(s) for s in seeds.split(",")], preset="tiny", backbone="random")
    return {c.cell_id for c in plan(suite, data_root=root)}


def record_files(store: Path) -> list[Path]:
    return sorted((store / "records").glob("**/*.json"))


def test_sigkill_at_20_random_moments_records_every_cell_once(synthetic_root, tmp_path):
    store, log = tmp_path / "store", tmp_path / "run.log"
    args = grid_args(synthetic_root, store, "differnet,knn", "0,1")
    moments = random.Random(0)
    kills = 0
    for _ in range(20):
        child = bench_process(args, log)
        time.sleep(moments.uniform(0.5, 5.0))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
    child = bench_process(args, log)
    assert child.wait(timeout=300) == 0, log.read_text()[-3000:]
    assert kills >= 15  # most moments fell inside a run
    records = [json.loads(path.read_text()) for path in record_files(store)]  # all parse
    ids = [r["cell_id"] for r in records]
    assert sorted(ids) == sorted(expected_cells(synthetic_root, "differnet,knn", "0,1"))
    assert all(r["status"] == "ok" for r in records)
    assert not (store / "superseded").exists()


def test_two_runners_on_one_store_never_run_a_cell_twice(synthetic_root, tmp_path):
    store = tmp_path / "store"
    args = grid_args(synthetic_root, store, "differnet,knn,ocsvm", "0,1")
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    children = [bench_process(args, log) for log in logs]
    for child, log in zip(children, logs):
        assert child.wait(timeout=300) == 0, log.read_text()[-3000:]
    runs = [RUN_LINE.findall(log.read_text()) for log in logs]  # one line per fit
    fits = runs[0] + runs[1]
    assert len(fits) == len(set(fits)), "a cell was fitted twice"
    expected = expected_cells(synthetic_root, "differnet,knn,ocsvm", "0,1")
    assert set(fits) == expected
    assert sorted(json.loads(p.read_text())["cell_id"] for p in record_files(store)) == sorted(expected)


def test_submitit_local_runs_the_grid_and_records_the_job(synthetic_root, tmp_path):
    from click.testing import CliRunner

    from bench.cli import cli

    result = CliRunner().invoke(cli, [*grid_args(synthetic_root, tmp_path, "knn", "0"),
                                      "--executor", "submitit-local"])
    assert result.exit_code == 0, result.output
    records = ResultsStore(tmp_path).records()
    assert len(records) == 2 and all(r.status == "ok" and r.job_id for r in records)
    assert list((tmp_path / "slurm").glob("*_log.out"))  # the tasks' logs


def test_a_preempted_task_is_requeued_and_resumes_from_its_checkpoint(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["differnet"], categories=["blobs"],
                  preset="tiny", backbone="random", overrides={"epochs": 60})
    (cell,) = plan(suite, data_root=synthetic_root)
    store = ResultsStore(tmp_path)
    executor = make_submitit_executor(ExecutorOptions(kind="submitit-local", time_min=10),
                                      tmp_path / "slurm")
    job = executor.submit(CellJob(tmp_path, {}, RunOptions(), logging.INFO), cell)
    checkpoint = tmp_path / ".cache" / "checkpoints" / f"{cell.cell_id}.pt"
    deadline = time.time() + 180
    while not checkpoint.exists():
        assert time.time() < deadline and not job.done(), job.stderr()
        time.sleep(0.05)
    # SLURM signals a preempted task's processes (submitit asks for USR2); the task's pid is
    # in its lease. (submitit's LocalJob._interrupt signals the local controller instead.)
    task_pid = json.loads(store.lease_path(cell).read_text())["pid"]
    os.kill(task_pid, signal.SIGUSR2)
    assert job.result()["status"] == "ok", job.stderr()
    record = store.record(cell)
    assert record.status == "ok" and record.info["resumed_from_epoch"] >= 5
    assert len(record.info["loss_history"]) == 60
    assert "requeue" in job.stderr().lower() or "requeue" in job.stdout().lower()


# -- leases -----------------------------------------------------------------------------------


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_lease_of_a_dead_process_is_taken_over_at_once(tmp_path):
    path = tmp_path / "cell.lease"
    path.write_text(json.dumps({"host": socket.gethostname(), "pid": dead_pid(), "token": "x"}))
    lease = Lease.acquire(path)
    assert lease is not None and json.loads(path.read_text())["pid"] == os.getpid()
    lease.release()
    assert not path.exists()


def test_a_silent_lease_from_another_host_is_stale_only_after_the_timeout(tmp_path):
    path = tmp_path / "cell.lease"
    path.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "x"}))
    assert Lease.acquire(path, stale_after=60) is None
    old = time.time() - 120
    os.utime(path, (old, old))
    assert Lease.acquire(path, stale_after=60) is not None


def test_a_cell_claimed_by_a_live_runner_is_left_to_it(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["knn"], categories=["blobs"],
                  preset="tiny", backbone="random")
    (cell,) = plan(suite, data_root=synthetic_root)
    store = ResultsStore(tmp_path)
    with store.claim(cell):
        summary = run_cells([cell], store)
    assert summary.claimed == [cell] and not summary.done and not record_files(tmp_path)


# -- data fingerprints and manifests ----------------------------------------------------------


def test_the_same_cell_on_other_data_is_not_skipped(synthetic_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "blobs", root / "blobs")
    suite = Suite(name="t", dataset="folder", methods=["knn"], preset="tiny", backbone="random")
    (cell,) = plan(suite, data_root=root)
    store = ResultsStore(tmp_path / "store")
    first = run_cells([cell], store).done[0]
    assert run_cells([cell], store).skipped == [cell]  # same files: done
    image = sorted((root / "blobs" / "test" / "good").iterdir())[0]
    with open(image, "ab") as f:
        f.write(b"\0" * 10)  # same name, other file
    second = run_cells([cell], store)
    assert second.done and second.done[0].data_fingerprint != first.data_fingerprint
    moved = list((tmp_path / "store" / "superseded" / "other-data").glob("**/*.json"))
    assert [json.loads(p.read_text())["data_fingerprint"] for p in moved] == [first.data_fingerprint]


def test_a_record_from_before_fingerprints_counts_when_its_files_match(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["knn"], categories=["blobs"],
                  preset="tiny", backbone="random")
    (cell,) = plan(suite, data_root=synthetic_root)
    store = ResultsStore(tmp_path)
    run_cells([cell], store)
    path = store.path(cell)
    old = json.loads(path.read_text())
    for key in ("data_fingerprint", "data_verified", "failure", "job_id"):
        del old[key]
    path.write_text(json.dumps(old))
    assert run_cells([cell], store).skipped == [cell]


def test_manifest_says_whether_a_split_matches_the_verified_download(synthetic_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synthetic_root / "blobs", root / "blobs")
    suite = Suite(name="t", dataset="folder", methods=["knn"], preset="tiny", backbone="random")
    (cell,) = plan(suite, data_root=root)
    split = cell_split(cell)
    assert matches_manifest(split, root) is None  # no manifest: not verified
    write_manifest(root, "folder", ["blobs"], "test")
    assert matches_manifest(split, root) is True
    fingerprint = split_fingerprint(split, root)
    with open(split.test[0].path, "ab") as f:
        f.write(b"\0")
    assert matches_manifest(split, root) is False
    assert split_fingerprint(split, root) != fingerprint


# -- failures that do not stop the grid -------------------------------------------------------


@pytest.mark.parametrize("error, kind", [
    (FloatingPointError("flow loss diverged at epoch 3"), "diverged"),
    (torch.OutOfMemoryError("CUDA out of memory"), "out_of_memory"),
    (RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 GB"),
     "out_of_memory"),
    (MemoryError(), "out_of_memory"),
    (CorruptImageError("image x.png cannot be read"), "corrupt_image"),
    (MissingWeightsError("alexnet weights"), "missing_weights"),
    (ValueError("something else"), "error"),
])
def test_failure_kinds(error, kind):
    assert failure_kind(error) == kind


def test_a_failing_cell_is_recorded_with_its_reason_and_the_grid_goes_on(synthetic_root,
                                                                         tmp_path, monkeypatch):
    suite = Suite(name="t", dataset="synthetic", methods=["knn"], seeds=[0, 1, 2],
                  categories=["blobs"], preset="tiny", backbone="random")
    cells = plan(suite, data_root=synthetic_root)
    import bench.run.runner

    real = bench.run.runner.run_cell

    def flaky(cell, options, store):
        if cell.seed == 0:
            raise FloatingPointError("flow loss diverged at epoch 3")
        if cell.seed == 1:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(cell, options, store)

    monkeypatch.setattr(bench.run.runner, "run_cell", flaky)
    summary = run_cells(cells, ResultsStore(tmp_path))
    assert [r.failure for r in summary.failed] == ["diverged", "out_of_memory"]
    assert [r.seed for r in summary.done] == [2]


# -- options ----------------------------------------------------------------------------------


def test_executor_settings_come_from_the_suite_file_and_options_win():
    from bench.cli.options import executor_settings

    options = {"executor": None, "jobs": 3, "slurm_partition": None, "slurm_sbatch": ("qos=low",)}
    settings = executor_settings({"kind": "slurm", "partition": "gpu", "jobs": 1,
                                  "sbatch": {"account": "abc"}}, options)
    assert (settings.kind, settings.partition, settings.jobs) == ("slurm", "gpu", 3)
    assert settings.sbatch == {"account": "abc", "qos": "low"}
    assert not options  # consumed


def test_slurm_without_sbatch_is_a_one_line_error(synthetic_root, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bench.cli import cli

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    result = CliRunner().invoke(cli, [*grid_args(synthetic_root, tmp_path, "knn", "0"),
                                      "--executor", "slurm"])
    assert result.exit_code == 2 and "sbatch" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "records").exists()
