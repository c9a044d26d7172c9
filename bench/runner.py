"""Cells -> records. One cell: load the split, fit, score, compute AUROC, record.

Follow one cell from the command line to its row: ``bench.suites.plan`` expands a suite into
``Cell``s, ``preflight`` checks data and weights before any training, ``run_cells`` skips cells
already recorded, and ``run_cell`` does the work and returns the ``Record`` the store writes.
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
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.atomic import DiskFullError
from bench.config import REDUCED_PRESETS, config_hash, config_to_dict
from bench.data import Split, load_split
from bench.data.base import corrupt_image
from bench.data.content import content_keys
from bench.data.fingerprint import matches_manifest, same_data, split_fingerprint
from bench.data.validation import synthetic_validation
from bench.errors import BenchError, CorruptImageError, MissingWeightsError
from bench.features import shared_backbone
from bench.leases import STALE_AFTER_S, describe, is_garbage
from bench.leases import read as read_lease
from bench.localization import evaluate_localization, has_masks
from bench.methods import build_detector, get_method
from bench.metrics import image_auroc
from bench.models import DEFAULT_THRESHOLD_FPR, can_save, save_model
from bench.origins import value_origins
from bench.progress import SuiteClock
from bench.registry import Localizer, Monitored, RunContext, Trained
from bench.results import CacheLayout, Record, ResultsStore
from bench.suites import Cell
from bench.training import discard_checkpoint
from bench.usage import device_name, peak_memory_mb, reset_peak_memory

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=256)
def _split(dataset: str, category: str, root: Path, shots: int | None, seed: int,
           split_variant: str | None) -> Split:
    # Preflight and the cell's run read the same split: list the folders once.
    return load_split(dataset, category, root, shots=shots, seed=seed,
                      split_variant=split_variant)


def cell_split(cell: Cell) -> Split:
    return _split(cell.dataset, cell.category, cell.data_root, cell.shots, cell.seed,
                  cell.split_variant)


def check_cells(cells: list[Cell], check_test: bool = True) -> dict[str, BenchError]:
    """What would make a cell fail before any training, by cell id: a corrupt image (named) or
    a backbone whose weights cannot be loaded. ``check_test=False``: the test images are not
    opened (model selection never uses them)."""
    problems: dict[str, BenchError] = {}
    broken: dict[Path, BenchError] = {}
    checked: set[Path] = set()
    for cell in cells:
        split = cell_split(cell)
        for sample in split.train + (split.test if check_test else []):
            if sample.path not in checked:
                checked.add(sample.path)
                problem = corrupt_image(sample.path)
                if problem is not None:
                    broken[sample.path] = problem
            if sample.path in broken:
                problems.setdefault(cell.cell_id, broken[sample.path])
    for backbone, stage in sorted({(c.backbone, getattr(c.config, "backbone_stage", None))
                                   for c in cells if c.backbone}, key=str):
        try:
            shared_backbone(backbone, stage)
        except MissingWeightsError as err:
            for cell in cells:
                if (cell.backbone, getattr(cell.config, "backbone_stage", None)) == (backbone, stage):
                    problems.setdefault(cell.cell_id, err)
    return problems


def preflight(cells: list[Cell], check_test: bool = True) -> None:
    """Fail fast, before any training, on the first problem ``check_cells`` finds."""
    for problem in check_cells(cells, check_test).values():
        raise problem


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


def run_cell(cell: Cell, *, device: str = "cpu", cache_dir: Path | None = None,
             progress: bool = False, store: ResultsStore | None = None,
             localize: bool = False, evaluate_test: bool = True, save_models: bool = False,
             threshold_fpr: float = DEFAULT_THRESHOLD_FPR) -> Record:
    """Train and evaluate one cell; raises on failure (``run_cells`` records failures).

    With a validation split (``cell.validation``), the detector trains on the training images
    not held out and is also scored on the validation images. ``evaluate_test=False`` (model
    selection) never scores the test set. With ``localize``, a detector that can also stores
    its test maps in ``store``.
    """
    reset_peak_memory(device)
    record = new_record(cell, "ok")
    record.device = device_name(device)
    split = cell_split(cell)
    labels = np.array([s.label for s in split.test])
    train, validation = split.train, None
    if cell.validation == "synthetic":
        caches = CacheLayout(Path(cache_dir) if cache_dir else Path(tempfile.mkdtemp()))
        held = synthetic_validation(split.train, cell.seed, caches.validation)
        train, validation = held.train, held.validation
        record.info["validation"] = held.meta

    def monitor(detector: Any, epoch: int) -> float:
        auroc = image_auroc(labels, detector.score(split.test))
        log.info("%s epoch %d: test AUROC %.4f", cell.cell_id, epoch, auroc)
        return auroc

    checkpoint = None if store is None else store.checkpoint_path(cell.cell_id)
    context = RunContext(seed=cell.seed, device=device, cache_dir=cache_dir, progress=progress,
                         monitor=monitor if evaluate_test else None, checkpoint=checkpoint)
    method = get_method(cell.method)
    detector = build_detector(cell.method, cell.config, context)
    start = time.perf_counter()
    detector.fit(train)
    record.fit_s = time.perf_counter() - start
    if validation is not None:
        start = time.perf_counter()
        val_scores = np.asarray(detector.score(validation), dtype=np.float64)
        record.val_labels = [s.label for s in validation]
        record.val_scores = val_scores.tolist()
        record.val_auroc = image_auroc(np.array(record.val_labels), val_scores)
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
    if method.source:  # a plugin: results and report never need to import it again
        record.info["method_source"] = {"path": method.source, "version": method.version}
    if save_models and store is not None:
        if can_save(detector):
            path = store.model_path(cell.cell_id)
            record.info["model_file"] = str(save_model(path, detector, record, split.test,
                                                       threshold_fpr))
        else:
            log.warning("%s: %s cannot be saved for predict (it does not implement Saveable, or "
                        "its score of an image depends on the images scored with it)",
                        cell.cell_id, cell.method)
    if isinstance(detector, Trained):
        record.info["loss_history"] = detector.loss_history_
    if isinstance(detector, Monitored):
        record.eval_history = list(detector.eval_history_)
    if localize and evaluate_test and store is not None and isinstance(detector, Localizer):
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


def run_cells(cells: Iterable[Cell], store: ResultsStore, *, device: str = "cpu",
              progress: bool = False, localize: bool = False,
              cache_dir: Path | None = None, evaluate_test: bool = True,
              problems: dict[str, BenchError] | None = None, job_id: str | None = None,
              stale_after: float = STALE_AFTER_S, save_models: bool = False,
              threshold_fpr: float = DEFAULT_THRESHOLD_FPR,
              on_record: Callable[[Record], None] | None = None) -> RunSummary:
    """Run every cell not yet recorded on the same data; a failed cell is recorded as failed
    (with its ``failure`` kind) and the run goes on.

    Before it starts a cell, the runner claims it (``ResultsStore.claim``), so runners sharing
    ``store`` never run one cell twice; a cell another live runner holds is left to it.
    ``problems`` (from ``check_cells``) are recorded as failures without running. Decoded
    images and features are cached under ``cache_dir`` (default: the store's ``.cache/``).
    ``on_record`` sees every record once it is written (an experiment tracker).
    """
    summary = RunSummary()
    caches = store.cache(cache_dir)
    cache_dir = caches.root
    keys = content_keys(caches.images)  # the image cache's own: each file hashed once
    problems = problems or {}
    cells = list(cells)
    clock = SuiteClock(len(cells))
    for cell in cells:
        error = None
        fingerprint = split_fingerprint(cell_split(cell), cell.data_root, keys)
        keys.save()
        if recorded_on_same_data(store, cell, fingerprint):
            _skip(summary, clock, cell, "already recorded")
            continue
        holder, _ = read_lease(store.lease_path(cell))
        if is_garbage(holder):
            log.warning("%s: its lease file is unreadable; moved to %s", cell.cell_id,
                        store.set_aside_lease(cell))
        lease = store.claim(cell, stale_after=stale_after)
        if lease is None:
            holder, _ = read_lease(store.lease_path(cell))
            summary.claimed.append(cell)
            _skip(None, clock, cell, f"claimed by {describe(holder or {})}")
            continue
        with lease:
            if recorded_on_same_data(store, cell, fingerprint):  # finished while we claimed
                _skip(summary, clock, cell, "already recorded")
                continue
            _set_aside_old_record(store, cell)
            log.info("run %s", cell.cell_id)
            clock.start()
            record, error = _run_or_fail(cell, store, problems.get(cell.cell_id), device=device,
                                         cache_dir=cache_dir, progress=progress,
                                         localize=localize, evaluate_test=evaluate_test,
                                         save_models=save_models, threshold_fpr=threshold_fpr)
            record.data_fingerprint = fingerprint
            record.data_verified = matches_manifest(cell_split(cell), cell.data_root)
            record.job_id = job_id
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
                 **options: Any) -> tuple[Record, Exception | None]:
    """The cell's record (failed, with its ``failure`` kind, if it raised) and the error."""
    try:
        if problem is not None:
            raise problem
        return run_cell(cell, store=store, **options), None
    except Exception as err:
        record = new_record(cell, "failed")
        record.error = f"{type(err).__name__}: {err}"
        record.failure = failure_kind(err)
        if record.failure == "out_of_memory" and torch.cuda.is_available():
            torch.cuda.empty_cache()  # so the next cell starts with the memory free
        if not isinstance(err, BenchError):
            record.info["traceback"] = traceback.format_exc()
        record.peak_memory_mb, record.peak_gpu_memory_mb = peak_memory_mb(options["device"])
        record.finished_at = _now()
        if not isinstance(err, DiskFullError):  # that one stops the run with its own line
            log.error("cell %s failed (%s): %s", cell.cell_id, record.failure, record.error)
        return record, err


def recorded_on_same_data(store: ResultsStore, cell: Cell, fingerprint: str) -> bool:
    """Whether the cell has an ``ok`` record made on these very files (``fingerprint``: the
    split's content fingerprint). A record from before content fingerprints counts when its
    paths and sizes match; one from before any fingerprint, when its file names match."""
    record = store.read(cell)
    if record is None or record.get("status") != "ok":
        return False
    split = cell_split(cell)
    if record.get("data_fingerprint") is not None:
        return same_data(record["data_fingerprint"], split, cell.data_root, current=fingerprint)
    return (record.get("test_files") == [s.name for s in split.test]
            and record.get("train_files") == [s.path.name for s in split.train])
