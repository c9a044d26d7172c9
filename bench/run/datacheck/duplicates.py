"""The same image twice: exact copies by content (the SHA-256 content keys the image cache and
the data fingerprints use) and near copies by their thumbnails.

Near copies: the Pearson correlation of two images' 64-pixel grey thumbnails, each standardised
(its mean and deviation removed), at least ``NEAR``: not a perceptual hash. Brightness, contrast
and size drop out, so a resized, re-encoded or re-exposed copy stays a copy, but the picture
itself must match, pixel for pixel at that scale. Measured on MTD, ELPV and the synthetic
textures: resized (0.3x to 0.7x), JPEG re-encoded and 15 % darker copies of training images
correlated at 0.995 to 1.0 (one JPEG copy of a noise texture at 0.9949), and no pair above it
was two different objects. A 64-bit perceptual hash (the DCT of a 32-pixel thumbnail) needed a
Hamming distance of 2 to catch the resized MTD copies, and at 2 matched 537 MTD pairs, some
correlating at only 0.73. What stays below: the same object photographed again (MTD holds
each tile under several exposures; above ``NEAR`` only where two exposures nearly agree).

Between the training set and the test set a copy is ``leakage`` (an error: it inflates every
number); within one folder a ``duplicate`` or ``near_duplicate`` (a warning); an image that is
defect-free in one test folder and defective in another a ``label_conflict``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.store.checks import Finding

NEAR = 0.995  # correlation of standardised 64-pixel grey thumbnails
NEAR_SIDE = 64
SHOWN = 5  # pairs named in a finding's sentence (its files list has all)
_BLOCK = 1024


@dataclass(frozen=True)
class Entry:
    """One image as the duplicate search sees it: its folder (``train`` or the test folder),
    its name under the category, its label, its content key."""

    folder: str
    name: str
    label: int
    key: str

    @property
    def train(self) -> bool:
        return self.folder == "train"


def standardised(greys: np.ndarray) -> np.ndarray:
    """Grey thumbnails (N, S, S) -> unit-length rows of their ``NEAR_SIDE`` pixel versions,
    mean removed (a blank image: a zero row, close to nothing)."""
    n, side = len(greys), greys.shape[-1]
    f = side // NEAR_SIDE
    small = greys.reshape(n, NEAR_SIDE, f, NEAR_SIDE, f).mean(axis=(2, 4)).reshape(n, -1)
    small = small - small.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(small, axis=1, keepdims=True)
    return np.divide(small, norm, out=np.zeros_like(small), where=norm > 1e-6)


def near_pairs(rows: np.ndarray, threshold: float = NEAR) -> list[tuple[int, int, float]]:
    """(i, j, correlation) for every i < j whose rows correlate at ``threshold`` or more,
    computed in blocks (memory bounded whatever the number of images)."""
    pairs = []
    for start in range(0, len(rows), _BLOCK):
        corr = rows[start:start + _BLOCK] @ rows.T
        for i, j in zip(*np.nonzero(corr >= threshold)):
            if start + i < j:
                pairs.append((int(start + i), int(j), float(corr[i, j])))
    return pairs


def duplicate_findings(category: str, entries: Sequence[Entry],
                       pairs: Sequence[tuple[int, int, float]]) -> list[Finding]:
    """Findings for exact copies (same content key) and the near ``pairs`` among the rest."""
    exact = defaultdict(list)
    for i, entry in enumerate(entries):
        exact[entry.key].append(i)
    found: dict[tuple[str, str | None, str], list[tuple[Entry, Entry, float | None]]] = \
        defaultdict(list)
    for members in exact.values():
        train = [i for i in members if entries[i].train]
        # A chain names each copy once; every test copy of a training image is leakage of its
        # own (in a chain train -> test -> test the second would read as a test duplicate).
        chain = train if train else members
        for a, b in zip(chain, chain[1:]):
            _sort(found, entries[a], entries[b], None)
        for i in members if train else ():
            if not entries[i].train:
                _sort(found, entries[i], entries[train[0]], None)
    for i, j, corr in pairs:
        if entries[i].key != entries[j].key:
            _sort(found, entries[i], entries[j], corr)
    return [_finding(category, kind, split, how, links)
            for (kind, split, how), links in sorted(found.items(), key=_order)]


def _sort(found: dict, a: Entry, b: Entry, corr: float | None) -> None:
    """File one copy under (kind, split, exact or near)."""
    how = "exact" if corr is None else "near"
    if a.train and not b.train or b.train and not a.train:
        test, train = (b, a) if a.train else (a, b)
        found[("leakage", test.folder, how)].append((test, train, corr))
    elif a.label != b.label:
        normal, defective = (a, b) if a.label == 0 else (b, a)
        found[("label_conflict", None, how)].append((normal, defective, corr))
    elif a.folder == b.folder:
        kind = "duplicate" if corr is None else "near_duplicate"
        found[(kind, a.folder, how)].append((a, b, corr))
    else:
        kind = "duplicate" if corr is None else "near_duplicate"
        found[(kind, None, how)].append((a, b, corr))


def _order(item) -> tuple:
    (kind, split, how), _ = item
    rank = ["leakage", "label_conflict", "duplicate", "near_duplicate"]
    return rank.index(kind), split != "good", str(split), how


def _finding(category: str, kind: str, split: str | None, how: str,
             links: list[tuple[Entry, Entry, float | None]]) -> Finding:
    severity = {"leakage": "error", "label_conflict": "error" if how == "exact" else "warning"}
    what = "exact copies (the same file content)" if how == "exact" else (
        f"near copies (thumbnail correlation >= {NEAR}, brightness, contrast and size ignored)")
    where = {"leakage": f"test images in {split} with {what} in the training set",
             "label_conflict": f"defect-free test images with {what} labelled defective",
             "duplicate": f"images with {what} in the same "
                          + (f"folder ({split})" if split else "label"),
             "near_duplicate": f"images with {what} in the same "
                               + (f"folder ({split})" if split else "label")}[kind]
    joiner = " = " if how == "exact" else " ~ "
    shown = [f"{a.name}{joiner}{b.name}" + ("" if c is None else f" ({c:.4f})")
             for a, b, c in links[:SHOWN]]
    more = f" and {len(links) - SHOWN} more" if len(links) > SHOWN else ""
    first = len({a.name for a, _, _ in links}) if kind in ("leakage", "label_conflict") else len(links)
    files = list(dict.fromkeys(n for a, b, _ in links for n in (a.name, b.name)))
    return Finding(
        category, kind, severity.get(kind, "warning"), split, files,
        f"{first} {where}: {'; '.join(shown)}{more}",
        {"how": how, "pairs": [[a.name, b.name, c] for a, b, c in links]})
