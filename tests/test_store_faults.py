"""A results store that survives what disks and people do to it: data identity by content,
unreadable records / caches / leases (fault injection), a full disk (a real small tmpfs where
this machine lets the test mount one, a patched write otherwise), ``verify``, peak memory."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import TINY, invoke
from PIL import Image

import bench.store.atomic
from bench.data.content import ContentKeys, content_keys
from bench.data.fingerprint import legacy_split_fingerprint, split_fingerprint
from bench.run.cells import cell_split
from bench.run.runner import run_cells
from bench.run.suites import Suite, plan
from bench.store.results import ResultsStore
from bench.store.verify import verify_store


def knn_cells(root: Path, seeds=(0,), dataset: str = "folder") -> list:
    suite = Suite(name="t", dataset=dataset, methods=["knn"], seeds=list(seeds), preset="tiny",
                  backbone="random", categories=["blobs"] if dataset == "synthetic" else None)
    return plan(suite, data_root=root)


def temporaries(folder: Path) -> list[Path]:
    return [p for p in Path(folder).rglob(".*tmp*") if p.is_file()]


def store_args(root: Path, store: Path, *extra: str) -> list[str]:
    return ["run", "--suite", "smoke", "--methods", "knn", "--seeds", "0", "--data-root",
            str(root), "--results-dir", str(store), *TINY, *extra]


# -- 1. data identity by content --------------------------------------------------------------


def resave(src: Path, dest: Path, change: bool) -> None:
    """Every image of ``src`` as an uncompressed PNG (its size fixed by its pixel count), with
    the test images' pixels inverted when ``change``."""
    for path in sorted(src.rglob("*.png")):
        out = dest / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        image = Image.open(path)
        if change and "test" in out.parts:
            image = Image.fromarray(255 - np.asarray(image))
        image.save(out, compress_level=0)


def test_same_names_and_sizes_other_pixels_give_two_records(synthetic_root, tmp_path):
    first_root, second_root = tmp_path / "a", tmp_path / "b"
    resave(synthetic_root / "blobs", first_root / "blobs", change=False)
    resave(synthetic_root / "blobs", second_root / "blobs", change=True)
    names = lambda root: [(p.relative_to(root), p.stat().st_size)  # noqa: E731
                          for p in sorted(root.rglob("*.png"))]
    assert names(first_root) == names(second_root)  # what the old fingerprint saw: the same
    (first,), (second,) = knn_cells(first_root), knn_cells(second_root)
    assert legacy_split_fingerprint(cell_split(first), first_root) == \
        legacy_split_fingerprint(cell_split(second), second_root)
    store = ResultsStore(tmp_path / "store")
    made = run_cells([first], store).done[0]
    again = run_cells([second], store)
    assert again.done, "a cell on other pixels was skipped as already recorded"
    assert again.done[0].data_fingerprint != made.data_fingerprint
    moved = list((store.root / "superseded" / "other-data").rglob("*.json"))
    assert [json.loads(p.read_text())["data_fingerprint"] for p in moved] == [made.data_fingerprint]


def test_unchanged_data_is_not_hashed_again(synthetic_root, tmp_path):
    (cell,) = knn_cells(synthetic_root, dataset="synthetic")
    split, folder = cell_split(cell), tmp_path / "keys"
    n_files = len(split.train) + len(split.test)
    cold = ContentKeys(folder)
    fingerprint = split_fingerprint(split, synthetic_root, cold)
    cold.save()
    assert cold.hashed == n_files
    warm = ContentKeys(folder)  # as the next process would: from the key file
    assert split_fingerprint(split, synthetic_root, warm) == fingerprint
    assert warm.hashed == 0
    # A run keeps its keys beside the image cache, so its next run reads no file to fingerprint.
    store = ResultsStore(tmp_path / "store")
    run_cells([cell], store)
    content_keys.cache_clear()
    keys = content_keys(store.cache().images)
    assert run_cells([cell], store).skipped == [cell]
    assert keys.hashed == 0


# -- 2. unreadable entries never stop a command -----------------------------------------------


def two_records(root: Path, store_dir: Path) -> tuple[ResultsStore, list]:
    cells = knn_cells(root, seeds=(0, 1), dataset="synthetic")
    store = ResultsStore(store_dir)
    assert len(run_cells(cells, store).done) == 2
    return store, cells


DAMAGE = {
    "truncated": lambda text: text[: len(text) // 2],
    "field missing": lambda text: json.dumps({k: v for k, v in json.loads(text).items()
                                              if k != "status"}),
    "wrong type": lambda text: json.dumps({**json.loads(text), "auroc": "high"}),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_an_unreadable_record_is_skipped_then_moved_aside_and_redone(damage, synthetic_root,
                                                                     tmp_path, caplog):
    store, cells = two_records(synthetic_root, tmp_path / "store")
    broken = store.path(cells[1])
    damaged = DAMAGE[damage](broken.read_text())
    broken.write_text(damaged)
    with caplog.at_level(logging.WARNING):
        frame = store.load()
    assert list(frame["seed"]) == [0]
    warned = [r.getMessage() for r in caplog.records if "unreadable record" in r.getMessage()]
    assert len(warned) == 1 and str(broken) in warned[0]
    result = invoke("results", "--results-dir", str(store.root))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    report = invoke("report", "--results-dir", str(store.root), "--out", str(tmp_path / "r"))
    assert report.exit_code == 0, report.output
    assert (tmp_path / "r" / "report.html").is_file()
    again = run_cells(cells, store)
    assert [r.cell_id for r in again.done] == [cells[1].cell_id]
    aside = list((store.root / "superseded" / "unreadable").rglob("*.json"))
    assert len(aside) == 1 and aside[0].read_text() == damaged  # kept as it was, never deleted
    assert len(store.records()) == 2


def test_a_truncated_feature_cache_entry_is_recomputed_never_trusted(synthetic_root, tmp_path,
                                                                    caplog):
    (cell,) = knn_cells(synthetic_root, dataset="synthetic")
    store = ResultsStore(tmp_path / "store")
    first = run_cells([cell], store).done[0]
    entries = sorted(store.cache().features.rglob("*.np[yz]"))
    assert entries
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:100])
    store.path(cell).unlink()
    with caplog.at_level(logging.WARNING):
        second = run_cells([cell], store).done[0]
    assert second.auroc == first.auroc and second.scores == first.scores
    assert any("unreadable" in r.getMessage() for r in caplog.records)
    assert list((store.cache().features / "unreadable").iterdir())
    image_entries = sorted(store.cache().images.rglob("*.npy"))
    image_entries[0].write_bytes(b"garbage")
    store.path(cell).unlink()
    assert run_cells([cell], store).done[0].scores == first.scores


def test_a_garbage_lease_is_moved_aside_and_the_cell_runs(synthetic_root, tmp_path):
    (cell,) = knn_cells(synthetic_root, dataset="synthetic")
    store = ResultsStore(tmp_path / "store")
    store.lease_path(cell).parent.mkdir(parents=True)
    store.lease_path(cell).write_bytes(b"\x00\x17 not a lease")
    assert verify_store(store).problems  # named by verify before the run
    summary = run_cells([cell], store)
    assert summary.done and not summary.claimed
    assert (store.root / "superseded" / "unreadable" / "leases" /
            store.lease_path(cell).name).read_bytes() == b"\x00\x17 not a lease"


# -- 3. a full disk is an ordinary failure ----------------------------------------------------


def can_mount_tmpfs(folder: Path) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@contextlib.contextmanager
def full_folder(kind: str, folder: Path, monkeypatch, target: str, leave_kb: int):
    """``folder`` with no room for the file ``target`` names: on a 16 MB tmpfs filled but for
    ``leave_kb``, or (patched) every atomic write whose path contains ``target`` fails with
    ENOSPC after its temporary file was written. Yields a function that frees the space."""
    if kind == "tmpfs":
        if not can_mount_tmpfs(folder):
            pytest.skip("this machine does not let the test mount a tmpfs (the patched variant "
                        "covers it)")
        filler = folder / "filler"
        try:
            with open(filler, "wb") as fh:
                fh.write(b"\0" * (16 * 2**20 - leave_kb * 1024))
            yield lambda: filler.unlink()
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    real = bench.store.atomic.atomic_path
    full = {"on": True}

    @contextlib.contextmanager
    def failing(path, suffix="", needed=None):
        with real(path, suffix, needed) as tmp:
            yield tmp
            if full["on"] and f"/{target}/" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device")

    for module in ("bench.store.atomic", "bench.store.results", "bench.data.imagecache",
                   "bench.features.bank"):
        monkeypatch.setattr(f"{module}.atomic_path", failing)
    yield lambda: full.update(on=False)


def one_line_exit_1(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("kind", ["patched", "tmpfs"])
@pytest.mark.parametrize("where", ["record", "cache entry", "checkpoint"])
def test_a_full_disk_stops_the_run_in_one_line_and_the_grid_completes_after(
        where, kind, synthetic_root, tmp_path, monkeypatch):
    store, cache = tmp_path / "store", tmp_path / "cache"
    method = "differnet" if where == "checkpoint" else "knn"
    if where == "checkpoint":  # DifferNet's tiny preset: a checkpoint every epoch
        from functools import partial

        import bench.run.runner
        from bench.registry import RunContext

        monkeypatch.setattr(bench.run.runner, "RunContext", partial(RunContext, checkpoint_every=1))
    full_dir = cache if where == "cache entry" else store
    target = {"record": "records", "cache entry": "images", "checkpoint": "checkpoints"}[where]
    args = ["run", "--suite", "smoke", "--methods", method, "--seeds", "0", "--categories",
            "blobs", "--data-root", str(synthetic_root), "--results-dir", str(store),
            "--cache-dir", str(cache), *TINY]
    leave_kb = 4 if where == "record" else 12  # room for a lease (one page), not a record
    with full_folder(kind, full_dir, monkeypatch, target, leave_kb) as free_space:
        line = one_line_exit_1(invoke(*args))
        assert "full" in line and str(full_dir) in line and "rerun the same command" in line
        assert not temporaries(store) and not temporaries(cache)
        free_space()
        done = invoke(*args)
        assert done.exit_code == 0, done.output
        records = ResultsStore(store).records()
        assert [r.status for r in records] == ["ok"] and records[0].method == method
        assert not temporaries(store) and not temporaries(cache)


def test_stale_temporaries_of_killed_runs_are_swept_when_a_run_starts(synthetic_root, tmp_path):
    store = tmp_path / "store"
    dead = bench.store.atomic.temp_path(store / "records" / "x.json").name.replace(
        f"-{bench.store.atomic.os.getpid()}-", "-999999999-")
    left = [store / "records" / dead, store / ".cache" / "images" / ".a.npy.123.tmp"]
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    old = 0  # an earlier version's name carries no host: judged by age
    bench.store.atomic.os.utime(left[1], (old, old))
    assert invoke(*store_args(synthetic_root, store, "--categories", "blobs")).exit_code == 0
    assert not any(p.exists() for p in left)


def test_a_folder_short_of_space_is_warned_of_before_the_run(synthetic_root, tmp_path,
                                                            monkeypatch):
    from bench.store.space import warn_if_short_of_space

    cells = knn_cells(synthetic_root, seeds=(0, 1), dataset="synthetic")
    cells = [(c, cell_split(c)) for c in cells]
    store = ResultsStore(tmp_path / "store")
    assert warn_if_short_of_space(cells, store, tmp_path / "cache") == []
    monkeypatch.setattr("bench.store.space.free_bytes", lambda folder: 1000)
    (warning,) = warn_if_short_of_space(cells, store, tmp_path / "cache", localize=True)
    assert "1 KB free" in warning and "--results-dir" in warning


# -- 4. verify ---------------------------------------------------------------------------------


def test_verify_passes_a_clean_store_and_names_an_edited_record(synthetic_root, tmp_path):
    store, cells = two_records(synthetic_root, tmp_path / "store")
    root = ["--results-dir", str(store.root)]
    clean = invoke("verify", *root, "--data-root", str(synthetic_root))
    assert clean.exit_code == 0 and "0 problem(s)" in clean.output, clean.output
    edited = store.path(cells[0])
    data = json.loads(edited.read_text())
    edited.write_text(json.dumps({**data, "auroc": data["auroc"] - 0.01}))
    result = invoke("verify", *root)
    assert result.exit_code == 1 and str(edited) in result.output and "AUROC" in result.output
    edited.write_text(json.dumps({**data, "scores": data["scores"][:-1]}))
    result = invoke("verify", *root)
    assert result.exit_code == 1 and str(edited) in result.output, result.output
    edited.write_text(json.dumps(data))
    assert invoke("verify", *root).exit_code == 0
    # the data on disk changed since: named with --data-root only
    image = cell_split(cells[0]).test[0].path
    shutil.copy(image, tmp_path / "keep.png")
    try:
        Image.fromarray(255 - np.asarray(Image.open(image))).save(image)
        changed = invoke("verify", *root, "--data-root", str(synthetic_root))
        assert changed.exit_code == 1 and "other data" in changed.output, changed.output
    finally:
        shutil.copy(tmp_path / "keep.png", image)
    copy = edited.with_name("copy.json")
    shutil.copy(edited, copy)
    twice = invoke("verify", *root)
    assert twice.exit_code == 1 and "recorded 2 times" in twice.output


# -- 5. peak memory ----------------------------------------------------------------------------


def test_results_shows_the_peak_memory_of_every_new_record(synthetic_root, tmp_path):
    store, _ = two_records(synthetic_root, tmp_path / "store")
    result = invoke("results", "--results-dir", str(store.root), "--format", "csv")
    rows = [line.split(",") for line in result.output.strip().splitlines()]
    column = rows[0].index("peak_memory_mb")
    peaks = [float(row[column]) for row in rows[1:]]
    assert len(peaks) == 2 and all(10 < p < 20000 for p in peaks)


def test_a_read_only_results_folder_is_one_line_too(synthetic_root, tmp_path):
    folder = tmp_path / "ro"
    if not can_mount_tmpfs(folder):
        pytest.skip("this machine does not let the test mount a tmpfs")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        args = store_args(synthetic_root, folder / "store", "--categories", "blobs",
                          "--cache-dir", str(tmp_path / "cache"))
        line = one_line_exit_1(invoke(*args))
        assert "read-only" in line and "make it writable" in line
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
