"""Suites and cells: a suite (a TOML file) expands into cells, one unit of work each.

``load_suite`` reads a suite, ``plan`` expands it into ``Cell``s with every config resolved
once (the paper's defaults, the preset, the suite's and the user's overrides, the dataset's
fields), and each cell knows its id and its departures from the paper's configuration.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.config import (
    applied_preset,
    config_hash,
    differences_from_paper,
    padded_input,
    resolve_config,
)
from bench.data import dataset_categories, ensure_dataset, get_spec
from bench.data.folder import is_category_dir
from bench.data.validation import resolve_validation
from bench.errors import BenchError
from bench.methods import expand_methods, get_method

log = logging.getLogger(__name__)
SUITES_DIR = Path(__file__).parents[1] / "suites"  # package data: bench/suites/*.toml


@dataclass
class Suite:
    """A TOML file: one dataset x categories x methods x seeds x shots, with a preset."""

    name: str
    dataset: str
    methods: list[str]
    categories: list[str] = field(default_factory=list)  # empty: all the dataset offers
    seeds: list[int] = field(default_factory=lambda: [0])
    shots: list[int | None] = field(default_factory=lambda: [None])
    preset: str = "paper"
    backbone: str | None = None
    data_root: str = "data"
    # One of the dataset's split variants (bench.data.base.DatasetSpec.split_variants; MTD:
    # authors, random); None: its default. Suite files written before may say mtd_split.
    split_variant: str | None = None
    # "synthetic": hold out training normals and pair them with synthetic defects of the default
    # recipe mix, so each cell also reports a validation AUROC (bench/data/validation.py);
    # "synthetic-<mix>" names a mix (v1, v2); None: no validation split. Cells carry the mix's
    # version (``validation_value``: "synthetic" for v1, "synthetic-v2" after).
    validation: str | None = None
    # Config fields set for every method that has them; a table named after a method
    # (``[overrides.differnet]``) sets fields of that method only.
    overrides: dict[str, Any] = field(default_factory=dict)
    # How a generated dataset is made (synthetic: bench.data.synthetic.OPTIONS); used only when
    # its categories are not on disk yet.
    dataset_options: dict[str, Any] = field(default_factory=dict)
    # Named config variants run side by side (e.g. Table 3's A-G): name -> overrides.
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Defaults for how the cells run (bench.run.executors.ExecutorOptions' fields: kind, jobs,
    # partition, time_min, gpus, cpus, mem_gb, array_parallelism, sbatch); options win.
    executor: dict[str, Any] = field(default_factory=dict)
    # Where finished cells are also logged (bench.run.tracking.TrackingOptions' fields: backend,
    # uri, experiment); ``run --track`` wins. Empty: the results store alone.
    tracking: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        # A family name (paper, today) stands for its methods.
        self.methods = expand_methods(list(self.methods))

    def general_overrides(self) -> dict[str, Any]:
        """The overrides for every method that has the field."""
        return {k: v for k, v in self.overrides.items() if k not in self.scoped_overrides()}

    def scoped_overrides(self) -> dict[str, dict[str, Any]]:
        """Method name -> the overrides for that method only."""
        return {k: v for k, v in self.overrides.items()
                if k in self.methods and isinstance(v, dict)}


def available_suites() -> list[str]:
    return sorted(p.stem for p in SUITES_DIR.glob("*.toml"))


def load_suite(name_or_path: str) -> Suite:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise BenchError(
            f"unknown suite {name_or_path!r}; choose one of {', '.join(available_suites())} "
            "or pass a path to a .toml file."
        )
    data = tomllib.loads(path.read_text())
    data.setdefault("name", path.stem)
    if "mtd_split" in data:  # the key's name before split variants were a dataset's own
        data.setdefault("split_variant", data.pop("mtd_split"))
    data["shots"] = [None if s == "all" else int(s) for s in data.get("shots", ["all"])]
    try:
        return Suite(**data)
    except TypeError as err:
        raise BenchError(f"suite file {path} has an unknown key ({err}); fix the file.") from None


@dataclass(frozen=True)
class Cell:
    """One unit of work; its id names its record."""

    dataset: str
    category: str
    method: str
    seed: int
    shots: int | None
    preset: str
    backbone: str | None
    config: Any
    data_root: Path
    split_variant: str | None = None  # None: the dataset's default
    variant: str | None = None
    validation: str | None = None
    # Config fields that differ from the paper's configuration on this dataset (set by plan).
    departures: dict[str, Any] = field(default_factory=dict, compare=False)
    # The preset the method ran for ``preset`` (config.applied_preset; set by plan).
    preset_applied: str | None = field(default=None, compare=False)
    # The suite that planned the cell (a tracker's experiment name); not part of its identity.
    suite: str | None = field(default=None, compare=False)

    @property
    def recorded_split_variant(self) -> str | None:
        """The split variant as records and tables carry it: only for a dataset that has
        several (None elsewhere)."""
        spec = get_spec(self.dataset)
        return spec.split_variant(self.split_variant) if spec.has_split_variants else None

    @property
    def cell_id(self) -> str:
        parts = [self.method, self.category, f"shots-{self.shots or 'all'}", f"seed-{self.seed}",
                 self.preset]
        if self.variant:
            parts.append(f"variant-{self.variant}")
        if self.backbone:
            parts.append(self.backbone)
        if self.split_variant not in (None, get_spec(self.dataset).default_split_variant):
            parts.append(f"split-{self.split_variant}")
        if self.validation:
            parts.append(f"val-{self.validation}")
        parts.append(config_hash(self.config))
        return "__".join(parts)


def resolve_for_dataset(method: str, preset: str, dataset: str, overrides: dict[str, Any]) -> Any:
    """The method's config for this preset, with dataset-dependent fields filled in."""
    spec = get_method(method)
    config = resolve_config(spec.config_cls, spec.presets, preset, overrides)
    if getattr(config, "photometric", False) is None:
        config = dataclasses.replace(config, photometric=get_spec(dataset).photometric)
    return config


def _categories_on_disk(dataset: str, root: Path) -> list[str] | None:
    """For a fixed-category dataset of which only some categories were extracted under the
    root, those categories (used as they are, nothing downloaded); else None."""
    known = get_spec(dataset).categories
    if not known:
        return None
    present = [c for c in known if is_category_dir(root / c)]
    if present and len(present) < len(known):
        log.warning("%s: using the %d categories found under %s (%s); pass --categories to get "
                    "others", dataset, len(present), root, ", ".join(present))
    return present or None


def plan(suite: Suite, *, data_root: Path | None = None) -> list[Cell]:
    """Expand a suite into cells (datasets are fetched first if they are missing)."""
    validation = resolve_validation(suite.validation)  # synthetic: the default recipe mix
    root = Path(data_root or suite.data_root)
    split_variant = get_spec(suite.dataset).split_variant(suite.split_variant)  # checked early
    categories = suite.categories or _categories_on_disk(suite.dataset, root)
    ensure_dataset(suite.dataset, root, categories, suite.dataset_options)
    categories = categories or dataset_categories(suite.dataset, root)
    variants = suite.variants or {None: {}}
    fields = {m: {f.name for f in dataclasses.fields(get_method(m).config_cls)} for m in suite.methods}
    # An override (--set, a suite's [overrides]) goes to the methods whose config has that
    # field, so `--set epochs=10` works for a suite that also runs 1-NN; a name no selected
    # method knows is still an error (a typo).
    known = set().union(*fields.values()) if fields else set()
    unknown = set(suite.general_overrides()).union(*variants.values()) - known
    scoped = suite.scoped_overrides()
    unknown |= {f"{m}.{k}" for m, values in scoped.items() for k in values if k not in fields[m]}
    if unknown:
        raise BenchError(f"unknown option(s) {', '.join(sorted(unknown))} for the methods "
                         f"{', '.join(suite.methods)}; `python bench.py list` shows the methods.")
    cells = []
    for category in categories:
        for method in suite.methods:
            spec = get_method(method)
            for variant, variant_overrides in variants.items():
                overrides = {k: v for k, v in {**suite.general_overrides(),
                                               **scoped.get(method, {}), **variant_overrides}.items()
                             if k in fields[method]}
                if spec.uses_backbone and suite.backbone:
                    overrides["backbone"] = suite.backbone
                config = resolve_for_dataset(method, suite.preset, suite.dataset, overrides)
                if (padded := padded_input(config)) and category == categories[0]:
                    log.warning("%s%s: %s", method, f" ({variant})" if variant else "", padded)
                departures = paper_departures(method, suite.dataset, config)
                backbone = getattr(config, "backbone", None) if spec.uses_backbone else None
                preset_applied = applied_preset(spec.presets, suite.preset)
                for shots in suite.shots:
                    for seed in suite.seeds:
                        cells.append(Cell(suite.dataset, category, method, seed, shots,
                                          suite.preset, backbone, config, root, split_variant,
                                          variant, validation, departures, preset_applied,
                                          suite.name))
    return cells


def paper_departures(method: str, dataset: str, config: Any) -> dict[str, Any]:
    """Config fields that differ from the paper's configuration on this dataset."""
    paper = resolve_for_dataset(method, "paper", dataset, {})
    return {k: v for k, v in differences_from_paper(config).items() if getattr(paper, k) != v}



