"""Where cells run: in this process, in ``--jobs N`` local worker processes, or as a SLURM job
array through submitit (``slurm``; ``submitit-local`` runs the same job code on this machine).

Every way ends in ``runner.run_cells`` on the same results store, with the same ``RunOptions``, so the store's leases keep
any two runners (workers, array tasks, people) from running one cell twice, and a cell that was
killed is picked up again by the next runner. A SLURM task that is preempted or about to time
out gets submitit's signal, requeues itself and resumes its cell from the training checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.data.content import content_keys
from bench.errors import BenchError, MissingWeightsError
from bench.features.engines import resolve_engine
from bench.progress import progress as progress_bar
from bench.run.cells import already_recorded, cell_split, check_cells
from bench.run.runner import RunOptions, RunSummary, new_record, run_cells
from bench.run.suites import Cell
from bench.store.atomic import sweep_temporaries
from bench.store.leases import STALE_AFTER_S
from bench.store.results import Record, ResultsStore
from bench.store.space import warn_if_short_of_space
from bench.training import check_train_precision

log = logging.getLogger(__name__)
EXECUTORS = ("local", "slurm", "submitit-local")


@dataclass
class ExecutorOptions:
    """How to run the cells; a suite file's ``[executor]`` table sets defaults, options win."""

    kind: str = "local"  # one of EXECUTORS
    jobs: int = 1  # local: worker processes
    folder: Path | None = None  # submitit's scripts and logs [default: <results-dir>/slurm]
    partition: str | None = None
    time_min: int = 240  # per cell; a task near its limit requeues and resumes
    gpus: int = 0  # per task
    cpus: int = 4  # per task
    mem_gb: int | None = None
    array_parallelism: int = 64  # array tasks running at once
    sbatch: dict[str, str] = field(default_factory=dict)  # extra #SBATCH --key=value lines
    lease_timeout: float = STALE_AFTER_S  # seconds of silence before another host's lease is stale
    poll_s: float = 2.0  # how often the submitter looks at its jobs

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise BenchError(f"unknown executor {self.kind!r}; choose one of {', '.join(EXECUTORS)}.")
        if self.jobs < 1:
            raise BenchError(f"--jobs must be at least 1, got {self.jobs}.")


def execute_cells(cells: list[Cell], store: ResultsStore, options: ExecutorOptions | None = None,
                  run: RunOptions | None = None,
                  on_record: Callable[[Record], None] | None = None) -> RunSummary:
    """Check the cells (a corrupt image or missing weights fails only the cells that need
    them), then run the others with the chosen executor. ``on_record`` sees each record as it
    is written in this process (the other executors' records are there for the caller once
    they are collected)."""
    options = options or ExecutorOptions()
    run = (run or RunOptions()).but(stale_after=options.lease_timeout)
    check_engines(cells, run.device)
    folder = Path(options.folder or store.slurm_dir)
    # A cluster that is not there is a mistake to report before any work.
    executor = None if options.kind == "local" else make_submitit_executor(options, folder)
    problems = check_cells(cells, run.evaluate_test)
    if cells and all(isinstance(problems.get(c.cell_id), MissingWeightsError) for c in cells):
        # Nothing could run: a mistake to fix before anything starts (one line, exit 2), not a
        # grid of failed records. With other cells to run, those cells fail and the rest go on.
        raise problems[cells[0].cell_id]
    # Temporary files of killed runs go; a store short of space is said before any work.
    cache_root = store.cache(run.cache_dir).root
    for root in {store.root, cache_root}:
        sweep_temporaries(root)
    warn_if_short_of_space([(c, cell_split(c)) for c in cells], store, cache_root,
                           localize=run.localize, save_models=run.save_models)
    if executor is not None:
        return _run_submitit(cells, store, executor, folder, options, problems, run)
    if options.jobs == 1:
        return run_cells(cells, store, run, problems=problems, on_record=on_record)
    return _run_workers(cells, store, options.jobs, problems, run)


def check_engines(cells: list[Cell], device: str) -> None:
    """Every extractor engine and precision, and every training precision, the cells ask for
    can run here (installed; bf16 only with native support): a mistake to fix before any cell,
    in one line."""
    asked = {(c.config.extractor_engine, c.config.extractor_precision) for c in cells
             if hasattr(c.config, "extractor_precision")}
    for engine, precision in sorted(asked):
        resolve_engine(engine, device, precision)
    for precision in sorted({c.config.train_precision for c in cells
                             if hasattr(c.config, "train_precision")}):
        check_train_precision(precision, device)


# -- local worker processes -------------------------------------------------------------------


def _run_workers(cells: list[Cell], store: ResultsStore, jobs: int,
                 problems: dict, run: RunOptions) -> RunSummary:
    """``jobs`` processes each walk the whole list; the leases share the cells out."""
    context = get_context("spawn")  # a clean process: no forked torch threads or CUDA state
    level = logging.getLogger().getEffectiveLevel()
    summary = RunSummary()
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(_worker, index, jobs, cells, store.root, problems, run, level)
                   for index in range(jobs)]
        for future in futures:
            summary.merge(future.result())
    # Every worker walks every cell: a cell run by one is skipped or claimed in the others.
    ran = {r.cell_id for r in summary.done + summary.failed}
    skipped = {c.cell_id: c for c in summary.skipped if c.cell_id not in ran}
    claimed = {c.cell_id: c for c in summary.claimed if c.cell_id not in ran}  # by outsiders
    summary.skipped, summary.claimed = list(skipped.values()), list(claimed.values())
    return summary


def _worker(index: int, jobs: int, cells: list[Cell], root: Path, problems: dict,
            run: RunOptions, level: int) -> RunSummary:
    import torch

    logging.basicConfig(level=level, format=f"%(levelname)s worker {index}: %(message)s")
    # Each worker its own share of the CPU threads, or its own GPU when several are visible.
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // jobs))
    if run.device == "cuda" and torch.cuda.device_count() > 1:
        run = run.but(device=f"cuda:{index % torch.cuda.device_count()}")
    return run_cells(cells, ResultsStore(root), run, problems=problems)


# -- submitit (SLURM, or its local executor) --------------------------------------------------


class CellJob:
    """One array task: run one cell on the store. Has submitit's ``checkpoint`` hook, so a
    preempted or timed-out task is requeued; the requeued task resumes from the training
    checkpoint the runner keeps beside the store."""

    def __init__(self, root: Path, problems: dict, run: RunOptions, level: int):
        self.root, self.problems, self.run, self.level = root, problems, run, level

    def __call__(self, cell: Cell) -> dict[str, Any]:
        import submitit

        logging.basicConfig(level=self.level, format="%(levelname)s %(name)s: %(message)s")
        job_id = submitit.JobEnvironment().job_id
        summary = run_cells([cell], ResultsStore(self.root), self.run, problems=self.problems,
                            job_id=job_id)
        if summary.failed:
            return {"cell_id": cell.cell_id, "status": "failed", "error": summary.failed[0].error}
        return {"cell_id": cell.cell_id, "status": "ok" if summary.done else "skipped"}

    def checkpoint(self, cell: Cell) -> Any:
        import submitit

        log.warning("%s: preempted or near its time limit; requeueing", cell.cell_id)
        return submitit.helpers.DelayedSubmission(self, cell)


def make_submitit_executor(options: ExecutorOptions, folder: Path) -> Any:
    try:
        import submitit
    except ImportError:
        raise BenchError("--executor slurm needs submitit; run pip install submitit.") from None
    if options.kind == "slurm" and shutil.which("sbatch") is None:
        raise BenchError("--executor slurm needs SLURM's sbatch, which is not on this machine's "
                         "PATH; run on the cluster's login node, or try --executor submitit-local.")
    executor = submitit.AutoExecutor(folder=folder,
                                     cluster="slurm" if options.kind == "slurm" else "local")
    params: dict[str, Any] = {"timeout_min": options.time_min, "name": "differnet-bench",
                              "gpus_per_node": options.gpus, "cpus_per_task": options.cpus}
    if options.mem_gb:
        params["mem_gb"] = options.mem_gb
    if options.kind == "slurm":
        params.update(slurm_array_parallelism=options.array_parallelism,
                      slurm_additional_parameters=dict(options.sbatch))
        if options.partition:
            params["slurm_partition"] = options.partition
    executor.update_parameters(**params)
    return executor


def _run_submitit(cells: list[Cell], store: ResultsStore, executor: Any, folder: Path,
                  options: ExecutorOptions, problems: dict, run: RunOptions) -> RunSummary:
    """Submit the cells not yet recorded as one job array, follow them to the end, and read
    back what they recorded."""
    summary = RunSummary()
    pending = []
    keys = content_keys(store.cache(run.cache_dir).images)
    for cell in cells:
        if already_recorded(store, cell, keys)[0]:
            summary.skipped.append(cell)
            log.info("skip %s (already recorded)", cell.cell_id)
        else:
            pending.append(cell)
    # A cell that cannot run (corrupt image, missing weights) is recorded here, not submitted.
    broken = [c for c in pending if c.cell_id in problems]
    summary.merge(run_cells(broken, store, run, problems=problems))
    pending = [c for c in pending if c.cell_id not in problems]
    if not pending:
        return summary
    job = CellJob(store.root, problems, run.but(progress=False),  # task logs are files
                  logging.getLogger().getEffectiveLevel())
    jobs = executor.map_array(job, pending)
    log.info("submitted %d cells as %s job %s; logs in %s", len(jobs), options.kind,
             jobs[0].job_id.split("_")[0], folder)
    _follow(jobs, options.poll_s)
    for cell, task in zip(pending, jobs):
        try:
            task.result()
        except Exception as err:  # the task itself died (killed, lost node): record why
            record = new_record(cell, "failed")
            record.error = f"job {task.job_id} failed: {str(err).splitlines()[0][:300]}"
            record.failure, record.job_id = "error", task.job_id
            if not store.is_done(cell):
                store.write(record)
        record = store.record(cell)
        if record is not None:
            (summary.done if record.status == "ok" else summary.failed).append(record)
    return summary


def _follow(jobs: list[Any], poll_s: float) -> None:
    """A progress bar of finished cells until every task has ended."""
    finished: set[int] = set()
    with progress_bar(len(jobs), "cells") as bar:
        while len(finished) < len(jobs):
            for i, job in enumerate(jobs):
                if i not in finished and job.done():
                    finished.add(i)
                    bar.update(1)
            if len(finished) < len(jobs):
                time.sleep(poll_s)
