"""The MTD import: the real archive from ../shared (as a file and over HTTP) and small fakes."""

from __future__ import annotations

import functools
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.data import download, download_dataset, ensure_dataset, load_split
from bench.data.fingerprint import matches_manifest
from bench.data.mtd import MTD_CLASSES, layout_mtd, load_train_filenames
from bench.errors import BenchError

REAL_ZIP = (Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mtd"
            / "Magnetic-tile-defect-datasets.-master.zip")
needs_real = pytest.mark.skipif(
    not REAL_ZIP.is_file(), reason=f"the real MTD archive is not at {REAL_ZIP} (see ../shared)")
DEFECTS = {"blowhole": 115, "break": 85, "crack": 57, "fray": 32, "uneven": 103}


def count(folder: Path, pattern: str = "*.jpg") -> int:
    return len(list(folder.glob(pattern)))


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def real_import(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("mtd_local")
    download_dataset("mtd", root, str(REAL_ZIP), progress=False)
    return root


@pytest.fixture(scope="module")
def http_import(tmp_path_factory) -> Path:
    handler = functools.partial(_Quiet, directory=str(REAL_ZIP.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    root = tmp_path_factory.mktemp("mtd_http")
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{REAL_ZIP.name}"
        download_dataset("mtd", root, url, progress=False)
    finally:
        httpd.shutdown()
        httpd.server_close()
    return root


def check_layout(mtd: Path) -> None:
    assert count(mtd / "train/good") == 761
    assert count(mtd / "test/good") == 191
    for defect, n in DEFECTS.items():
        assert count(mtd / "test" / defect) == n
        masks = {p.name for p in (mtd / "ground_truth" / defect).iterdir()}
        assert masks == {f"{p.stem}_mask.png" for p in (mtd / "test" / defect).iterdir()}
    assert sorted(p.name for p in (mtd / "ground_truth").iterdir()) == sorted(DEFECTS)
    train = {p.name for p in (mtd / "train/good").iterdir()}
    assert train == set(load_train_filenames())
    assert not train & {p.name for p in (mtd / "test/good").iterdir()}


@needs_real
def test_real_archive_from_local_file(real_import):
    check_layout(real_import / "mtd")
    assert (real_import / ".mtd_verified").is_file()
    assert not (real_import / ".downloads").exists()  # a local archive is used in place


@needs_real
def test_real_archive_over_http(http_import):
    check_layout(http_import / "mtd")
    assert (http_import / ".downloads" / REAL_ZIP.name).stat().st_size == REAL_ZIP.stat().st_size
    assert sorted(p.name for p in http_import.iterdir()) == [
        ".downloads", ".mtd_manifest.json", ".mtd_verified", "mtd"]


@needs_real
def test_second_import_does_nothing(real_import, monkeypatch):
    marker = real_import / ".mtd_verified"
    before = marker.stat().st_mtime_ns

    def no_fetch(*args, **kwargs):
        raise AssertionError("fetched although the dataset is there")

    monkeypatch.setattr(download, "fetch_archive", no_fetch)
    assert download_dataset("mtd", real_import) == real_import
    ensure_dataset("mtd", real_import)
    assert marker.stat().st_mtime_ns == before


@needs_real
def test_load_split_authors_and_random(real_import):
    authors = load_split("mtd", "mtd", real_import)
    assert len(authors.train) == 761
    assert matches_manifest(authors, real_import) is True  # the import's manifest
    assert sum(s.label == 0 for s in authors.test) == 191
    assert sum(s.label == 1 for s in authors.test) == 392
    assert all(s.mask_path is not None for s in authors.test if s.label == 1)

    random0 = load_split("mtd", "mtd", real_import, split_variant="random", seed=0)
    random1 = load_split("mtd", "mtd", real_import, split_variant="random", seed=1)
    for split in (random0, random1):
        assert len(split.train) in (761, 762)
        assert len(split.train) + sum(s.label == 0 for s in split.test) == 952
        assert sum(s.label == 1 for s in split.test) == 392
    names0 = {s.path.name for s in random0.train}
    assert names0 != {s.path.name for s in random1.train}
    assert names0 != {s.path.name for s in authors.train}
    again = load_split("mtd", "mtd", real_import, split_variant="random", seed=0)
    assert [s.path for s in again.train] == [s.path for s in random0.train]


# ------------------------------------------------------------------------- fake archives


def fake_mtd_zip(path: Path, drop: str | None = None, drop_mask: str | None = None) -> Path:
    """An archive shaped like MTD's, with tiny placeholder files (the import never decodes them).

    ``drop``/``drop_mask``: the class missing one image (with its mask) / one mask.
    """
    train = load_train_filenames()
    top = "Magnetic-tile-defect-datasets.-master"
    with zipfile.ZipFile(path, "w") as zf:
        for cls, n in MTD_CLASSES.items():
            names = train + [f"extra_{i}.jpg" for i in range(n - len(train))] if cls == "Free" \
                else [f"{cls.lower()}_{i}.jpg" for i in range(n)]
            for i, name in enumerate(names):
                stem = name.removesuffix(".jpg")
                if cls == drop and i == 0:
                    continue
                zf.writestr(f"{top}/MT_{cls}/Imgs/{stem}.jpg", b"jpg")
                if not (cls == drop_mask and i == 0):
                    zf.writestr(f"{top}/MT_{cls}/Imgs/{stem}.png", b"png")
        zf.writestr(f"{top}/README.md", b"readme")
    return path


def test_fake_archive_is_laid_out(tmp_path):
    root = tmp_path / "data"
    download_dataset("mtd", root, str(fake_mtd_zip(tmp_path / "mtd.zip")), progress=False)
    check_layout(root / "mtd")


def test_missing_image_names_the_class(tmp_path):
    root = tmp_path / "data"
    with pytest.raises(BenchError, match="MTD class Fray has 31 images, expected 32"):
        download_dataset("mtd", root, str(fake_mtd_zip(tmp_path / "m.zip", drop="Fray")))
    assert list(root.iterdir()) == []  # no half-made mtd folder, marker or temporary folder


def test_missing_mask_names_the_class(tmp_path):
    with pytest.raises(BenchError, match="MTD class Crack .*without a .png mask"):
        download_dataset("mtd", tmp_path, str(fake_mtd_zip(tmp_path / "m.zip", drop_mask="Crack")))


def test_training_list_must_name_free_images(tmp_path):
    zipfile.ZipFile(fake_mtd_zip(tmp_path / "m.zip")).extractall(tmp_path / "x")
    with pytest.raises(BenchError, match="not in MT_Free"):
        layout_mtd(tmp_path / "x", tmp_path / "out", ["exp1_num_108719.jpg", "nope.jpg"])


def test_not_an_mtd_archive(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("something/else.txt", b"x")
    with pytest.raises(BenchError, match="MT_Free"):
        download_dataset("mtd", tmp_path / "data", str(tmp_path / "other.zip"))
