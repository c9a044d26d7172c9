"""Fetching (resume, checksum, network errors), safe unpacking and the import's all-or-nothing move."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import socket
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bench.data import catalog, download_dataset
from bench.data.download import fetch_archive, safe_extract
from bench.data.folder import is_category_dir
from bench.data.mvtec import MVTEC_CATEGORIES
from bench.errors import BenchError

PAYLOAD = bytes(range(256)) * 400  # 100 KiB, every offset distinguishable


class FileServer:
    """An HTTP server on 127.0.0.1 serving in-memory files, with Range support.

    ``cut_after``: the next reply is cut off after that many body bytes. ``ignore_range``:
    answer 200 with the whole file even when a Range is asked for. ``ranges`` logs each
    request's Range header (None when absent).
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.cut_after: int | None = None
        self.ignore_range = False
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.ranges.append(self.headers.get("Range"))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return
                start, asked = 0, self.headers.get("Range")
                if asked and not server.ignore_range:
                    start = int(asked.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if server.cut_after is not None:
                    body, server.cut_after = body[: server.cut_after], None
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = FileServer({"/data.bin": PAYLOAD})
    yield srv
    srv.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------ fetch_archive


def test_download_with_checksum(server, tmp_path):
    dest = tmp_path / "dl" / "data.bin"
    assert fetch_archive(f"{server.url}/data.bin", dest, sha256=sha(PAYLOAD), progress=False) == dest
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_suffix(".bin.part").exists()
    assert server.ranges == [None]


def test_resumes_after_connection_drops(server, tmp_path):
    server.cut_after = 80_000
    dest = tmp_path / "data.bin"
    fetch_archive(f"{server.url}/data.bin", dest, sha256=sha(PAYLOAD), progress=False)
    first, second = server.ranges
    assert first is None
    assert 0 < int(second.removeprefix("bytes=").rstrip("-")) <= 80_000  # kept what it had
    assert dest.read_bytes() == PAYLOAD


def test_resumes_part_file_left_by_earlier_run(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.with_suffix(".bin.part").write_bytes(PAYLOAD[:12_345])
    fetch_archive(f"{server.url}/data.bin", dest, progress=False)
    assert server.ranges == ["bytes=12345-"]
    assert dest.read_bytes() == PAYLOAD


@pytest.mark.parametrize("part", [b"stale bytes", PAYLOAD + b"too long"], ids=["200", "416"])
def test_restarts_when_server_cannot_resume(server, tmp_path, part):
    server.ignore_range = part == b"stale bytes"  # answers 200: the whole file again
    dest = tmp_path / "data.bin"
    dest.with_suffix(".bin.part").write_bytes(part)
    fetch_archive(f"{server.url}/data.bin", dest, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_moves_file_aside(server, tmp_path):
    dest = tmp_path / "data.bin"
    with pytest.raises(BenchError, match="corrupt"):
        fetch_archive(f"{server.url}/data.bin", dest, sha256="0" * 64, progress=False)
    assert not dest.exists()
    assert (tmp_path / "data.bin.corrupt").read_bytes() == PAYLOAD


def test_cached_archive_is_reused(server, tmp_path):
    dest = tmp_path / "data.bin"
    dest.write_bytes(PAYLOAD)
    fetch_archive(f"{server.url}/data.bin", dest, sha256=sha(PAYLOAD), progress=False)
    assert server.ranges == []


def test_unreachable_host(tmp_path):
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BenchError, match="could not reach 127.0.0.1.*--from FILE"):
        fetch_archive(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", progress=False)


def test_http_error(server, tmp_path):
    with pytest.raises(BenchError, match="HTTP 404.*--from FILE"):
        fetch_archive(f"{server.url}/missing.zip", tmp_path / "x.zip", progress=False)


def test_local_file_used_in_place(tmp_path):
    path = tmp_path / "mine.bin"
    path.write_bytes(PAYLOAD)
    assert fetch_archive(str(path), tmp_path / "unused", sha256=sha(PAYLOAD)) == path
    assert fetch_archive(path.as_uri(), tmp_path / "unused") == path
    assert not (tmp_path / "unused").exists()
    with pytest.raises(BenchError, match="checksum"):
        fetch_archive(str(path), tmp_path / "unused", sha256="0" * 64)
    assert path.exists()  # a user's own file is never moved
    with pytest.raises(BenchError, match="does not exist"):
        fetch_archive(str(tmp_path / "nope.zip"), tmp_path / "unused")


# ------------------------------------------------------------------------------ safe_extract


def make_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def make_tar(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    compression = {".gz": "gz", ".xz": "xz"}.get(path.suffix, "")
    with tarfile.open(path, f"w:{compression}") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tf.addfile(info)
    return path


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.gz", ".tar.xz"])
def test_extracts_zip_and_tar(tmp_path, suffix):
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    maker = make_zip if suffix == ".zip" else make_tar
    archive = maker(tmp_path / f"x{suffix}", members)
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/top/sub/b.txt").read_bytes() == b"b"


@pytest.mark.parametrize("name", ["../evil", "ok/../../evil", "/tmp/differnet-bench-evil"])
def test_zip_escaping_target_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "x.zip", {"fine.txt": b"x", name: b"pwned"})
    with pytest.raises(BenchError, match="outside"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/differnet-bench-evil").exists()
    assert list((tmp_path / "out").iterdir()) == []  # checked before anything is written


@pytest.mark.parametrize(
    "members, links",
    [({"../evil": b"x"}, None), ({}, {"link": "../../etc"}), ({}, {"link": "/etc/passwd"})],
    ids=["dotdot", "relative-link", "absolute-link"],
)
def test_tar_escaping_target_is_refused(tmp_path, members, links):
    archive = make_tar(tmp_path / "x.tar", members, links)
    with pytest.raises(BenchError, match="outside"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil").exists()
    assert not (tmp_path / "out" / "link").is_symlink()


def test_link_inside_target_is_fine(tmp_path):
    archive = make_tar(tmp_path / "x.tar", {"d/a.txt": b"a"}, {"d/b.txt": "a.txt"})
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/d/b.txt").read_bytes() == b"a"


@pytest.mark.parametrize("name", ["x.zip", "x.tar.gz", "x.tar.xz"])
def test_corrupt_archive(tmp_path, name):
    good = (make_zip if name.endswith(".zip") else make_tar)(
        tmp_path / f"good-{name}", {"a.txt": PAYLOAD})
    bad = tmp_path / name
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(BenchError, match="corrupt"):
        safe_extract(bad, tmp_path / "out")


# ------------------------------------------------------------------------------ download_dataset


def fake_mvtec(path: Path, categories: tuple[str, ...]) -> Path:
    members = {"mvtec_anomaly_detection/license.txt": b"CC BY-NC-SA 4.0"}
    for c in categories:
        for part in ("train/good/000.png", "test/good/000.png", "test/bad/000.png",
                     "ground_truth/bad/000_mask.png"):
            members[f"mvtec_anomaly_detection/{c}/{part}"] = c.encode()
    return make_tar(path, members)


@pytest.fixture
def no_mvtec_checksum(monkeypatch):
    spec = catalog.DATASETS["mvtec"]
    unchecked = dataclasses.replace(spec.download, sha256=None)
    monkeypatch.setitem(catalog.DATASETS, "mvtec", dataclasses.replace(spec, download=unchecked))


def test_mvtec_import_keeps_categories_already_there(tmp_path, no_mvtec_checksum):
    root = tmp_path / "data"
    (root / "grid" / "train" / "good").mkdir(parents=True)
    (root / "grid" / "test").mkdir()
    archive = fake_mvtec(tmp_path / "mvtec.tar.gz", MVTEC_CATEGORIES)
    download_dataset("mvtec", root, str(archive), progress=False)
    assert all(is_category_dir(root / c) for c in MVTEC_CATEGORIES)
    assert not (root / "grid/train/good/000.png").exists()  # the user's folder was kept
    assert (root / "zipper/ground_truth/bad/000_mask.png").read_bytes() == b"zipper"
    assert (root / ".mvtec_verified").is_file()
    assert sorted(p.name for p in root.iterdir() if p.name.startswith(".")) == [
        ".mvtec_manifest.json", ".mvtec_verified"]
    # The manifest lists what the import verified, not the category that was kept.
    files = json.loads((root / ".mvtec_manifest.json").read_text())["files"]
    assert files["zipper/ground_truth/bad/000_mask.png"] == len(b"zipper")
    assert not any(name.startswith("grid/") for name in files)


def test_failed_import_leaves_nothing_half_done(tmp_path, no_mvtec_checksum):
    root = tmp_path / "data"
    archive = fake_mvtec(tmp_path / "mvtec.tar.gz", MVTEC_CATEGORIES[:-1])
    with pytest.raises(BenchError, match=MVTEC_CATEGORIES[-1]):
        download_dataset("mvtec", root, str(archive), progress=False)
    assert list(root.iterdir()) == []  # no category, no marker, no temporary folder


def test_mvtec_checksum_applies_to_local_archive(tmp_path):
    archive = fake_mvtec(tmp_path / "mvtec.tar.gz", MVTEC_CATEGORIES)
    with pytest.raises(BenchError, match="checksum"):
        download_dataset("mvtec", tmp_path / "data", str(archive), progress=False)


def test_only_mtd_and_mvtec_download(tmp_path):
    with pytest.raises(BenchError, match="cannot be downloaded"):
        download_dataset("folder", tmp_path)
