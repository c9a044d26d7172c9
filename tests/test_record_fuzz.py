"""A record is ``ok`` only when it is whole, and no record's content ends ``results`` or
``report`` in a traceback: each field of a real record removed or retyped in turn (and each
key of its info), all of them in one store, through both commands. A record stripped of its
scores is one warning line for ``report`` and is run again by ``run``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from cli_helpers import TINY, invoke

from bench.store.record import record_problem
from bench.store.results import ResultsStore

RUN = ["run", "--suite", "smoke", "--methods", "knn", "--categories", "blobs", *TINY]


@pytest.fixture(scope="module")
def recorded(synthetic_root, tmp_path_factory) -> tuple[Path, dict]:
    store = tmp_path_factory.mktemp("fuzz") / "store"
    result = invoke(*RUN, "--data-root", str(synthetic_root), "--results-dir", str(store))
    assert result.exit_code == 0, result.output
    (path,) = ResultsStore(store).record_paths()
    return path, json.loads(path.read_text())


def other_type(value):
    """A JSON value of another type than ``value``."""
    if isinstance(value, bool) or value is None:
        return "x"
    if isinstance(value, str):
        return 7
    if isinstance(value, int | float):
        return "seven"
    if isinstance(value, list):
        return {"a": 1}
    return [1, 2]


def variants(record: dict) -> dict[str, dict[str, dict]]:
    """Group -> name -> the record with one thing removed or retyped. In a group, no two
    variants touch the same key (one record lacking a key could spare the others' reading)."""
    removed, retyped, elements = {}, {}, {}
    for key, value in record.items():
        removed[f"without {key}"] = {k: v for k, v in record.items() if k != key}
        retyped[f"{key} retyped"] = {**record, key: other_type(value)}
        if isinstance(value, list) and value:
            elements[f"{key} elements retyped"] = {**record, key: [other_type(value[0])] * len(value)}
    for key, value in record["info"].items():
        info = record["info"]
        removed[f"info without {key}"] = {**record, "info": {k: v for k, v in info.items()
                                                             if k != key}}
        retyped[f"info {key} retyped"] = {**record, "info": {**info, key: other_type(value)}}
        if isinstance(value, list) and value:
            elements[f"info {key} elements retyped"] = {
                **record, "info": {**info, key: [other_type(value[0])] * len(value)}}
    elements["one score short"] = {**record, "scores": record["scores"][:-1]}
    elements["AUROC its scores do not give"] = {**record, "auroc": 1 - record["auroc"]}
    elements["status neither ok nor failed"] = {**record, "status": "done"}
    return {"removed": removed, "retyped": retyped, "elements": elements}


@pytest.mark.parametrize("group", ["removed", "retyped", "elements"])
def test_every_field_removed_or_retyped_never_ends_in_a_traceback(recorded, tmp_path, group):
    path, record = recorded
    cases = variants(record)[group]
    store = ResultsStore(tmp_path / "store")
    folder = store.records_dir / path.parent.relative_to(path.parents[3])
    folder.mkdir(parents=True)
    readable = set()
    for i, data in enumerate(cases.values()):
        # Each its own cell (id and seed), so the report reads every one of them.
        if isinstance(data.get("cell_id"), str):
            data = {**data, "cell_id": f"{data['cell_id']}-{i}"}
        if isinstance(data.get("seed"), int) and not isinstance(data.get("seed"), bool):
            data = {**data, "seed": i}
        (folder / f"variant-{i}.json").write_text(json.dumps(data))
        if record_problem(data) is None:
            readable.add(i)
    assert len(cases) >= 7 and len(readable) < len(cases)
    # Whole records only: no variant whose test lists disagree or whose AUROC is off is read.
    for name in ("without scores", "without n_test", "without status", "scores retyped",
                 "labels retyped", "info value_origins retyped", "one score short",
                 "AUROC its scores do not give", "status neither ok nor failed",
                 "scores elements retyped", "test_files elements retyped"):
        if name in cases:
            assert record_problem(cases[name]) is not None, name
    results = invoke("results", "--results-dir", str(store.root), "--format", "csv")
    assert results.exit_code == 0 and "Traceback" not in results.output, results.output
    assert results.output.count("\n") == 1 + len(readable)
    report = invoke("report", "--results-dir", str(store.root), "--out", str(tmp_path / "r"))
    assert report.exit_code == 0 and "Traceback" not in report.output, report.output


def test_a_record_stripped_of_its_scores_is_one_warning_and_run_heals_it(recorded,
                                                                        synthetic_root,
                                                                        tmp_path, caplog):
    path, record = recorded
    store = ResultsStore(tmp_path / "store")
    run = invoke(*RUN, "--data-root", str(synthetic_root), "--results-dir", str(store.root))
    assert run.exit_code == 0, run.output
    (written,) = store.record_paths()
    stripped = {k: v for k, v in json.loads(written.read_text()).items()
                if k not in ("scores", "auroc")}
    written.write_text(json.dumps(stripped))
    with caplog.at_level(logging.WARNING):
        report = invoke("report", "--results-dir", str(store.root), "--out", str(tmp_path / "r"))
    assert report.exit_code == 0 and "Traceback" not in report.output, report.output
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "0 test scores" in warned[0] and str(written) in warned[0]
    assert invoke("results", "--results-dir", str(store.root)).output.startswith("no results")
    again = invoke(*RUN, "--data-root", str(synthetic_root), "--results-dir", str(store.root))
    assert again.exit_code == 0 and "ran 1, skipped 0" in again.output, again.output
    (healed,) = store.records()
    assert healed.scores and healed.auroc == record["auroc"]
    assert list((store.root / "superseded" / "unreadable").rglob("*.json"))
