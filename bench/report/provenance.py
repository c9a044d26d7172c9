"""The "Behind it" box of every table and figure: which presets, backbones and seeds the rows
behind it come from, and everything that departs from the paper's configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from bench.config import REDUCED_PRESETS
from bench.report.data import NO_SPLIT_VARIANT, PAPER_BACKBONE, ReportData, ok_rows
from bench.report.data_checks import data_flags
from bench.store.results import TABLE_CELL, Record

MIN_SEEDS = 3  # Fig. 7 averages three random subsets; fewer seeds are flagged


@dataclass
class Provenance:
    """Which presets, backbones and seeds lie behind a table or figure, and what departs from
    the paper's configuration."""

    presets: list[str]
    backbones: list[str]
    seeds_min: int
    seeds_max: int
    n_cells: int
    flags: list[str]
    split_variants: list[str] = field(default_factory=list)  # "<dataset> <variant>"
    # Values behind the rows that a test AUROC decided; None: some records predate the check.
    test_choices: list[str] | None = None
    # What the data check flagged about the data behind the rows (bench.report.data_checks).
    data_flags: list[str] = field(default_factory=list)

    def text(self) -> str:
        if not self.n_cells:
            return "No results recorded for this item yet."
        seeds = (
            str(self.seeds_min)
            if self.seeds_min == self.seeds_max
            else f"{self.seeds_min}-{self.seeds_max}"
        )
        line = (
            f"Preset: {', '.join(self.presets)}. Backbone: {', '.join(self.backbones)}. "
            f"Seeds per cell: {seeds} ({self.n_cells} record{'s' if self.n_cells != 1 else ''})."
        )
        if self.split_variants:
            line += f" Split: {', '.join(self.split_variants)}."
        if self.test_choices is None:
            line += " Values chosen on test data: not recorded (records older than the check)."
        else:
            line += f" Values chosen on test data: {', '.join(self.test_choices) or 'none'}."
        return line

    def flag_text(self) -> str:
        if not self.n_cells:
            return ""
        if not self.flags:
            return "Paper's configuration (no departures recorded)."
        return "Not the paper's configuration: " + "; ".join(self.flags) + "."

    def data_text(self) -> str:
        """What the data check flagged about the data behind it ("" when nothing)."""
        return ("Data check: " + "; ".join(self.data_flags) + ".") if self.data_flags else ""


def _short(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "(" + ", ".join(map(str, value)) + ")"
    return str(value)


def _method_notes(records: Iterable[Record]) -> list[str]:
    """What the records say about their methods (e.g. that one follows another paper)."""
    notes = {r.method: r.info.get("method_note") for r in records if r.info.get("method_note")}
    return [f"{m}: {note}" for m, note in sorted(notes.items())]


def _preset_flags(records: list[Record], presets: list[str], expected: set[str]) -> list[str]:
    """What each preset departs from the paper in, as recorded (not as the preset reads today)."""
    changes: dict[str, dict[str, set[str]]] = {}
    for record in records:
        into = changes.setdefault(record.preset, {})
        for key, value in record.departures.items():
            if key not in expected:
                into.setdefault(key, set()).add(_short(value))
    flags = []
    for preset in presets:
        detail = ", ".join(f"{k}={'/'.join(sorted(v))}" for k, v in changes.get(preset, {}).items())
        if preset in REDUCED_PRESETS:
            flags.append(f"reduced preset '{preset}'" + (f" ({detail})" if detail else ""))
        elif detail and preset == "paper":
            flags.append(f"config changes on the 'paper' preset: {detail}")
        elif detail:
            flags.append(f"preset '{preset}' departs from the paper's text: {detail}")
    return flags


def _preset_fallbacks(records: list[Record]) -> list[str]:
    """Methods that ran another preset than the one asked for, as they lack it
    (config.PRESET_FALLBACK; recorded in ``Record.preset_applied``)."""
    ran = sorted({(r.method, r.preset, r.preset_applied) for r in records
                  if r.preset_applied not in (None, r.preset)})
    return [f"{m} ran its '{applied}' preset for '{asked}' (it has no '{asked}')"
            for m, asked, applied in ran]


def values_chosen_on_test(records: list[Record]) -> list[str] | None:
    """The recorded preset values behind ``records`` that were decided on test data."""
    if any("value_origins" not in r.info for r in records):
        return None
    return sorted({f"{o['field']}={o['value']} ({r.preset})" for r in records
                   for o in r.info["value_origins"] if o["decided_on"] == "test"})


def mixes_chosen_on_test(records: list[Record]) -> list[str]:
    """Validation mixes behind the recorded preset values whose own choice read test labels
    (``Mix.chosen_with_test_labels_of``), each with those datasets."""
    from bench.data.defects.mixes import get_mix

    names = sorted({o["mix"] for r in records for o in r.info.get("value_origins", ())
                    if isinstance(o, dict) and o.get("mix")})
    out = []
    for name in names:
        mix = get_mix(name)
        if mix is not None and mix.chosen_with_test_labels_of:
            out.append(f"{name} (chosen with the test labels of "
                       f"{', '.join(mix.chosen_with_test_labels_of)})")
    return out


def _unverified_data(records: list[Record]) -> str:
    """A flag for records whose files did not match a verified download's manifest."""
    mismatched = sum(r.data_verified is False for r in records)
    unknown = sum(r.data_verified is None for r in records)
    parts = []
    if mismatched:
        parts.append(f"{mismatched} of {len(records)} runs on data that does not match the "
                     "verified download (other files or sizes)")
    if unknown:
        parts.append(f"{unknown} of {len(records)} runs on data not checked against a verified "
                     "download (no manifest under its data root: generated, copied by hand, or "
                     "recorded before manifests)")
    return "; ".join(parts)


def provenance(
    data: ReportData, rows: pd.DataFrame, expected: Iterable[str] = (), min_seeds: int = MIN_SEEDS
) -> Provenance:
    """Provenance of the ``ok`` rows; ``expected`` are config fields the experiment itself
    changes (Table 3's variants, the multimodal run's coupling blocks), not flagged."""
    ok = ok_rows(rows)
    if ok.empty:
        return Provenance([], [], 0, 0, 0, [])
    presets = sorted(set(ok["preset"]))
    backbones = sorted(
        {b if isinstance(b, str) else "- (image-based method)" for b in ok["backbone"]}
    )
    seeds = ok.groupby(list(TABLE_CELL), dropna=False)["seed"].nunique()
    records = data.records_of(ok)
    flags = _preset_flags(records, presets, set(expected) | {"backbone"})
    flags += _preset_fallbacks(records)
    flags += _method_notes(records)
    substitutes = [b for b in ok["backbone"].dropna().unique() if b != PAPER_BACKBONE]
    if substitutes:
        flags.append(f"substitute backbone {', '.join(sorted(substitutes))} instead of AlexNet")
    if seeds.min() < min_seeds:
        flags.append(
            f"{seeds.min()} seed{'s' if seeds.min() != 1 else ''} per cell where "
            f"{min_seeds} are wanted (no or a wide confidence interval)"
        )
    unverified = _unverified_data(records)
    if unverified:
        flags.append(unverified)
    chosen = values_chosen_on_test(records)
    if chosen:
        flags.append(f"values chosen on test data: {', '.join(chosen)}")
    mixes = mixes_chosen_on_test(records)
    if mixes:
        flags.append(f"values chosen on the validation mix {', '.join(mixes)}, one level above "
                     "the values")
    splits = sorted({f"{d} {v}" for d, v in zip(ok["dataset"], ok["split_variant"])
                     if v != NO_SPLIT_VARIANT})
    return Provenance(
        presets, backbones, int(seeds.min()), int(seeds.max()), len(ok), flags, splits,
        chosen, data_flags(records, data.checks),
    )
