"""The one interface every method implements, and the registry methods enter by name.

A method is a class with scikit-learn manners: hyperparameters in ``__init__`` (one config
dataclass plus the run context), learned state set in ``fit`` with names ending in ``_``,
``fit`` returns ``self``, ``score`` never refits. Its module decorates it with
``@register_method``; ``bench.methods`` imports every built-in method module once (the explicit
list) and looks methods up. ``DetectorBase`` is the root most methods extend. As timm's
``_registry``, this module imports no method, so no method import can come back to it in a
cycle; it imports only the layers below it: the data (``Sample``, the image cache) and the
store (``CacheLayout``, the cache folders a run shares).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from bench.data.base import Sample
from bench.data.imagecache import ImageCache
from bench.store.results import CacheLayout


@runtime_checkable
class Detector(Protocol):
    """What every method is: the whole contract, for built-in methods and plugins alike.

    - Construction: ``cls(config, context)``: ``config`` an instance of the method's config
      dataclass (its paper defaults, then the preset's and the user's overrides), ``context`` a
      ``RunContext`` (seed, device, cache folder, checkpoint path, progress, ``info``). All
      randomness comes from ``context.seed``: the same cell run twice gives the same scores.
    - ``fit(train)`` gets the defect-free training ``Sample``s of one cell (path, label 0) and
      returns the fitted detector; learned state goes in attributes ending in ``_``, all of it
      set by every ``fit``, so a refit on other data scores as a fresh detector would
      (``DetectorBase.reset``).
    - ``score(test)`` gets ``Sample``s and returns one float per sample, **higher = more
      anomalous**; it never refits and never reads labels. The runner scores the test set (and
      a validation split, if any) with it.
    - Optional, checked with the protocols below (never ``hasattr``): ``localize`` (per-pixel
      maps, ``Localizer``), ``expect`` (``ScoringExpected``), ``loss_history_`` (``Trained``,
      recorded), ``eval_history_`` (``Monitored``). Checkpoints: pass ``context`` to
      ``bench.training.run_training`` and a killed fit resumes. Anything in ``context.info`` is
      stored in the record.
    - Registration: decorate the class with ``register_method`` (name, config class, presets:
      at least ``paper``; optionally its family and the label tables name it by); a built-in
      method is then one import line in ``bench.methods``; a plugin does the same in its own
      package and is found by ``--methods module.path:Class`` or through the entry point group
      ``differnet_bench.methods`` (``bench.methods``).
    """

    def fit(self, train: Sequence[Sample]) -> Detector: ...

    def score(self, test: Sequence[Sample]) -> np.ndarray: ...


@runtime_checkable
class Localizer(Protocol):
    """Optional: per-pixel anomaly maps of the test images, (n, H, W), higher = more anomalous."""

    def localize(self, test: Sequence[Sample]) -> np.ndarray: ...


@runtime_checkable
class ScoringExpected(Protocol):
    """Optional: a detector told before ``fit`` which sample sets ``score`` will get after it
    (in order) may prepare them while it trains; the pooled pipeline extracts their features on
    an engine stream its training leaves idle. What it prepares must be what ``score`` would
    compute, and the fit never reads it."""

    def expect(self, sets: Sequence[Sequence[Sample]]) -> None: ...


@runtime_checkable
class Trained(Protocol):
    """Optional: a method trained in epochs exposes its loss per epoch (recorded)."""

    loss_history_: list


@runtime_checkable
class Monitored(Protocol):
    """Optional: the (epoch, test AUROC) pairs ``RunContext.monitor`` returned during training
    (test-set selection, reported only as such)."""

    eval_history_: list


@runtime_checkable
class Saveable(Protocol):
    """Optional: the learned state can be saved and put back into a new instance of the same
    config (``run --save-models``, ``bench.py predict``)."""

    def get_state(self) -> dict: ...

    def set_state(self, state: dict) -> None: ...


@runtime_checkable
class Predictor(Protocol):
    """Optional: a fitted detector scores images the run never saw (``bench.py predict``).

    ``scores_alone()``: whether an image's score depends on the image and the seed only, not on
    the images scored with it; ``score_new(samples, run_keys)`` scores ``samples`` so, where
    ``run_keys`` are the content keys (``bench.data.content.content_key``) of the test images
    the run scored, in order, so an image among them gets its recorded score exactly. A method
    that is ``Saveable`` and a ``Predictor`` whose ``scores_alone()`` is true is kept by
    ``run --save-models``, whatever it subclasses.
    """

    def scores_alone(self) -> bool: ...

    def score_new(self, samples: Sequence[Sample], run_keys: Sequence[str]) -> np.ndarray: ...


class AttributeState:
    """``Saveable`` by attributes: the learned state is every attribute ending in ``_`` (the
    scikit-learn convention), except those named in ``NOT_SAVED``."""

    NOT_SAVED: ClassVar[frozenset[str]] = frozenset()

    def get_state(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and k not in self.NOT_SAVED}

    def set_state(self, state: dict) -> None:
        vars(self).update(state)


class DetectorBase(AttributeState):
    """The root most methods extend: hyperparameters in ``config``, the run in ``context``;
    the cell seed's independent NumPy streams; the shared decode cache; ``reset``, with which
    every ``fit`` starts, so nothing learned survives a refit; and the ``Predictor`` of a
    method that scores each image on its own. Subclasses write ``fit`` and ``score``.

    ``bench.features.base.BackboneDetector`` extends it for the methods on a frozen backbone,
    ``baselines.common.ImageBaseline`` for those that learn from the images themselves."""

    def __init__(self, config: Any, context: RunContext | None = None):
        self.config = config
        self.context = context or RunContext()

    def _rng(self, stream: int) -> np.random.Generator:
        """The cell seed's stream ``stream``: independent of every other stream, and of the
        global random state, which nothing here touches."""
        return np.random.default_rng([self.context.seed, stream])

    def images(self) -> ImageCache:
        """The decode cache shared by the run's cells (in memory only without a cache folder)."""
        caches = self.context.caches
        return ImageCache(None if caches is None else caches.images)

    def reset(self) -> None:
        """Forget what an earlier ``fit`` learned (every attribute ending in ``_`` but the
        ``NOT_SAVED`` ones, which are not learned): the first step of every ``fit``, so a refit
        on other data scores as a fresh detector fitted on that data."""
        for name in [k for k in vars(self) if k.endswith("_") and k not in self.NOT_SAVED]:
            delattr(self, name)

    # -- bench.registry.Predictor --------------------------------------------------------------
    def scores_alone(self) -> bool:
        """Whether an image's score depends on that image and the seed only, not on the images
        scored with it: then a saved model scores a new image as the run scored its test set."""
        return True

    def score_new(self, samples: Sequence[Sample], run_keys: Sequence[str]) -> np.ndarray:
        """An image is scored the same wherever it comes (``scores_alone``), so the run's test
        images need no special treatment."""
        return self.score(samples)


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

    @property
    def caches(self) -> CacheLayout | None:
        """The cache folders under ``cache_dir`` (None: nothing is cached on disk)."""
        return None if self.cache_dir is None else CacheLayout(Path(self.cache_dir))


@dataclass(frozen=True)
class MethodSpec:
    name: str
    cls: type
    config_cls: type
    presets: dict[str, dict[str, Any]]
    paper_name: str | None  # column name in the paper's Tables 1 and 2
    uses_backbone: bool  # whether --backbone applies
    note: str = ""  # e.g. that a method follows a different paper than the one cited
    # Which family it belongs to: "paper" (the DifferNet paper's seven), "today" (the methods
    # that replaced them), None (a plugin, unless it says). --methods paper / today and suites
    # that name a family (methods = ["paper", "today"]) run a built-in method by it.
    family: str | None = None
    # How tables and figures name it (its paper's spelling: "1-NN", "PatchCore"); records keep
    # it (info["method_label"]), so the report needs no import of the method.
    label: str = ""
    # A method from outside this repository: where it was loaded from ("module:Class") and the
    # version of the package that provides it (bench.methods); None for built-in methods.
    source: str | None = None
    version: str | None = None


METHODS: dict[str, MethodSpec] = {}


def register_method(
    name: str,
    *,
    config_cls: type,
    presets: dict[str, dict[str, Any]],
    paper_name: str | None,
    uses_backbone: bool = False,
    note: str = "",
    family: str | None = None,
    label: str | None = None,
) -> Callable[[type], type]:
    """The class decorator that makes a method known by ``name``; ``label`` defaults to the
    paper's column name, else ``name``."""

    def decorate(cls: type) -> type:
        METHODS[name] = MethodSpec(name, cls, config_cls, presets, paper_name, uses_backbone, note,
                                   family, label or paper_name or name)
        return cls

    return decorate
