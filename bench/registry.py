"""The one interface every method implements, and the registry methods enter by name.

A method is a class with scikit-learn manners: hyperparameters in ``__init__`` (one config
dataclass plus the run context), learned state set in ``fit`` with names ending in ``_``,
``fit`` returns ``self``, ``score`` never refits. Its module decorates it with
``@register_method``; ``bench.methods`` imports every built-in method module once (the explicit
list) and looks methods up. Like timm's ``_registry``, this module is a leaf: it imports no
method, so no method import can come back to it in a cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from bench.data.base import Sample


@runtime_checkable
class Detector(Protocol):
    """What every method is. ``fit`` gets the defect-free training samples of one cell and
    returns the fitted detector; ``score`` gets the test samples and returns one float per
    sample, higher meaning more anomalous; it never refits. Hyperparameters come in through
    the constructor ``(config, context)``; learned state ends in ``_``."""

    def fit(self, train: Sequence[Sample]) -> Detector: ...

    def score(self, test: Sequence[Sample]) -> np.ndarray: ...


@runtime_checkable
class Localizer(Protocol):
    """Optional: per-pixel anomaly maps of the test images, (n, H, W), higher = more anomalous."""

    def localize(self, test: Sequence[Sample]) -> np.ndarray: ...


@runtime_checkable
class Trained(Protocol):
    """Optional: a method trained in epochs exposes its loss per epoch (recorded)."""

    loss_history_: list


@runtime_checkable
class Monitored(Protocol):
    """Optional: the (epoch, test AUROC) pairs ``RunContext.monitor`` returned during training
    (test-set selection, reported only as such)."""

    eval_history_: list


@dataclass
class RunContext:
    """What a detector gets from the runner besides its hyperparameters."""

    seed: int = 0
    device: str = "cpu"
    # Root of the caches shared between cells: decoded images (images/), features (features/).
    cache_dir: Path | None = None
    # Where a long fit may save its state every few epochs, so a killed run resumes there.
    checkpoint: Path | None = None
    checkpoint_every: int = 5  # epochs
    progress: bool = False
    # Called as monitor(detector, epoch) every ``eval_every`` epochs when a config asks for it;
    # the runner uses it to record test AUROC during training (reported as test-set selection).
    monitor: Callable[[Any, int], float] | None = None
    info: dict[str, Any] = field(default_factory=dict)  # extra facts a detector wants recorded


@dataclass(frozen=True)
class MethodSpec:
    name: str
    cls: type
    config_cls: type
    presets: dict[str, dict[str, Any]]
    paper_name: str | None  # column name in the paper's Tables 1 and 2
    uses_backbone: bool  # whether --backbone applies
    note: str = ""  # e.g. that a method follows a different paper than the one cited


METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    *,
    config_cls: type,
    presets: dict[str, dict[str, Any]],
    paper_name: str | None,
    uses_backbone: bool = False,
    note: str = "",
) -> Callable[[type], type]:
    def decorate(cls: type) -> type:
        METHODS[name] = MethodSpec(name, cls, config_cls, presets, paper_name, uses_backbone, note)
        return cls

    return decorate
