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
import resource
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.config import REDUCED_PRESETS, config_hash, config_to_dict, value_origins
from bench.data import Split, load_split
from bench.data.validation import synthetic_validation
from bench.errors import BenchError
from bench.features import shared_backbone
from bench.methods import get_method
from bench.metrics import image_auroc
from bench.registry import Detector, Localizer, Monitored, RunContext, Trained
from bench.results import Record, ResultsStore

# The runner's public names include the suite side, which lives in bench.suites.
from bench.suites import (  # noqa: F401
    Cell,
    Suite,
    available_suites,
    load_suite,
    plan,
    resolve_for_dataset,
)

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=256)
def _split(dataset: str, category: str, root: Path, shots: int | None, seed: int,
           mtd_split: str) -> Split:
    # Preflight and the cell's run read the same split: list the folders once.
    return load_split(dataset, category, root, shots=shots, seed=seed, mtd_split=mtd_split)


def cell_split(cell: Cell) -> Split:
    return _split(cell.dataset, cell.category, cell.data_root, cell.shots, cell.seed,
                  cell.mtd_split)


def preflight(cells: list[Cell], check_test: bool = True) -> None:
    """Fail fast, before any training, on a bad layout, a corrupt image or missing weights
    (``check_test=False``: the test images are not opened, as model selection never uses them)."""
    checked: set[Path] = set()
    for cell in cells:
        split = cell_split(cell)
        for sample in split.train + (split.test if check_test else []):
            if sample.path in checked:
                continue
            checked.add(sample.path)
            try:
                with Image.open(sample.path) as img:
                    img.verify()
            except Exception as err:
                raise BenchError(
                    f"image {sample.path} cannot be read ({type(err).__name__}); replace or delete "
                    "the corrupt file."
                ) from None
    for backbone, stage in sorted({(c.backbone, getattr(c.config, "backbone_stage", None))
                                   for c in cells if c.backbone}, key=str):
        shared_backbone(backbone, stage)


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


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def _peak_memory_mb(device: str) -> float:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux: the process's peak resident memory so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def new_record(cell: Cell, status: str) -> Record:
    departures = cell.departures
    return Record(
        cell_id=cell.cell_id, status=status, method=cell.method, dataset=cell.dataset,
        category=cell.category, seed=cell.seed, shots=cell.shots, preset=cell.preset,
        variant=cell.variant, mtd_split=cell.mtd_split if cell.dataset == "mtd" else None,
        validation=cell.validation,
        backbone=cell.backbone, config=config_to_dict(cell.config),
        config_hash=config_hash(cell.config),
        reduced=cell.preset in REDUCED_PRESETS or bool(departures), departures=departures,
        device="", versions=dict(_versions()), git_commit=_git_commit(), started_at=_now(),
        info={"value_origins": value_origins(cell.config, cell.preset)},
    )


def run_cell(cell: Cell, *, device: str = "cpu", cache_dir: Path | None = None,
             progress: bool = False, store: ResultsStore | None = None,
             localize: bool = False, evaluate_test: bool = True) -> Record:
    """Train and evaluate one cell; raises on failure (``run_cells`` records failures).

    With a validation split (``cell.validation``), the detector trains on the training images
    not held out and is also scored on the validation images. ``evaluate_test=False`` (model
    selection) never scores the test set. With ``localize``, a detector that can also stores
    its test maps in ``store``.
    """
    record = new_record(cell, "ok")
    record.device = _device_name(device)
    split = cell_split(cell)
    labels = np.array([s.label for s in split.test])
    train, validation = split.train, None
    if cell.validation == "synthetic":
        held = synthetic_validation(split.train, cell.seed, cache_dir or Path(tempfile.mkdtemp()))
        train, validation = held.train, held.validation
        record.info["validation"] = held.meta

    def monitor(detector: Any, epoch: int) -> float:
        auroc = image_auroc(labels, detector.score(split.test))
        log.info("%s epoch %d: test AUROC %.4f", cell.cell_id, epoch, auroc)
        return auroc

    checkpoint = None if store is None else store.root / ".cache" / "checkpoints" / f"{cell.cell_id}.pt"
    context = RunContext(seed=cell.seed, device=device, cache_dir=cache_dir, progress=progress,
                         monitor=monitor if evaluate_test else None, checkpoint=checkpoint)
    method = get_method(cell.method)
    detector = method.cls(cell.config, context)
    if not isinstance(detector, Detector):
        raise TypeError(f"method {cell.method} does not implement fit and score")
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats(device)
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
    record.peak_memory_mb = _peak_memory_mb(device)
    record.info = {**record.info, **context.info,
                   **{k: v for k, v in split.meta.items() if k != "train_files"},
                   "test_evaluated": evaluate_test}
    if method.note:  # e.g. a substitute that follows another paper
        record.info["method_note"] = method.note
    if isinstance(detector, Trained):
        record.info["loss_history"] = detector.loss_history_
    if isinstance(detector, Monitored):
        record.eval_history = list(detector.eval_history_)
    if localize and evaluate_test and store is not None and isinstance(detector, Localizer):
        start = time.perf_counter()
        maps = detector.localize(split.test)
        record.info["maps_file"] = str(store.write_maps(cell.cell_id, maps, record.test_files))
        record.info["localize_s"] = time.perf_counter() - start
    record.finished_at = _now()
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # the record now holds the result
    return record


@dataclass
class RunSummary:
    done: list[Record] = field(default_factory=list)
    skipped: list[Cell] = field(default_factory=list)
    failed: list[Record] = field(default_factory=list)


def run_cells(cells: Iterable[Cell], store: ResultsStore, *, device: str = "cpu",
              progress: bool = False, localize: bool = False,
              cache_dir: Path | None = None, evaluate_test: bool = True) -> RunSummary:
    """Run every cell not yet recorded; a failed cell is recorded as failed and the run goes on.

    Decoded images and features are cached under ``cache_dir`` (default: the store's
    ``.cache/``), shared by every cell, method and seed that needs the same ones.
    """
    summary = RunSummary()
    cache_dir = Path(cache_dir) if cache_dir is not None else store.root / ".cache"
    cells = list(cells)
    clock = SuiteClock(len(cells))
    for cell in cells:
        if store.is_done(cell):
            summary.skipped.append(cell)
            log.info("skip %s (already recorded)", cell.cell_id)
            clock.skipped()
            continue
        log.info("run %s", cell.cell_id)
        clock.start()
        try:
            record = run_cell(cell, device=device, cache_dir=cache_dir, progress=progress,
                              store=store, localize=localize, evaluate_test=evaluate_test)
            summary.done.append(record)
        except KeyboardInterrupt:
            raise
        except Exception as err:
            record = new_record(cell, "failed")
            record.error = f"{type(err).__name__}: {err}"
            record.info["traceback"] = traceback.format_exc()
            record.finished_at = _now()
            summary.failed.append(record)
            log.error("cell %s failed: %s", cell.cell_id, record.error)
        store.write(record)
        log.info("%s", clock.finished())
    return summary


class SuiteClock:
    """The suite's progress line: cell i of n, elapsed, and an ETA from the cells run so far
    (skipped cells take no time, so they do not count towards the mean)."""

    def __init__(self, total: int):
        self.total, self.done, self.ran = total, 0, 0
        self.begin = self.cell_start = time.perf_counter()
        self.run_seconds = 0.0

    def skipped(self) -> None:
        self.done += 1

    def start(self) -> None:
        self.cell_start = time.perf_counter()

    def finished(self) -> str:
        self.done += 1
        self.ran += 1
        self.run_seconds += time.perf_counter() - self.cell_start
        left = self.total - self.done
        eta = _duration(self.run_seconds / self.ran * left) if left else "0s"
        return (f"suite: cell {self.done} of {self.total}, elapsed "
                f"{_duration(time.perf_counter() - self.begin)}, ETA {eta}")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
