"""Cells -> records. One cell: load the split, fit, score, compute AUROC, record.

Follow one cell from the command line to its row: ``bench.run.suites.plan`` expands a suite into
``Cell``s, ``bench.run.executors.execute_cells`` checks their data and weights before any
training (``bench.run.cells.check_cells``) and hands them to ``run_cells``, which skips cells
already recorded on the same data, claims the others and has ``run_cell`` do the work and
return the ``Record`` the store writes. ``RunOptions`` is how every caller says how to run.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import platform
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config import REDUCED_PRESETS, config_hash, config_to_dict
from bench.data.content import content_keys
from bench.data.fingerprint import matches_manifest
from bench.data.validation import ValidationSplit, synthetic_validation, validation_mix
from bench.deploy.models import DEFAULT_THRESHOLD_FPR, can_save, save_model
from bench.errors import BenchError, CorruptImageError, MissingWeightsError
from bench.methods import build_detector, get_method
from bench.metrics import image_auroc
from bench.origins import value_origins
from bench.progress import SuiteClock
from bench.registry import Localizer, Monitored, RunContext, ScoringExpected, Trained
from bench.run.cells import already_recorded, cell_split, recorded_on_same_data
from bench.run.pixel_metrics import evaluate_localization, has_masks
from bench.run.suites import Cell
from bench.run.usage import device_name, peak_memory_mb, reset_peak_memory
from bench.store.atomic import DiskFullError
from bench.store.leases import STALE_AFTER_S, describe
from bench.store.results import CacheLayout, Record, ResultsStore
from bench.training import discard_checkpoint

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RunOptions:
    """How to run cells, whoever runs them (the CLI, ``select``, workers, SLURM tasks): it
    travels with the cells to other processes, so it holds only picklable values."""

    device: str = "cpu"
    progress: bool = False
    localize: bool = False  # store test maps and score them against masks
    cache_dir: Path | None = None  # images and features [default: the store's .cache/]
    evaluate_test: bool = True  # False: model selection, the test set is never scored
    save_models: bool = False  # for predict / export
    threshold_fpr: float = DEFAULT_THRESHOLD_FPR  # the saved model's threshold
    stale_after: float = STALE_AFTER_S  # seconds of silence before another host's lease is stale
    # Cell id -> the fingerprint of the data check its split passed (bench.run.datacheck).
    data_checks: dict[str, str] = field(default_factory=dict)
    # With a validation split: further defect recipes (or mixes) to score beside the default
    # mix, each on its own copies of the held-out images (bench.py agreement).
    recipes: tuple[str, ...] = ()

    def but(self, **changes: Any) -> RunOptions:
        return replace(self, **changes)


def failure_kind(err: BaseException) -> str:
    """Which of ``results.FAILURES`` an exception is."""
    if isinstance(err, FloatingPointError):
        return "diverged"
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)) or (
            isinstance(err, RuntimeError) and "can't allocate memory" in str(err)):
        return "out_of_memory"
    if isinstance(err, CorruptImageError):
        return "corrupt_image"
    if isinstance(err, MissingWeightsError):
        return "missing_weights"
    if isinstance(err, DiskFullError):
        return "disk_full"
    return "error"


@functools.cache
def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("torch", "torchvision", "FrEIA", "numpy", "scikit-learn", "timm", "differnet-bench"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


@functools.cache
def _git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_record(cell: Cell, status: str) -> Record:
    departures = cell.departures
    return Record(
        cell_id=cell.cell_id, status=status, method=cell.method, dataset=cell.dataset,
        category=cell.category, seed=cell.seed, shots=cell.shots, preset=cell.preset,
        preset_applied=cell.preset_applied, variant=cell.variant,
        split_variant=cell.recorded_split_variant, validation=cell.validation,
        backbone=cell.backbone, config=config_to_dict(cell.config),
        config_hash=config_hash(cell.config),
        reduced=cell.preset in REDUCED_PRESETS or bool(departures), departures=departures,
        device="", versions=dict(_versions()), git_commit=_git_commit(), started_at=_now(),
        info={"value_origins": value_origins(cell.config, cell.preset),
              **({"suite": cell.suite} if cell.suite else {})},
    )


def run_cell(cell: Cell, options: RunOptions | None = None,
             store: ResultsStore | None = None) -> Record:
    """Train and evaluate one cell; raises on failure (``run_cells`` records failures).

    With a validation split (``cell.validation``), the detector trains on the training images
    not held out and is also scored on the validation images. ``evaluate_test=False`` (model
    selection) never scores the test set. With ``localize``, a detector that can also stores
    its test maps in ``store``.
    """
    options = options or RunOptions()
    device, cache_dir, evaluate_test = options.device, options.cache_dir, options.evaluate_test
    reset_peak_memory(device)
    record = new_record(cell, "ok")
    record.device = device_name(device)
    split = cell_split(cell)
    labels = np.array([s.label for s in split.test])
    train, validation, held = split.train, None, None
    if cell.validation:
        caches = CacheLayout(Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp()))
        held = synthetic_validation(split.train, cell.seed, caches.validation,
                                    mix=validation_mix(cell.validation), recipes=options.recipes)
        train, validation = held.train, held.validation
        record.info["validation"] = held.meta

    def monitor(detector: Any, epoch: int) -> float:
        auroc = image_auroc(labels, detector.score(split.test))
        log.info("%s epoch %d: test AUROC %.4f", cell.cell_id, epoch, auroc)
        return auroc

    checkpoint = None if store is None else store.checkpoint_path(cell.cell_id)
    context = RunContext(seed=cell.seed, device=device, cache_dir=cache_dir,
                         progress=options.progress,
                         monitor=monitor if evaluate_test else None, checkpoint=checkpoint)
    method = get_method(cell.method)
    detector = build_detector(cell.method, cell.config, context)
    if isinstance(detector, ScoringExpected):
        detector.expect([*([validation] if validation is not None else []),
                         *([split.test] if evaluate_test else [])])
    start = time.perf_counter()
    detector.fit(train)
    record.fit_s = time.perf_counter() - start
    if validation is not None:
        start = time.perf_counter()
        val_scores = np.asarray(detector.score(validation), dtype=np.float64)
        record.val_labels = [s.label for s in validation]
        record.val_scores = val_scores.tolist()
        record.val_auroc = image_auroc(np.array(record.val_labels), val_scores)
        if held.by_recipe:
            record.info.update(recipe_scores(detector, held, val_scores))
        record.info["validation_s"] = time.perf_counter() - start
    record.train_files = [s.path.name for s in train]
    record.n_train = len(train)
    if evaluate_test:
        start = time.perf_counter()
        scores = np.asarray(detector.score(split.test), dtype=np.float64)
        record.score_s = time.perf_counter() - start
        record.auroc = image_auroc(labels, scores)
        record.scores = scores.tolist()
        record.labels = labels.tolist()
        record.test_files = [s.name for s in split.test]
        record.n_test = len(split.test)
    record.info = {**record.info, **context.info,
                   **{k: v for k, v in split.meta.items() if k != "train_files"},
                   "test_evaluated": evaluate_test}
    if method.note:  # e.g. a substitute that follows another paper
        record.info["method_note"] = method.note
    if method.family:  # the report groups today's methods by it without importing them
        record.info["method_family"] = method.family
    record.info["method_label"] = method.label  # how the report names it, without importing it
    if method.source:  # a plugin: results and report never need to import it again
        record.info["method_source"] = {"path": method.source, "version": method.version}
    if options.save_models and store is not None:
        if can_save(detector):
            path = store.model_path(cell.cell_id)
            record.info["model_file"] = str(save_model(path, detector, record, split.test,
                                                       options.threshold_fpr))
        else:
            log.warning("%s: %s cannot be saved for predict (it does not implement Saveable, or "
                        "its score of an image depends on the images scored with it)",
                        cell.cell_id, cell.method)
    if isinstance(detector, Trained):
        record.info["loss_history"] = detector.loss_history_
    if isinstance(detector, Monitored):
        record.eval_history = list(detector.eval_history_)
    if (options.localize and evaluate_test and store is not None
            and isinstance(detector, Localizer)):
        start = time.perf_counter()
        maps = detector.localize(split.test)
        record.info["maps_file"] = str(store.write_maps(cell.cell_id, maps, record.test_files))
        record.info["localize_s"] = time.perf_counter() - start
        if has_masks(split.test):
            scores = evaluate_localization(maps, split.test, train)
            record.pixel_auroc = scores["method"]["pixel_auroc"]
            record.pro = scores["method"]["pro"]
            record.info["localization"] = scores  # with the two references
    record.peak_memory_mb, record.peak_gpu_memory_mb = peak_memory_mb(device)
    record.finished_at = _now()
    if checkpoint is not None:
        discard_checkpoint(checkpoint)  # the record now holds the result
    return record


def recipe_scores(detector: Any, held: ValidationSplit, val_scores: np.ndarray) -> dict:
    """Each further recipe's validation AUROC (its defective copies against the held-out
    normals already scored) and its scores.

    A detector that draws test transforms by an image's place in the list (the pooled
    pipeline's, with ``score_under``) scores a recipe's copy j under the transforms the default
    mix's defect j had, so a recipe's scores do not depend on which other recipes were asked
    for, and a mix assembled from single recipes afterwards scores as that mix would. Any other
    detector scores each image alone: the defective images of all recipes in one call, each
    once."""
    n = len(held.normals)
    normals = val_scores[:n]
    labels = np.r_[np.zeros(n), np.ones(n)]
    if hasattr(detector, "score_under"):
        params = detector.test_params(len(held.validation))[n:]
        scores = {spec: np.asarray(detector.score_under(samples, params), np.float64).tolist()
                  for spec, samples in held.by_recipe.items()}
    else:
        unique = list({s.path: s for group in held.by_recipe.values() for s in group}.values())
        scored = dict(zip((s.path for s in unique),
                          np.asarray(detector.score(unique), dtype=np.float64).tolist()))
        scores = {spec: [scored[s.path] for s in samples]
                  for spec, samples in held.by_recipe.items()}
    aurocs = {spec: image_auroc(labels, np.r_[normals, s]) for spec, s in scores.items()}
    return {"val_aurocs": aurocs, "val_recipe_scores": scores}


@dataclass
class RunSummary:
    done: list[Record] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)
    claimed: list[Cell] = field(default_factory=list)  # held by another live runner

    def merge(self, other: RunSummary) -> RunSummary:
        for name in ("done", "skipped", "failed", "claimed"):
            getattr(self, name).extend(getattr(other, name))
        return self


def run_cells(cells: Iterable[Cell], store: ResultsStore, options: RunOptions | None = None,
              *, problems: dict[str, BenchError] | None = None, job_id: str | None = None,
              on_record: Callable[[Record], None] | None = None) -> RunSummary:
    """Run every cell not yet recorded on the same data; a failed cell is recorded as failed
    (with its ``failure`` kind) and the run goes on.

    Before it starts a cell, the runner claims it (``ResultsStore.claim``), so runners sharing
    ``store`` never run one cell twice; a cell another live runner holds is left to it.
    ``problems`` (from ``check_cells``) are recorded as failures without running. Decoded
    images and features are cached under ``options.cache_dir`` (default: the store's
    ``.cache/``). ``on_record`` sees every record once it is written (an experiment tracker).
    """
    summary = RunSummary()
    caches = store.cache((options or RunOptions()).cache_dir)
    options = (options or RunOptions()).but(cache_dir=caches.root)
    keys = content_keys(caches.images)  # the image cache's own: each file hashed once
    problems = problems or {}
    cells = list(cells)
    clock = SuiteClock(len(cells))
    for cell in cells:
        error = None
        done, fingerprint = already_recorded(store, cell, keys)
        if done:
            _skip(summary, clock, cell, "already recorded")
            continue
        lease = store.claim(cell, stale_after=options.stale_after)
        if lease is None:
            summary.claimed.append(cell)
            _skip(None, clock, cell, f"claimed by {store.holder(cell)}")
            continue
        with lease:
            if recorded_on_same_data(store, cell, fingerprint):  # finished while we claimed
                _skip(summary, clock, cell, "already recorded")
                continue
            _set_aside_old_record(store, cell)
            log.info("run %s", cell.cell_id)
            clock.start()
            record, error = _run_or_fail(cell, store, problems.get(cell.cell_id), options)
            record.data_fingerprint = fingerprint
            record.data_verified = matches_manifest(cell_split(cell), cell.data_root)
            record.job_id = job_id
            record.data_check = options.data_checks.get(cell.cell_id)
            record.info["runner"] = describe(lease.holder)
            (summary.done if record.status == "ok" else summary.failed).append(record)
            store.write(record)  # a full disk here stops the run too (DiskFullError)
            keys.save()
            if on_record is not None:
                on_record(record)
        if isinstance(error, DiskFullError):
            # The next cells would fail the same way: stop, with the folder named; the failed
            # record makes the same command redo this cell once space is freed.
            raise error
        log.info("%s", clock.finished())
    return summary


def _set_aside_old_record(store: ResultsStore, cell: Cell) -> None:
    """Move a record that will not be kept out of the table, never deleted: an unreadable one
    (``superseded/unreadable/``), a failed attempt now retried (``failed/``), one made on other
    data (``other-data/``)."""
    why = store.problem(cell)
    if why is not None:
        log.warning("%s: its record is unreadable (%s); moved to %s, running the cell again",
                    cell.cell_id, why, store.set_aside(cell, "unreadable"))
        return
    old = store.read(cell)
    if old is None:
        return
    if old.get("status") != "ok":
        log.info("%s: retrying; the failed record moved to %s", cell.cell_id,
                 store.set_aside(cell, "failed"))
    else:
        log.warning("%s: its record was made on other data; moved to %s", cell.cell_id,
                    store.set_aside(cell, "other-data"))


def _skip(summary: RunSummary | None, clock: SuiteClock, cell: Cell, why: str) -> None:
    if summary is not None:
        summary.skipped.append(cell)
    log.info("skip %s (%s)", cell.cell_id, why)
    clock.skipped()


def _run_or_fail(cell: Cell, store: ResultsStore, problem: BenchError | None,
                 options: RunOptions) -> tuple[Record, Exception | None]:
    """The cell's record (failed, with its ``failure`` kind, if it raised) and the error."""
    try:
        if problem is not None:
            raise problem
        return run_cell(cell, options, store), None
    except Exception as err:
        record = new_record(cell, "failed")
        record.error = f"{type(err).__name__}: {err}"
        record.failure = failure_kind(err)
        if record.failure == "out_of_memory" and torch.cuda.is_available():
            torch.cuda.empty_cache()  # so the next cell starts with the memory free
        if not isinstance(err, BenchError):
            record.info["traceback"] = traceback.format_exc()
        record.peak_memory_mb, record.peak_gpu_memory_mb = peak_memory_mb(options.device)
        record.finished_at = _now()
        if not isinstance(err, DiskFullError):  # that one stops the run with its own line
            log.error("cell %s failed (%s): %s", cell.cell_id, record.failure, record.error)
        return record, err
