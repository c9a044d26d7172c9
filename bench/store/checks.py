"""Stored data checks: what ``bench.py check`` (and the first step of ``run``) found about one
split of a dataset category, kept as plain JSON in the results folder, one file per check
fingerprint (``ResultsStore.check_path``). A second run on the same data reads it instead of
checking again, records name it (``Record.data_check``), and the report shows it without
importing the check (which needs the data and a backbone).

A check holds ``findings``, each ``{"category", "kind", "severity", "split", "files",
"detail"}`` (and ``values``, the numbers behind it), and ``splits``: one row per folder of the
split (``train``, then each test folder) with its counts, image modes and sizes and the
statistics the shift test compared.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.store.atomic import write_text

log = logging.getLogger(__name__)
CHECK_FORMAT = 1
SEVERITIES = ("error", "warning", "info")
# The kinds of findings, by name: scripts read these names, so they only ever grow.
KINDS = {
    "shift": "test images unlike the training normals (per-image statistics, a two-sample test "
             "on backbone embeddings)",
    "leakage": "the same image, exactly or nearly, in the training set and the test set",
    "duplicate": "the same file content twice within one folder (or in two test folders of one "
                 "label)",
    "near_duplicate": "nearly the same image twice within one folder (or in two test folders "
                      "of one label): standardised 64-pixel thumbnails correlating at 0.995 or "
                      "more",
    "label_conflict": "the same image labelled defect-free in one test folder and defective in "
                      "another",
    "mask": "a ground-truth mask missing, unreadable, of another size, not binary or empty "
            "(or a non-empty mask for a defect-free image)",
    "mixed_images": "grey and colour images (or other modes) mixed within a category",
    "image_mode": "images of a mode read with a loss (16-bit or floating point)",
    "unreadable": "an image that cannot be read",
}
FINDING_FIELDS = ("category", "kind", "severity", "split", "files", "detail")
# A folder's row: its numbers, each a number or null.
ROW_NUMBERS = ("brightness", "contrast", "sharpness", "size", "mmd_p",
               "classifier_auroc")


@dataclass
class Finding:
    """One thing the check found. ``split``: the folder it is about (``train``, or the test
    folder: ``good`` or a defect type), None for the category as a whole."""

    category: str
    kind: str
    severity: str
    split: str | None
    files: list[str]
    detail: str
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_problem(data: Any) -> str | None:
    """What keeps ``data`` from being a stored check, or None."""
    if not isinstance(data, dict):
        return f"holds a {type(data).__name__}, not a data check"
    if data.get("format") != CHECK_FORMAT:
        return f"its format is {data.get('format')!r}, not {CHECK_FORMAT}"
    for name in ("fingerprint", "dataset", "category", "backbone"):
        if not isinstance(data.get(name), str):
            return f"the field {name!r} is missing or not text"
    if not _number(data.get("seconds")):
        return "the field 'seconds' is missing or not a number"
    if not isinstance(data.get("splits"), list) or not all(
            _row_ok(row) for row in data["splits"]):
        return "its 'splits' are not a list of rows (folder, images, modes, sizes, statistics)"
    findings = data.get("findings")
    if not isinstance(findings, list):
        return "its 'findings' are not a list"
    for finding in findings:
        why = _finding_problem(finding)
        if why:
            return why
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_ok(row: Any) -> bool:
    """A folder's row as the CLI and the report read it."""
    if not (isinstance(row, dict) and isinstance(row.get("split"), str)
            and _number(row.get("images"))):
        return False
    counts = [row.get("modes", {}), row.get("channels", {})]
    if not all(isinstance(c, dict) and all(_number(n) for n in c.values()) for c in counts):
        return False
    sizes = [row.get("width", []), row.get("height", [])]
    if not all(isinstance(s, list) and len(s) in (0, 3) and all(map(_number, s)) for s in sizes):
        return False
    return all(row.get(k) is None or _number(row[k]) for k in ROW_NUMBERS)


def _finding_problem(finding: Any) -> str | None:
    if not isinstance(finding, dict) or any(k not in finding for k in FINDING_FIELDS):
        return f"a finding lacks one of {', '.join(FINDING_FIELDS)}"
    if finding["severity"] not in SEVERITIES:
        return f"a finding's severity {finding['severity']!r} is none of {', '.join(SEVERITIES)}"
    if not all(isinstance(finding[k], str) for k in ("category", "kind", "detail")):
        return "a finding's category, kind or detail is not text"
    if not (finding["split"] is None or isinstance(finding["split"], str)):
        return "a finding's split is neither text nor null"
    if not isinstance(finding["files"], list) or not all(isinstance(f, str)
                                                         for f in finding["files"]):
        return "a finding's files are not a list of names"
    return None


def read_check(path: Path) -> dict[str, Any] | None:
    """The stored check at ``path``, or None when there is none or it cannot be used (said in
    one warning line: the check is made again)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        log.warning("the data check %s cannot be read (%s); it is ignored", path, err)
        return None
    why = check_problem(data)
    if why:
        log.warning("the data check %s is not one (%s); it is ignored", path, why)
        return None
    return data


def write_check(path: Path, check: dict[str, Any]) -> Path:
    why = check_problem(check)
    if why:
        raise ValueError(f"not a data check: {why}")
    return write_text(path, json.dumps(finite(check), indent=1, default=str, allow_nan=False))


def finite(value: Any) -> Any:
    """The value with every NaN or infinite number as null (JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def flagged(check: dict[str, Any], severities: tuple[str, ...] = ("error", "warning")
            ) -> list[dict[str, Any]]:
    """The check's findings of those severities."""
    return [f for f in check["findings"] if f["severity"] in severities]
