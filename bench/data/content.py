"""A file's identity by its content: the SHA-256 of its bytes, hashed once per file version
(``ContentKeys``, remembered by path, size and modification time). The image cache keys its
entries by it and the data fingerprints name a split's files by it. Torch-free: the report and
the download code import it too."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
from pathlib import Path

from bench.store.atomic import set_aside_unreadable, write_text


def content_key(path: Path) -> str:
    """SHA-256 of the file's bytes (24 hex digits): the identity of an image wherever it lies."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:24]


class ContentKeys:
    """Content keys of files, each hashed once: remembered in memory and, with a ``folder``, in
    ``folder/content_keys.json`` by path, size and modification time, so an unchanged tree is
    not read again by the next run (a changed size or time hashes the file again).

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()); _ = (folder / "a.png").write_bytes(b"x")
    >>> keys = ContentKeys(folder / "keys")
    >>> keys.key(folder / "a.png") == ContentKeys(folder / "keys").key(folder / "a.png")
    True
    >>> keys.hashed  # files read by this instance
    1
    """

    FORMAT = 1

    def __init__(self, folder: Path | None = None):
        self.file = None if folder is None else Path(folder) / "content_keys.json"
        self.hashed = 0
        self._known: dict[str, list] | None = None  # path -> [size, mtime_ns, key]
        self._unsaved = False
        self._lock = threading.Lock()

    def key(self, path: Path) -> str:
        name = os.path.abspath(path)
        stat = os.stat(name)
        with self._lock:
            known = self._load().get(name)
        if known is not None and known[:2] == [stat.st_size, stat.st_mtime_ns]:
            return known[2]
        key = content_key(name)
        with self._lock:
            self.hashed += 1
            self._known[name] = [stat.st_size, stat.st_mtime_ns, key]
            self._unsaved = True
        return key

    def save(self) -> None:
        """Write the keys hashed since the last save, merged with what other runners wrote."""
        if self.file is None or not self._unsaved:
            return
        with self._lock:
            merged = {**self._read(), **self._known}
            write_text(self.file, json.dumps({"format": self.FORMAT, "files": merged}))
            self._known, self._unsaved = merged, False

    def _load(self) -> dict[str, list]:
        if self._known is None:
            self._known = self._read()
        return self._known

    def _read(self) -> dict[str, list]:
        if self.file is None or not self.file.is_file():
            return {}
        try:
            data = json.loads(self.file.read_text())
            files = data["files"] if data.get("format") == self.FORMAT else {}
            if not isinstance(files, dict):
                raise ValueError("not a mapping")
            return files
        except (OSError, ValueError, KeyError, AttributeError) as err:
            set_aside_unreadable(self.file, err, "content key file")  # files are hashed again
            return {}


@functools.cache
def content_keys(folder: Path | None) -> ContentKeys:
    """The process's one ``ContentKeys`` for ``folder`` (an image cache root), shared by the
    image cache and the data fingerprints."""
    return ContentKeys(folder)
