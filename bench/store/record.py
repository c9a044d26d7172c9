"""A record: one cell's result, everything needed to trust and redo a number (the cell, the
fully resolved config and preset, the AUROC, the per-image scores and labels, timings, peak
memory, device, package versions and the git commit), and the check that a file holds one.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.metrics import image_auroc

# The one definition of a cell's identity. A paper-table cell (what a table row x column
# shows) is run under one or more configurations, each with one or more seeds. ``Cell.cell_id``
# spells these fields, a ``Record`` stores them, and the tidy table has them as columns.
TABLE_CELL = ("dataset", "category", "method", "shots", "variant")
CONFIGURATION = ("preset", "backbone", "split_variant", "validation", "config_hash")
CELL_FIELDS = (*TABLE_CELL, *CONFIGURATION, "seed")
# What the seed summaries average over seeds within.
SEED_GROUP = [*TABLE_CELL, *CONFIGURATION]
TABLE_COLUMNS = [
    *CELL_FIELDS, "auroc", "pixel_auroc", "pro", "val_auroc", "status", "failure", "reduced",
    "data_verified", "fit_s", "score_s", "peak_memory_mb", "n_train", "n_test", "max_eval_auroc",
    "cell_id",
]


STATUSES = ("ok", "failed")
# An ok record's AUROC, recomputed from its very scores: equal but for float rounding.
AUROC_TOLERANCE = 1e-9

# The reasons a cell fails without stopping the grid; each failed record names one.
FAILURES = {
    "diverged": "NaN or Inf in training",
    "out_of_memory": "out of memory",
    "corrupt_image": "an image or mask cannot be read",
    "missing_weights": "a backbone's pretrained weights cannot be loaded",
    "disk_full": "a folder could not take a file (no space, a quota, read-only); the run stops",
    "error": "any other error (its traceback is in the record's info)",
}


@dataclass
class Record:
    cell_id: str
    status: str  # "ok" or "failed"
    method: str
    dataset: str
    category: str
    seed: int
    shots: int | None  # None: the whole training set
    preset: str
    backbone: str | None
    variant: str | None  # a suite's named config variant (e.g. Table 3's A-G), else None
    config: dict[str, Any]
    config_hash: str
    reduced: bool  # True when the config departs from the paper's (a reduced or substitute run)
    departures: dict[str, Any] = field(default_factory=dict)  # config fields unlike the paper's
    # The dataset's split variant (MTD: "authors" or "random"), for datasets with several;
    # None elsewhere. Records written before it was general call it mtd_split (``parse_record``).
    split_variant: str | None = None
    # The preset the method ran for ``preset``: the same, or where the method has no such
    # preset, the one config.PRESET_FALLBACK leads to (None in records older than the rule).
    preset_applied: str | None = None
    # A validation split made from training normals ("synthetic"), and the AUROC on it: a
    # number to choose settings by without looking at the test set.
    validation: str | None = None
    val_auroc: float | None = None
    val_scores: list[float] = field(default_factory=list)
    val_labels: list[int] = field(default_factory=list)
    auroc: float | None = None  # image AUROC of the model after the last epoch
    # With --localize on data with masks: pixel AUROC and PRO (up to 30 % FPR) of the maps
    # (bench.run.pixel_metrics; the two trivial references are in info["localization"]).
    pixel_auroc: float | None = None
    pro: float | None = None
    # (epoch, AUROC) pairs when evaluation during training was switched on; their maximum is
    # test-set selection, as the original code printed, and is reported only as such.
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    test_files: list[str] = field(default_factory=list)
    train_files: list[str] = field(default_factory=list)
    n_train: int = 0
    n_test: int = 0
    fit_s: float | None = None
    score_s: float | None = None
    # The cell's peak resident set size (MB), and on CUDA the peak GPU memory allocated.
    peak_memory_mb: float | None = None
    peak_gpu_memory_mb: float | None = None
    device: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    started_at: str = ""
    finished_at: str = ""
    error: str | None = None
    # Why a failed cell failed, one of FAILURES ("error" for anything unforeseen).
    failure: str | None = None
    # Which files the cell ran on (bench.data.fingerprint): a fingerprint of the split's paths
    # and contents (paths and sizes in older records), and whether they all matched the
    # dataset's verified-download manifest (None: the data root has no manifest, the data was
    # put there by hand).
    data_fingerprint: str | None = None
    data_verified: bool | None = None
    job_id: str | None = None  # the SLURM job (``<job>_<array task>``) that ran the cell
    # The fingerprint of the data check its split passed before the run (``bench.py check``;
    # stored under ``ResultsStore.checks_dir``), None when the run did not check its data.
    data_check: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def max_eval_auroc(self) -> float | None:
        return max((a for _, a in self.eval_history), default=None)


class UnreadableRecord(Exception):
    """A record file that cannot be read or parsed, or does not hold a record."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def load_record_data(path: Path) -> dict[str, Any]:
    """A record file's content, checked against ``Record``'s fields (every required field
    there, each of its type) and, for an ``ok`` record, whole (``whole_problem``); raises
    ``UnreadableRecord`` saying why it is not a record, and FileNotFoundError when there is no
    file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as err:
        raise UnreadableRecord(path, f"cannot be read: {err}") from None
    except ValueError as err:
        raise UnreadableRecord(path, f"not JSON ({err})") from None
    why = record_problem(data)
    if why:
        raise UnreadableRecord(path, why)
    return data


def record_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a record (a missing field, a value of a wrong type, an
    ``ok`` record that is not whole: ``whole_problem``), or None."""
    if not isinstance(data, dict):
        return f"holds a {type(data).__name__}, not a record"
    for f in dataclasses.fields(Record):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                return f"the field {f.name!r} is missing"
            continue
        if not _conforms(data[f.name], _HINTS[f.name]):
            return f"the field {f.name!r} holds {_kind(data[f.name], _HINTS[f.name])}, not {_HINTS[f.name]}"
    return info_problem(data.get("info", {})) or whole_problem(data)


# What the report and the tracker read from a record's ``info``, by key: a record whose info
# holds one of these in another shape is unreadable like one with a field of a wrong type.
INFO_HINTS: dict[str, Any] = {
    "method_family": str, "method_note": str, "suite": str, "root": str, "test_evaluated": bool,
    "method_source": dict[str, Any], "loss_history": list[float | dict[str, float]],
    "value_origins": list[dict[str, Any]], "localization": dict[str, Any],
}
# Keys each entry must hold: every value origin, and the localization scores of the maps and
# of the two references (bench.run.pixel_metrics).
INFO_KEYS = {"value_origins": ("field", "value", "decided_on"),
             "localization": ("method", "constant", "mean_image")}
PIXEL_METRICS = ("pixel_auroc", "pro")


def info_problem(info: dict[str, Any]) -> str | None:
    """What keeps a record's ``info`` from being read as the report and the tracker read it."""
    for key, hint in INFO_HINTS.items():
        if key in info and not _conforms(info[key], hint):
            return f"its info[{key!r}] holds {_kind(info[key], hint)}, not {hint}"
    for origin in info.get("value_origins", []):
        if not all(k in origin for k in INFO_KEYS["value_origins"]):
            return f"a value origin in its info lacks one of {', '.join(INFO_KEYS['value_origins'])}"
    scores = info.get("localization", {})
    for name in INFO_KEYS["localization"] if scores else ():
        if not (isinstance(scores.get(name), dict) and all(
                _conforms(scores[name].get(m), float) for m in PIXEL_METRICS)):
            return f"its info['localization'] lacks the {name!r} scores ({', '.join(PIXEL_METRICS)})"
    return None


def whole_problem(data: dict[str, Any]) -> str | None:
    """Why a well-typed record is not a whole result, or None. A record is ``ok`` only when its
    per-image scores, labels and test files are one list each of ``n_test`` entries and its
    AUROC is the one those scores give (its validation scores alike; a model-selection record,
    ``info["test_evaluated"]`` false, holds validation scores instead of test scores)."""
    status = data["status"]
    if status not in STATUSES:
        return f"its status is {status!r}, neither 'ok' nor 'failed'"
    if data.get("failure") is not None and data["failure"] not in FAILURES:
        return f"its failure {data['failure']!r} is none of {', '.join(FAILURES)}"
    if status != "ok":
        return None
    val = _scored_problem("validation", data.get("val_scores", []), data.get("val_labels", []),
                          data.get("val_auroc"), None)
    if val:
        return val
    if data.get("validation") is not None and data.get("val_auroc") is None:
        return "it names a validation split but holds no validation AUROC"
    if data.get("info", {}).get("test_evaluated") is False:  # model selection: no test set
        return None
    return _scored_problem("test", data.get("scores", []), data.get("labels", []),
                           data.get("auroc"), (data.get("test_files", []), data.get("n_test", 0)))


def _scored_problem(what: str, scores: list, labels: list, auroc: float | None,
                    files: tuple[list, int] | None) -> str | None:
    """Whether ``scores`` and ``labels`` (and for the test set its ``files`` and their count)
    line up and give ``auroc``."""
    if auroc is None and not scores and not labels and files is None:
        return None  # no validation split
    counts = [len(scores), len(labels)] + ([len(files[0]), files[1]] if files else [])
    if len(set(counts)) != 1 or not counts[0]:
        named = f"{len(scores)} {what} scores, {len(labels)} labels" + (
            f" and {len(files[0])} test files for n_test {files[1]}" if files else "")
        return f"it is marked ok but holds {named}: not a whole result"
    if auroc is None:
        return f"it is marked ok but holds no {what} AUROC"
    if not set(labels) <= {0, 1}:
        return f"its {what} labels are not all 0 or 1"
    try:
        again = image_auroc(np.array(labels), np.array(scores, dtype=np.float64))
    except (ValueError, FloatingPointError) as err:
        return f"its {what} AUROC cannot be recomputed from its scores ({err})"
    if not math.isclose(again, auroc, rel_tol=0, abs_tol=AUROC_TOLERANCE):
        return f"its stored {what} AUROC {auroc:.6f} is not the {again:.6f} its scores give"
    return None


def _kind(value: Any, hint: Any) -> str:
    """What a value that does not conform is, in words (a list of the wrong elements too)."""
    containers = {typing.get_origin(h) for h in (hint, *typing.get_args(hint))}
    inner = type(value) in containers or (tuple in containers and isinstance(value, list))
    return type(value).__name__ + (" with an element of another type" if inner else "")


def _conforms(value: Any, hint: Any) -> bool:
    """A check of a JSON value against a type hint, down to the elements of lists, tuples and
    dicts (a list of scores holds numbers; an (epoch, AUROC) pair is two numbers)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in args)
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is list:
        return isinstance(value, list) and (not args or all(_conforms(v, args[0]) for v in value))
    if origin is tuple:
        return (isinstance(value, list) and len(value) == len(args)
                and all(_conforms(v, h) for v, h in zip(value, args)))
    if origin is dict:
        return isinstance(value, dict) and (not args or all(
            isinstance(k, str) and _conforms(v, args[1]) for k, v in value.items()))
    if hint is dict:
        return isinstance(value, dict)
    return isinstance(value, hint) if isinstance(hint, type) else True


def parse_record(data: dict[str, Any]) -> Record:
    data["eval_history"] = [tuple(x) for x in data.get("eval_history", [])]
    # Records written before split variants were general: the field was mtd_split, and before
    # that, info["mtd_split"].
    legacy = data.pop("mtd_split", None) or data.get("info", {}).get("mtd_split")
    data.setdefault("split_variant", legacy)
    known = {f.name for f in dataclasses.fields(Record)}
    return Record(**{k: v for k, v in data.items() if k in known})  # newer fields: ignored


_HINTS = typing.get_type_hints(Record)
