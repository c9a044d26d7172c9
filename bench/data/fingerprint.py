"""What a result was computed on: a fingerprint of a split's files, and the manifest a verified
download leaves behind.

A cell's name says "MTD, seed 0"; the fingerprint says which files that was (their paths under
the data root and their contents' hashes), so a record made on another copy or another version
of a dataset (the same names and sizes, other pixels) is never taken for this one's. Hashing
reads every file once: the keys are remembered by path, size and modification time
(``ContentKeys``, kept beside the image cache), so an unchanged tree is not read again.
Records from before content fingerprints hold a fingerprint of paths and sizes
(``legacy_split_fingerprint``), still accepted for what it covers. ``bench.py download``
writes a manifest of every file it verified; a record says whether its split's files all
matched that manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from bench.data.base import Split
from bench.data.content import ContentKeys, content_keys
from bench.store.atomic import write_text

MANIFEST_FORMAT = 1
CONTENT_PREFIX = "c1-"  # a fingerprint of contents; a bare 16-hex one is of paths and sizes


def _relative(path: Path, root: Path) -> str:
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()


def split_files(split: Split, data_root: Path) -> list[tuple[str, int]]:
    """(path under the data root, size in bytes) of every training and test image, in order."""
    return [(_relative(s.path, data_root), s.path.stat().st_size)
            for s in (*split.train, *split.test)]


def split_fingerprint(split: Split, data_root: Path, keys: ContentKeys | None = None) -> str:
    """``c1-`` and 16 hex digits naming the split's files (paths under the data root) and their
    contents (the train / test order counts); ``keys`` remembers the files' hashes.

    >>> from bench.data.base import Sample
    >>> import tempfile; root = Path(tempfile.mkdtemp())
    >>> for name in "abc": _ = (root / f"{name}.png").write_bytes(b"12")
    >>> split = Split("x", "c", [Sample(root / "a.png", 0)],
    ...               [Sample(root / "b.png", 0), Sample(root / "c.png", 1)])
    >>> one = split_fingerprint(split, root)
    >>> _ = (root / "c.png").write_bytes(b"13")  # same size, other content
    >>> one != split_fingerprint(split, root)
    True
    """
    keys = keys or content_keys(None)
    digest = hashlib.sha256()
    digest.update(f"train {len(split.train)}\n".encode())
    for sample in (*split.train, *split.test):
        digest.update(f"{_relative(sample.path, data_root)}\t{keys.key(sample.path)}\n".encode())
    return CONTENT_PREFIX + digest.hexdigest()[:16]


def legacy_split_fingerprint(split: Split, data_root: Path) -> str:
    """The fingerprint records held before content fingerprints: paths and sizes only."""
    digest = hashlib.sha256()
    digest.update(f"train {len(split.train)}\n".encode())
    for name, size in split_files(split, data_root):
        digest.update(f"{name}\t{size}\n".encode())
    return digest.hexdigest()[:16]


def same_data(recorded: str, split: Split, data_root: Path, keys: ContentKeys | None = None,
              current: str | None = None) -> bool:
    """Whether a record's fingerprint names this split's files as they are now (``current``:
    the split's content fingerprint, if already computed)."""
    if recorded.startswith(CONTENT_PREFIX):
        return recorded == (current or split_fingerprint(split, data_root, keys))
    return recorded == legacy_split_fingerprint(split, data_root)


def manifest_path(data_root: Path, dataset: str) -> Path:
    return Path(data_root) / f".{dataset}_manifest.json"


def write_manifest(data_root: Path, dataset: str, categories: Iterable[str], source: str) -> Path:
    """List every file of the categories just verified and laid out (path under the data root,
    size); written atomically beside them."""
    data_root = Path(data_root)
    files = {}
    for category in categories:
        for path in sorted((data_root / category).rglob("*")):
            if path.is_file():
                files[_relative(path, data_root)] = path.stat().st_size
    return write_text(manifest_path(data_root, dataset), json.dumps(
        {"format": MANIFEST_FORMAT, "dataset": dataset, "source": source, "files": files},
        indent=0))


def matches_manifest(split: Split, data_root: Path) -> bool | None:
    """Whether every file of the split is in its dataset's verified-download manifest with the
    same size; None when the data root has no manifest (the data was put there by hand)."""
    path = manifest_path(data_root, split.dataset)
    if not path.is_file():
        return None
    try:
        files = json.loads(path.read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return all(files.get(name) == size for name, size in split_files(split, data_root))
