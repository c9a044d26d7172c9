"""The data checks behind the report (``bench.store.checks``, as ``bench.py check`` and ``run``
stored them): which checks to show, and the warning a table carries when the data behind its
records was flagged. Reads stored JSON only, never the data or a backbone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from bench.store.checks import flagged
from bench.store.results import Record

DATA_CHECKS_TITLE = "Data checks"


def flag_text(check: dict[str, Any]) -> str:
    """What a check flagged, in a few words: "1 error (leakage), 2 warnings (mask)"."""
    parts = []
    for severity in ("error", "warning"):
        found = [f for f in check["findings"] if f["severity"] == severity]
        if found:
            kinds = Counter(f["kind"] for f in found)
            parts.append(f"{len(found)} {severity}{'s' if len(found) != 1 else ''} ("
                         + ", ".join(kinds) + ")")
    return ", ".join(parts)


def data_flags(records: Iterable[Record], checks: dict[str, dict[str, Any]]) -> list[str]:
    """One line per flagged check behind ``records`` (their ``data_check``)."""
    used = sorted({r.data_check for r in records if r.data_check})
    out = []
    for fingerprint in used:
        check = checks.get(fingerprint)
        if check is not None and flagged(check):
            out.append(f"{check['dataset']}/{check['category']} has {flag_text(check)} "
                       f"(see '{DATA_CHECKS_TITLE}')")
    return out


def shown_checks(records: Iterable[Record], checks: dict[str, dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """The checks the records name; with none named, the newest check of each dataset
    category in the store (a store where only ``bench.py check`` ran)."""
    named = [checks[f] for f in sorted({r.data_check for r in records if r.data_check})
             if f in checks]
    if named:
        return sorted(named, key=lambda c: (c["dataset"], c["category"], c["fingerprint"]))
    newest: dict[tuple, dict[str, Any]] = {}
    for check in checks.values():
        key = (check["dataset"], check["category"], check.get("split_variant"))
        if key not in newest or str(check.get("created_at")) > str(newest[key].get("created_at")):
            newest[key] = check
    return [newest[k] for k in sorted(newest, key=str)]
