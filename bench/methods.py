"""Every method the harness knows, found by name.

The explicit import list below is the one place that says which built-in methods exist (as
timm's ``models/__init__.py``): importing a method's module runs its ``@register_method``. A new
method is one module plus one line here.
"""

from __future__ import annotations

# Importing a module registers its methods.
import baselines.adgan  # noqa: F401
import baselines.dsebm  # noqa: F401
import baselines.ganomaly  # noqa: F401
import baselines.geotrans  # noqa: F401
import baselines.knn  # noqa: F401
import baselines.ocsvm  # noqa: F401
import bench.differnet  # noqa: F401
from bench.errors import BenchError
from bench.registry import METHODS, MethodSpec


def get_method(name: str) -> MethodSpec:
    try:
        return METHODS[name]
    except KeyError:
        raise BenchError(
            f"unknown method {name!r}; choose from {', '.join(sorted(METHODS))}."
        ) from None


def available_methods() -> list[str]:
    return sorted(METHODS)
