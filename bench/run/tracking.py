"""Finished cells as runs of an experiment tracker (MLflow), to browse, filter and plot a grid in
the tool a lab already uses. The results store stays the reference; the tracker gets a copy.

Each record becomes one MLflow run in an experiment named after its suite: parameters (what the
cell is, and the resolved config as ``config.<field>``), metrics (image AUROC, pixel AUROC and
PRO when measured, validation AUROC, minutes, peak memory, the loss of every epoch as steps),
tags (commit, reduced, the values chosen on test data, status) and, as artifacts, the record
JSON and its ROC curve. Every run carries its record's identity (cell id and finish time) as a
tag, set last, so logging a store twice adds nothing, a log cut short is redone (its partial run
deleted), and a cell computed again (a new record) adds a new run.

Where to: ``MLFLOW_TRACKING_URI`` when set (a lab's server), else a SQLite file and an artifact
folder inside the results folder (``ResultsStore.tracking_dir``): nothing to start or serve.
MLflow is an optional extra; without it, asking for tracking is a one-line error, and so is a
tracking URI MLflow refuses (a file store), cannot reach (a server that is down) or cannot write
(a read-only folder): each said before any cell, with its fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.report.provenance import values_chosen_on_test
from bench.store.results import Record, ResultsStore

log = logging.getLogger(__name__)
BACKENDS = ("mlflow",)
RECORD_TAG = "differnet_bench.record"  # cell id @ finish time, set once a run is complete
PARTIAL_TAG = "differnet_bench.logging"  # the same, from a run's start: an interrupted log
MAX_PARAM_CHARS = 500  # longer values (lists of files, say) are cut; the record artifact has them
_BATCH = 100  # MLflow takes at most 100 params or tags per request


@dataclass(frozen=True)
class TrackingOptions:
    """A suite's ``[tracking]`` table, or ``run --track``: the backend, where its store is
    (None: ``MLFLOW_TRACKING_URI``, else inside the results folder) and the experiment's name
    (None: the suite's, or the dataset's for records that do not name their suite)."""

    backend: str = "mlflow"
    uri: str | None = None
    experiment: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise BenchError(f"unknown tracking backend {self.backend!r}; choose one of "
                             f"{', '.join(BACKENDS)}.")


def tracking_options(table: dict[str, Any], track: str | None) -> TrackingOptions | None:
    """What to track with: ``--track`` (``none`` switches a suite's table off) over the suite's
    ``[tracking]`` table; None when neither asks for tracking."""
    if track == "none" or (track is None and not table):
        return None
    values = dict(table)
    if track is not None:
        values["backend"] = track
    try:
        return TrackingOptions(**values)
    except TypeError as err:
        raise BenchError(f"the suite's [tracking] table has an unknown key ({err}); its keys are "
                         "backend, uri, experiment.") from None


def require_mlflow():
    try:
        import mlflow
    except ImportError:
        raise BenchError("MLflow is not installed; run pip install -e '.[mlflow]' (or pip install "
                         "mlflow) to track runs in it.") from None
    return mlflow


def default_uri(store: ResultsStore) -> str:
    return "sqlite:///" + str((store.tracking_dir / "mlflow.db").resolve())


def _ms(stamp: str) -> int | None:
    try:
        return int(dt.datetime.fromisoformat(stamp).timestamp() * 1000)
    except (TypeError, ValueError):
        return None


def record_key(record: Record) -> str:
    return f"{record.cell_id}@{record.finished_at or record.started_at}"


def record_params(record: Record) -> dict[str, str]:
    what = {"method": record.method, "dataset": record.dataset, "category": record.category,
            "seed": record.seed, "shots": record.shots if record.shots is not None else "all",
            "preset": record.preset, "preset_applied": record.preset_applied,
            "backbone": record.backbone, "variant": record.variant,
            "split_variant": record.split_variant, "validation": record.validation,
            "data_fingerprint": record.data_fingerprint, "cell_id": record.cell_id,
            "n_train": record.n_train, "n_test": record.n_test, "device": record.device}
    what.update({f"config.{k}": v for k, v in record.config.items()})
    out = {}
    for key, value in what.items():
        text = value if isinstance(value, str) else json.dumps(value)
        out[key] = text if len(text) <= MAX_PARAM_CHARS else text[:MAX_PARAM_CHARS - 3] + "..."
    return out


def record_metrics(record: Record) -> list[tuple[str, float, int]]:
    """(name, value, step): the single numbers at step 0, the loss (or each named loss of a GAN)
    at its epoch, the AUROCs evaluated during training at theirs."""
    single = {"image_auroc": record.auroc, "pixel_auroc": record.pixel_auroc, "pro": record.pro,
              "val_auroc": record.val_auroc, "peak_memory_mb": record.peak_memory_mb,
              "peak_gpu_memory_mb": record.peak_gpu_memory_mb,
              "fit_minutes": None if record.fit_s is None else record.fit_s / 60,
              "score_minutes": None if record.score_s is None else record.score_s / 60}
    if record.fit_s is not None and record.score_s is not None:
        single["minutes"] = (record.fit_s + record.score_s) / 60
    out = [(k, float(v), 0) for k, v in single.items() if v is not None]
    for epoch, loss in enumerate(record.info.get("loss_history", []), start=1):
        losses = loss if isinstance(loss, dict) else {"loss": loss}
        out += [(k if k == "loss" else f"loss_{k}", float(v), epoch) for k, v in losses.items()]
    out += [("eval_auroc", float(a), int(epoch)) for epoch, a in record.eval_history]
    return out


def record_tags(record: Record) -> dict[str, str]:
    chosen = values_chosen_on_test([record])
    tags = {"mlflow.runName": record.cell_id, "status": record.status, "commit": record.git_commit or "unknown",
            "reduced": str(record.reduced).lower(), "method": record.method,
            "dataset": record.dataset, "category": record.category,
            "values_chosen_on_test_data": ("not recorded" if chosen is None
                                           else ", ".join(chosen) or "none")}
    if record.git_commit:
        tags["mlflow.source.git.commit"] = record.git_commit
    if record.status != "ok":
        tags["failure"] = record.failure or "error"
        tags["error"] = (record.error or "")[:5000]
    return tags


def roc_figure(record: Record, path: Path) -> Path | None:
    """The record's ROC curve as a PNG (None without scores of both classes)."""
    if len(set(record.labels)) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(record.labels, record.scores)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUROC {100 * (record.auroc or 0):.1f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate",
           title=f"{record.method} on {record.dataset}/{record.category}, seed {record.seed}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@contextlib.contextmanager
def _one_try(timeout_s: int = 10):
    """MLflow's HTTP requests without its retries (minutes of them against a server that is
    not there) and with a short timeout: for the check before any cell."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                                            "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    os.environ.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
                      MLFLOW_HTTP_REQUEST_TIMEOUT=str(timeout_s))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ServerDown(Exception):
    """The tracking server does not answer (``unusable`` says how to go on)."""


def open_client(client_cls: Any, uri: str, store: ResultsStore, local: bool) -> Any:
    """A client of the tracking store at ``uri`` that has answered once. Where MLflow refuses
    the URI or cannot write there, a ``BenchError`` naming the fix (before any cell: nothing
    could be logged); a server that does not answer, ``ServerDown``."""
    try:
        if local:
            store.tracking_dir.mkdir(parents=True, exist_ok=True)
        with _one_try():
            client = client_cls(tracking_uri=uri)
            client.search_experiments(max_results=1)
        return client
    except Exception as err:  # noqa: BLE001 - whatever MLflow raises, said in one line
        if uri.startswith(("http://", "https://")) and "MLFLOW_ALLOW_FILE_STORE" not in str(err):
            raise ServerDown(unusable(uri, err, store)) from None
        raise BenchError(unusable(uri, err, store)) from None


def unusable(uri: str, err: BaseException, store: ResultsStore) -> str:
    """Why MLflow cannot be used at ``uri``, and the fix, in one sentence."""
    text = " ".join(str(err).split())
    why = text if len(text) <= 160 else text[:157] + "..."
    if "MLFLOW_ALLOW_FILE_STORE" in text:  # MLflow 3's refusal of a file store
        folder = Path(uri.removeprefix("file://") if uri.startswith("file://")
                      else uri.removeprefix("file:"))
        return (f"MLflow refuses the file store {uri} (its file store is in maintenance mode); "
                f"set MLFLOW_TRACKING_URI=sqlite:///{folder.parent / 'mlflow.db'} (a database file), "
                "or MLFLOW_ALLOW_FILE_STORE=true to keep the file store, or unset "
                f"MLFLOW_TRACKING_URI to log into {default_uri(store)}.")
    if uri.startswith(("http://", "https://")):
        return (f"cannot reach the MLflow server at {uri} ({type(err).__name__}: {why}); start "
                "it (or fix MLFLOW_TRACKING_URI) and log the records with bench.py results --to "
                "mlflow: they are safe in the store.")
    return (f"cannot log to MLflow at {uri} ({type(err).__name__}: {why}); point "
            "MLFLOW_TRACKING_URI at a folder this user can write, e.g. "
            "sqlite:///<a writable folder>/mlflow.db, or run without --track.")


class MlflowTracker:
    """Logs records as MLflow runs (``log``), each once. A server that does not answer when it
    starts is one warning and no tracking (``server_down_ok``, for a run: the records are
    logged later), or a ``BenchError`` (for ``results --to``, whose work is to log)."""

    def __init__(self, store: ResultsStore, options: TrackingOptions | None = None,
                 server_down_ok: bool = True):
        mlflow = require_mlflow()
        from mlflow.tracking import MlflowClient

        self.store, self.options = store, options or TrackingOptions()
        self.local = not (self.options.uri or os.environ.get("MLFLOW_TRACKING_URI"))
        self.uri = self.options.uri or os.environ.get("MLFLOW_TRACKING_URI") or default_uri(store)
        self._mlflow = mlflow
        self.broken = False  # a failure was met (and said): the rest goes on without tracking
        try:
            self.client = open_client(MlflowClient, self.uri, store, self.local)
        except ServerDown as down:
            if not server_down_ok:
                raise BenchError(str(down)) from None
            log.warning("%s", down)  # the cells run; their records are logged later
            self.client, self.broken = None, True
        self._experiments: dict[str, str] = {}  # name -> id
        self._logged: dict[str, set[str]] = {}  # experiment id -> record keys it holds
        self.added = self.present = 0
        self.unlogged: set[str] = set()  # record keys ``log_safely`` could not log
        self._mine: set[str] = set()  # record keys this tracker logged

    def experiment_name(self, record: Record) -> str:
        return self.options.experiment or record.info.get("suite") or record.dataset

    def _experiment(self, name: str) -> str:
        if name not in self._experiments:
            self._experiments[name] = self._find_or_create(name)
        return self._experiments[name]

    def _find_or_create(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            location = ((self.store.tracking_dir / "artifacts").resolve().as_uri()
                        if self.local else None)
            try:
                return self.client.create_experiment(name, artifact_location=location)
            except self._mlflow.exceptions.MlflowException:
                found = self.client.get_experiment_by_name(name)  # another runner made it
                if found is None:
                    raise
        return found.experiment_id

    def _keys(self, experiment_id: str) -> set[str]:
        if experiment_id not in self._logged:
            keys, token = set(), None
            while True:
                page = self.client.search_runs([experiment_id], max_results=1000,
                                               page_token=token)
                for run in page:
                    if RECORD_TAG in run.data.tags:
                        keys.add(run.data.tags[RECORD_TAG])
                    elif PARTIAL_TAG in run.data.tags:  # its logging was cut off: logged again
                        self.client.delete_run(run.info.run_id)
                token = page.token
                if not token:
                    break
            self._logged[experiment_id] = keys
        return self._logged[experiment_id]

    def log(self, record: Record) -> bool:
        """Log ``record`` as a run; False when its experiment holds it already."""
        from mlflow.entities import Metric, Param, RunTag

        experiment_id = self._experiment(self.experiment_name(record))
        key = record_key(record)
        if key in self._keys(experiment_id):
            return False
        tags = record_tags(record)
        run = self.client.create_run(experiment_id, start_time=_ms(record.started_at),
                                     tags={PARTIAL_TAG: key}, run_name=record.cell_id)
        run_id = run.info.run_id
        params = [Param(k, v) for k, v in record_params(record).items()]
        run_tags = [RunTag(k, v) for k, v in tags.items()]
        stamp = _ms(record.finished_at) or 0
        metrics = [Metric(k, v, stamp, step) for k, v, step in record_metrics(record)]
        for i in range(0, max(len(params), len(run_tags), len(metrics)), _BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + _BATCH],
                                  params=params[i:i + _BATCH], tags=run_tags[i:i + _BATCH])
        record_file = self.store.path(record)
        if record_file.is_file():
            self.client.log_artifact(run_id, str(record_file))
        with tempfile.TemporaryDirectory() as tmp:
            if (roc := roc_figure(record, Path(tmp) / "roc.png")) is not None:
                self.client.log_artifact(run_id, str(roc))
        self.client.set_terminated(run_id, "FINISHED" if record.status == "ok" else "FAILED",
                                   end_time=_ms(record.finished_at))
        self.client.set_tag(run_id, RECORD_TAG, key)  # last: only a complete run counts
        self._keys(experiment_id).add(key)
        return True

    def log_all(self, records: Iterable[Record]) -> tuple[int, int]:
        """(runs added, records already there)."""
        added, present = self.added, self.present
        for record in records:
            if record_key(record) in self._mine:  # logged by this tracker a moment ago
                continue
            if self.log(record):
                self._mine.add(record_key(record))
                self.added += 1  # counted as it goes: a failure later still says these
            else:
                self.present += 1
        return self.added - added, self.present - present

    def log_safely(self, *records: Record) -> None:
        """``log_all``, where a tracker that fails (a server down, say) costs a warning, never
        a cell: the records are in the store, and ``results --to mlflow`` logs them later."""
        if self.broken:  # said once; the rest of the run goes on without the tracker
            self.unlogged.update(record_key(r) for r in records)
            return
        try:
            self.log_all(records)
        except Exception as err:  # noqa: BLE001 - any failure of the tracker, said in one line
            self.unlogged.update(record_key(r) for r in records if record_key(r) not in self._mine)
            self.broken = True
            why = " ".join(str(err).split())[:160]
            log.warning("could not log to MLflow at %s (%s: %s); the records are safe in the "
                        "store: log them later with bench.py results --to mlflow",
                        self.uri, type(err).__name__, why)

    def summary(self) -> str:
        where = self.options.experiment or "per suite"
        text = (f"MLflow: {self.added} runs added, {self.present} already there (experiment "
                f"{where}, tracking URI {self.uri})")
        missed = len(self.unlogged)
        return text + (f"; {missed} not logged (see the warning)" if missed else "")


def make_tracker(store: ResultsStore, options: TrackingOptions,
                 server_down_ok: bool = True) -> MlflowTracker:
    """The tracker ``options.backend`` names (MLflow is the only one so far)."""
    return MlflowTracker(store, options, server_down_ok)


__all__ = ["BACKENDS", "MlflowTracker", "TrackingOptions", "make_tracker", "record_key",
           "tracking_options"]
