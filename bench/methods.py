"""Every method the harness knows, found by name.

The explicit import list below is the one place that says which built-in methods exist (as
timm's ``models/__init__.py``): importing a method's module runs its ``@register_method``. A new
method is one module plus one line here; registered in a family, it runs in every suite that
names the family (``methods = ["paper", "today"]``).
"""

from __future__ import annotations

import dataclasses
from importlib import metadata
from typing import Any

# Importing a module registers its methods.
import baselines.adgan  # noqa: F401
import baselines.csflow  # noqa: F401
import baselines.dsebm  # noqa: F401
import baselines.ganomaly  # noqa: F401
import baselines.geotrans  # noqa: F401
import baselines.knn  # noqa: F401
import baselines.ocsvm  # noqa: F401
import baselines.padim  # noqa: F401
import baselines.patchcore  # noqa: F401
import bench.differnet  # noqa: F401
from bench.config import config_from_dict
from bench.errors import BenchError
from bench.plugins import entry_points, load_object
from bench.registry import METHODS, Detector, MethodSpec, RunContext

ENTRY_POINT_GROUP = "differnet_bench.methods"


def get_method(name: str) -> MethodSpec:
    """A built-in method by name, a plugin by ``module.path:Class``, or a plugin installed
    under the entry point group ``differnet_bench.methods``."""
    entry = entry_points(ENTRY_POINT_GROUP).get(name)
    if name in METHODS and (METHODS[name].source is not None or entry is None):
        return METHODS[name]
    if ":" in name:
        return _load(name, name)
    if entry is not None:  # also when its module was imported by other means first
        return _load(name, entry.value)
    raise BenchError(
        f"unknown method {name!r}; choose from {', '.join(available_methods())} (or a family: "
        f"{', '.join(method_families())}), or name a plugin as module.path:Class."
    )


def build_detector(name: str, config: Any, context: RunContext) -> Detector:
    """Method ``name``'s detector for one cell: ``config`` its resolved config, or that config
    as plain values (a saved model's); the runner and ``bench.deploy.models.load_model`` both build
    detectors here."""
    spec = get_method(name)
    if isinstance(config, dict):
        config = config_from_dict(spec.config_cls, config)
    detector = spec.cls(config, context)
    if not isinstance(detector, Detector):
        raise BenchError(f"method {name} does not implement fit and score (the Detector "
                         "protocol in bench/registry.py).")
    return detector


def method_families() -> dict[str, list[str]]:
    """Family name -> its built-in methods, by name (``--methods paper`` or a suite's
    ``methods = ["paper"]``: the DifferNet paper's seven; ``today``: the methods that replaced
    them). A plugin joins no family: a suite or ``--methods`` names it."""
    families: dict[str, list[str]] = {}
    for name in sorted(METHODS):
        if METHODS[name].family and METHODS[name].source is None:
            families.setdefault(METHODS[name].family, []).append(name)
    return families


def expand_methods(names: list[str]) -> list[str]:
    """``names`` with each family name replaced by its methods (duplicates dropped, order kept)."""
    families = method_families()
    out: list[str] = []
    for name in names:
        for method in families.get(name, [name]):
            if method not in out:
                out.append(method)
    return out


def available_methods() -> list[str]:
    """Built-in methods and installed plugins (by entry point name; none is imported)."""
    return sorted({*METHODS, *entry_points(ENTRY_POINT_GROUP)})


def _load(name: str, source: str) -> MethodSpec:
    """Import ``source`` (``module:Class``) and register its method under ``name``, noting where
    it came from and its package's version (records keep both)."""
    module_name = source.partition(":")[0]
    cls = load_object(f"method {name!r}", source)
    spec = next((s for s in METHODS.values() if s.cls is cls), None)
    if spec is None:
        raise BenchError(f"method {name!r}: {source} is not registered; decorate the class with "
                         "bench.registry.register_method (see the Detector docstring).")
    spec = dataclasses.replace(spec, name=name, source=source, version=_version(module_name))
    METHODS[name] = spec
    return spec


def _version(module_name: str) -> str | None:
    top = module_name.split(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
