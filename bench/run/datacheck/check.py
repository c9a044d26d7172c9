"""One split checked: what ``bench.py check`` computes, and the first step of ``run``.

``check_split`` reads every image once (header, a thumbnail through the image cache, a backbone
embedding) and returns the check as the store keeps it (``bench.store.checks``): a row per
folder and the findings of ``duplicates``, ``shift`` and ``masks`` with the counts, modes and
sizes. ``stored_check`` returns it from the store when the same data was checked the same way
before (``check_fingerprint``: the split's files and contents, its masks, the backbone, the
check's version), so a second run pays a directory listing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import bench.run.datacheck.duplicates as duplicates
import bench.run.datacheck.images as images
import bench.run.datacheck.masks as masks
import bench.run.datacheck.shift as shift
from bench.data.base import NORMAL, Sample, Split
from bench.data.content import ContentKeys
from bench.data.fingerprint import split_fingerprint
from bench.data.imagecache import ImageCache
from bench.store.checks import CHECK_FORMAT, Finding, finite
from bench.store.results import ResultsStore

# Bump when what the check computes changes: checks stored before are then made again.
CHECK_VERSION = 1
DEFAULT_BACKBONE = "efficientnet_lite0"  # offline; a run's --backbone replaces it
PREFIX = "k1-"


@dataclass(frozen=True)
class CheckOptions:
    backbone: str = DEFAULT_BACKBONE
    device: str = "cpu"
    progress: bool = False


def sample_name(sample: Sample, data_root: Path, category: str) -> str:
    """A file as a finding names it: its path under the category folder (``train/good/x.png``),
    else under the data root."""
    for base in (Path(data_root) / category, Path(data_root)):
        relative = os.path.relpath(sample.path, base)
        if not relative.startswith(".."):
            return Path(relative).as_posix()
    return sample.path.name


def check_fingerprint(split: Split, data_root: Path, keys: ContentKeys, backbone: str) -> str:
    """``k1-`` and 16 hex digits naming what a check depends on: the split's files and their
    contents, its masks' contents, the backbone and the check's version."""
    masks_used = [(s.mask_path or masks.normal_mask(s)) for s in split.test]
    blob = json.dumps({
        "version": CHECK_VERSION, "backbone": backbone, "dataset": split.dataset,
        "category": split.category, "data": split_fingerprint(split, data_root, keys),
        "masks": [None if m is None else [Path(m).name, keys.key(m)] for m in masks_used],
        "settings": settings(),
    }, sort_keys=True)
    return PREFIX + hashlib.sha256(blob.encode()).hexdigest()[:16]


def settings() -> dict[str, Any]:
    """The thresholds a check was made with (stored with it, and part of its fingerprint)."""
    return {"thumbnail": images.THUMB, "near": duplicates.NEAR, "alpha": shift.ALPHA,
            "min_effect": shift.MIN_EFFECT, "min_move": shift.MIN_MOVE,
            "large_move": shift.LARGE_MOVE, "permutations": shift.PERMUTATIONS}


def stored_check(split: Split, data_root: Path, store: ResultsStore, options: CheckOptions,
                 image_cache: ImageCache) -> tuple[dict[str, Any], bool]:
    """The split's check, from the store when this data was checked this way before, else
    computed and stored; and whether it came from the store."""
    fingerprint = check_fingerprint(split, data_root, image_cache.keys, options.backbone)
    image_cache.keys.save()
    found = store.read_check(fingerprint)
    if found is not None:
        return found, True
    # As stored (no NaN or infinity), so the first run prints and writes what later runs read.
    check = finite(check_split(split, data_root, options, image_cache, fingerprint))
    store.write_check(check)
    return check, False


def check_split(split: Split, data_root: Path, options: CheckOptions, image_cache: ImageCache,
                fingerprint: str) -> dict[str, Any]:
    start = time.perf_counter()
    category = split.category
    samples = [*split.train, *split.test]
    folders = ["train"] * len(split.train) + [s.defect for s in split.test]
    names = [sample_name(s, data_root, category) for s in samples]
    headers = [images.header(s) for s in samples]
    thumbs, why = images.thumbnails(samples, image_cache, options.progress)
    readable = [h is not None and t is not None for h, t in zip(headers, thumbs)]
    findings: list[Finding] = []
    broken = [n for n, ok in zip(names, readable) if not ok]
    if broken:
        findings.append(Finding(category, "unreadable", "error", None, broken,
                                f"{len(broken)} image(s) cannot be read and were left out of "
                                f"the check: {', '.join(broken[:5])}"
                                + (f" ({why[0]})" if why else "")))
    keep = [i for i, ok in enumerate(readable) if ok]
    if not keep:
        return _result(split, data_root, options, fingerprint, start, [], findings, False)
    kept_headers = [headers[i] for i in keep]
    greys = np.stack([images.grey(thumbs[i]) for i in keep])
    statistics = images.statistics(greys, kept_headers)
    embedded = images.embeddings([thumbs[i] for i in keep], options.backbone, options.device,
                                 options.progress)
    folder_of = np.array([folders[i] for i in keep])
    test_folders = sorted({str(f) for f in folder_of if f != "train"},
                          key=lambda f: (f != NORMAL, f))
    # Colour by content, as the methods see it (the image cache keeps one channel of a grey
    # image whatever its mode): an RGB file of a grey picture is grey.
    colour = np.array([thumbs[i].shape[0] == 3 for i in keep])
    findings += _image_findings(category, [names[i] for i in keep], folder_of, kept_headers,
                                colour)

    entries = [duplicates.Entry(folders[i], names[i], samples[i].label,
                                image_cache.key(samples[i].path)) for i in keep]
    pairs = duplicates.near_pairs(duplicates.standardised(greys))
    findings += duplicates.duplicate_findings(category, entries, pairs)

    train = folder_of == "train"
    comparisons = [
        shift.compare(f, {k: v[train] for k, v in statistics.items()},
                      {k: v[folder_of == f] for k, v in statistics.items()},
                      embedded[train], embedded[folder_of == f]) for f in test_folders]
    findings += shift.shift_findings(category, comparisons)

    test_sizes = [(h.width, h.height) if h is not None else None
                  for h in headers[len(split.train):]]
    mask_found, has_masks = masks.mask_findings(
        category, split.test, test_sizes, lambda s: sample_name(s, data_root, category))
    findings += mask_found

    rows = _rows(["train", *test_folders], folder_of, kept_headers, statistics, comparisons)
    findings.insert(0, _counts(category, rows))
    return _result(split, data_root, options, fingerprint, start, rows, findings, has_masks)


def _result(split: Split, data_root: Path, options: CheckOptions, fingerprint: str,
            start: float, rows: list[dict[str, Any]], findings: list[Finding],
            has_masks: bool) -> dict[str, Any]:
    """The check as the store keeps it (``bench.store.checks``)."""
    return {
        "format": CHECK_FORMAT, "fingerprint": fingerprint, "version": CHECK_VERSION,
        "dataset": split.dataset, "category": split.category,
        "split_variant": split.meta.get("split_variant"), "data_root": str(data_root),
        "backbone": options.backbone, "settings": settings(), "has_masks": has_masks,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - start, 2),
        "splits": rows, "findings": [f.as_dict() for f in findings],
    }


def _image_findings(category: str, names: list[str], folders: np.ndarray,
                    headers: Sequence[images.Header], colour: np.ndarray) -> list[Finding]:
    """Grey and colour images mixed (``colour``: by content); modes read with a loss."""
    out = []
    if colour.any() and not colour.all():
        minority = colour if colour.sum() <= (~colour).sum() else ~colour
        kind = "colour" if minority is colour else "grey"
        per_folder = Counter(folders[minority])
        files = [n for n, m in zip(names, minority) if m]
        out.append(Finding(
            category, "mixed_images", "warning", None, files,
            f"grey and colour images mixed: {len(files)} of {len(names)} are {kind} ("
            + ", ".join(f"{f}: {n}" for f, n in sorted(per_folder.items()))
            + "); the methods read all as colour, so a grey image differs by its channels alone",
            {"modes": dict(Counter(h.mode for h in headers))}))
    lossy = [n for n, h in zip(names, headers) if h.mode in images.LOSSY_MODES]
    if lossy:
        modes = sorted({h.mode for h in headers if h.mode in images.LOSSY_MODES})
        out.append(Finding(
            category, "image_mode", "warning", None, lossy,
            f"{len(lossy)} image(s) of mode {', '.join(modes)} (16-bit or floating point): "
            "reading them as 8-bit clips every value above 255; convert them to 8 bits first",
            {"modes": modes}))
    return out


def _rows(order: list[str], folders: np.ndarray, headers: Sequence[images.Header],
          statistics: dict[str, np.ndarray], comparisons: list[shift.Comparison]
          ) -> list[dict[str, Any]]:
    by_split = {c.split: c for c in comparisons}
    rows = []
    for split in order:
        chosen = folders == split
        picked = [h for h, c in zip(headers, chosen) if c]
        widths, heights = [h.width for h in picked], [h.height for h in picked]
        row = {"split": split, "images": int(chosen.sum()),
               "modes": dict(Counter(h.mode for h in picked)),
               "channels": {str(c): n for c, n in sorted(Counter(h.channels for h in picked).items())},
               "width": [min(widths), int(np.median(widths)), max(widths)] if picked else [],
               "height": [min(heights), int(np.median(heights)), max(heights)] if picked else []}
        row.update({k: float(np.median(v[chosen])) if chosen.any() else None
                    for k, v in statistics.items()})
        if split in by_split:
            row.update(mmd_p=by_split[split].p_embedding,
                       classifier_auroc=by_split[split].classifier_auroc)
        rows.append(row)
    return rows


def _counts(category: str, rows: list[dict[str, Any]]) -> Finding:
    """The info finding with the counts, modes and sizes (scripts read the JSON list alone)."""
    test = [r for r in rows if r["split"] != "train"]
    modes: Counter = Counter()
    channels: Counter = Counter()
    for r in rows:
        modes.update(r["modes"])
        channels.update(r["channels"])
    sized = [r for r in rows if r["width"]]
    size = (f"{min(r['width'][0] for r in sized)}-{max(r['width'][2] for r in sized)} x "
            f"{min(r['height'][0] for r in sized)}-{max(r['height'][2] for r in sized)} px"
            if sized else "no readable image")
    return Finding(
        category, "counts", "info", None, [],
        f"train {rows[0]['images']}; test " + ", ".join(f"{r['split']} {r['images']}" for r in test)
        + f"; modes {', '.join(f'{m} ({n})' for m, n in modes.most_common())}; channels "
        + ", ".join(f"{c} ({n})" for c, n in sorted(channels.items())) + f"; sizes {size}",
        {"splits": {r["split"]: r["images"] for r in rows}})
