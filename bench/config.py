"""Configs: the machinery every method's config goes through, and the configs methods on a
backbone share.

A method's config is a frozen dataclass beside the method (DifferNet's in
``bench/differnet/config.py``, each baseline's in its module): every paper hyperparameter a
named default with the paper section it comes from, so the ``paper`` preset is the defaults and
the other presets are named overrides a method declares. Here: ``resolve_config`` (defaults,
then the preset by the one fallback rule, then the user's overrides), ``config_hash`` and
``differences_from_paper`` (a cell's identity and its departures, runtime fields left out), the
checks of ``--set`` and suite values against each field's type (``Literal`` choices included),
and ``BackboneConfig`` with the pooled pipeline's ``FeatureConfig`` and the feature maps'
``SpatialConfig``. Every record stores the fully resolved config plus the preset name, so a
reduced run can never pass for the paper's configuration.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bench.errors import BenchError

# String fields with a fixed set of values are Literal types: a --set or suite value outside
# the set is refused with the other checks, before any cell runs (``check_override_types``).
Engine = Literal["auto", "torch", "onnxruntime", "openvino"]
Precision = Literal["fp32", "bf16", "fp16"]
ResizeMode = Literal["bilinear", "bicubic", "nearest", "area"]
Interpolation = Literal["bilinear", "bicubic", "nearest"]


@dataclass(frozen=True)
class BackboneConfig:
    """What every method on a frozen ImageNet backbone sets: which backbone, its input size, and
    how the frozen extractor runs. Each method's config gives the first two its own paper's
    defaults (``FeatureConfig``, ``SpatialConfig``)."""

    backbone: str
    image_size: int
    # How the frozen extractor runs (bench/features/engines.py); no paper hyperparameter. The
    # engine changes features only at float rounding (1e-6 relative), so it is not part of a
    # cell's identity (RUNTIME_FIELDS); reduced precision changes them by a few percent, so it is.
    extractor_engine: Engine = "auto"  # speed only; auto picks by device
    extractor_precision: Precision = "fp32"  # fp16 on CUDA only; fp32 is the papers'
    extract_batch_size: int = 16  # throughput only (and memory: the engine holds a batch of activations)


@dataclass(frozen=True)
class FeatureConfig(BackboneConfig):
    """The shared feature pipeline of DifferNet, OCSVM and 1-NN (Sec. 3, Fig. 2, Sec. 4.2-4.3)."""

    backbone: str = "alexnet"  # Sec. 4.2: convolutional part of AlexNet, ImageNet weights, frozen
    image_size: int = 448  # Sec. 4.2: largest input size 448 x 448
    # Which depth of the backbone gives the features (None: its default; AlexNet: all of
    # ``features``, as Sec. 4.2). Only the offline EfficientNet-Lite0 has a choice (1-7).
    backbone_stage: int | None = None
    scales: tuple[int, ...] = (448, 224, 112)  # Sec. 4.2: 3 scales -> 3 x 256 = 768 features
    downscale_mode: ResizeMode = "bilinear"  # paper silent; the original code used nearest (F.interpolate)
    rotation_degrees: float = 360.0  # Sec. 4.2: rotations uniform in [0, 2 pi]
    # "uniform": Sec. 4.2's angles; "right_angles" (ours, for the offline backbone): multiples
    # of 90 degrees, each image cycling through them, so no black corners enter the features.
    rotation_mode: Literal["uniform", "right_angles"] = "uniform"
    # Sec. 4.2: brightness and contrast factors uniform in [0.85, 1.15], for MTD only.
    # None = decided by the dataset (DatasetSpec.photometric); True/False forces it.
    photometric: bool | None = None
    photometric_range: tuple[float, float] = (0.85, 1.15)  # Sec. 4.2
    rotation_interpolation: Interpolation = "bilinear"  # paper silent; torchvision's RandomRotation: nearest
    multi_scale: bool = True  # Table 3 (A, B: off)
    train_transforms: bool = True  # Table 3 (A, C: off)
    n_test_transforms: int = 64  # Sec. 4.5, Table 3 G: 64 (1 = the untransformed image only)
    test_transform_mode: Literal["random", "even"] = "random"  # random draws as the original code; "even": evenly spaced rotations
    # Ours: training transforms are drawn once per image and their features kept in a bank, since
    # the extractor is frozen. "recompute" draws fresh transforms every epoch as the original code.
    feature_mode: Literal["bank", "recompute"] = "bank"
    n_bank_transforms: int = 64  # transforms per training image in the bank (ours)


@dataclass(frozen=True)
class SpatialConfig(BackboneConfig):
    """The backbone's feature maps the patch-level methods read (PatchCore, PaDiM, CS-Flow);
    each method's config sets these defaults from its own paper."""

    backbone: str = "wide_resnet50_2"  # overridden per method with its paper's backbone
    image_size: int = 224  # the backbone's input side (after the crop)
    # Decoded at ``resize`` x ``resize`` and centre-cropped to ``image_size`` (PatchCore's and
    # PaDiM's protocol); None: resized straight to ``image_size`` (the whole image is seen).
    resize: int | None = 256
    # Which stages: for each stride, the last stage whose maps are this many times smaller than
    # the input (the output of a resolution's last block: WideResNet-50's layer1-4 are strides
    # 4, 8, 16, 32; EfficientNet-Lite0's stages 2, 3, 5, 7); ``stages`` names them outright.
    feature_strides: tuple[int, ...] = (8, 16)
    stages: tuple[int, ...] | None = None


def padded_input(config: Any) -> str | None:
    """What is wrong when a config decodes its images smaller than the crop it asks for (the
    crop then pads them with black borders, e.g. ``resize=224`` under a 320 px preset), or
    None."""
    resize, size = getattr(config, "resize", None), getattr(config, "image_size", None)
    if resize is None or size is None or resize >= size:
        return None
    return (f"resize={resize} is smaller than image_size={size}, so the centre crop pads every "
            f"image with black borders; set both, e.g. image_size={resize} resize={resize} "
            "(no crop) or image_size=224 resize=256 (the paper's crop).")


REDUCED_PRESETS = frozenset({"fast", "cpu", "tiny"})

# The one preset rule. A method declares the presets it has (``register_method(presets=...)``,
# at least ``paper``); asked for one it lacks, it runs the preset this chain leads to, so one
# ``--preset`` runs a whole suite, and the record says which preset each method ran
# (``Record.preset_applied``). ``cpu`` is the best a 2-core CPU affords and ``tiny`` is for
# tests: a method with no such preset of its own runs its ``fast`` one; ``code`` (the original
# code's values where they differ from the paper text) is the paper's where a method has none.
PRESET_FALLBACK: dict[str, str] = {"cpu": "fast", "tiny": "fast", "fast": "paper",
                                   "code": "paper"}
KNOWN_PRESETS = ("paper", *PRESET_FALLBACK)


def applied_preset(presets: Mapping[str, Any], preset: str) -> str:
    """The preset a method with ``presets`` runs when asked for ``preset``.

    >>> applied_preset({"paper": {}, "fast": {}}, "cpu")
    'fast'
    >>> applied_preset({"paper": {}}, "code")
    'paper'
    """
    name = preset
    while name not in presets:
        if name not in PRESET_FALLBACK:
            known = sorted({*KNOWN_PRESETS, *presets}, key=lambda p: (p not in KNOWN_PRESETS, p))
            raise BenchError(f"unknown preset {preset!r}; choose one of {', '.join(known)}.")
        name = PRESET_FALLBACK[name]
    return name


# Fields that change how fast a result is computed, not the result: left out of a config's
# hash (a cell's identity) and of its departures from the paper.
RUNTIME_FIELDS = frozenset({"extractor_engine", "extract_batch_size"})


def config_from_dict(cls: type, values: dict[str, Any]) -> Any:
    """Build ``cls`` from plain values (lists become tuples), rejecting unknown names."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise BenchError(
            f"unknown option(s) {', '.join(sorted(unknown))} for {cls.__name__}; "
            f"valid ones are {', '.join(sorted(names))}."
        )
    clean = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    return cls(**clean)


def resolve_config(
    config_cls: type, presets: dict[str, dict[str, Any]], preset: str, overrides: dict[str, Any]
) -> Any:
    """The paper defaults, then the preset's overrides (``applied_preset``'s rule for a preset
    the method lacks), then the user's overrides."""
    values = {**presets[applied_preset(presets, preset)],
              **{k: v for k, v in overrides.items() if v is not None}}
    return config_from_dict(config_cls, values)


def field_types(config_cls: type) -> dict[str, Any]:
    """Each field of a config dataclass and its (evaluated) type annotation."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}


def type_name(annotation: Any) -> str:
    """``int``, ``tuple[int, ...]``, ``int | None``: how a field's type reads in a message."""
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(map(str, typing.get_args(annotation)))
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def value_fits(value: Any, annotation: Any) -> bool:
    """Whether a plain value (as TOML gives it: lists, not tuples) fits a field's type. An int
    fits a float field (the numeric tower); a bool fits only a bool field."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return any(value == arg and type(value) is type(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return any(value_fits(value, arg) for arg in args)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(value_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(value_fits(v, a) for v, a in zip(value, args))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (bool, str):
        return isinstance(value, annotation)
    return True  # Any, or a type the harness does not check


def toml_literal(value: Any) -> str:
    """A value as --set and suite files write it (``true``, ``[448,224,112]``, ``latent_nll``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(toml_literal(v) for v in value) + "]"
    return str(value)


def check_override_types(config_classes: dict[str, type], overrides: dict[str, Any],
                         source: str = "--set") -> None:
    """Fail before any work on an override that no selected method's config has, or whose value
    does not fit the field's type. ``config_classes`` maps method names to config classes; an
    override applies to every method whose config has the field (as the runner applies it)."""
    types_by_method = {m: field_types(cls) for m, cls in config_classes.items()}
    valid = sorted(set().union(*types_by_method.values()))
    methods = ", ".join(config_classes)
    for name, value in overrides.items():
        owners = {m: t[name] for m, t in types_by_method.items() if name in t}
        if not owners:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise BenchError(f"{source}: no config field {name!r} in the methods {methods}; "
                             f"{hint}valid names are {', '.join(valid)}.")
        for method, annotation in owners.items():
            if not value_fits(value, annotation):
                default = getattr(config_classes[method](), name)
                spelled = (f"--set {name}=" if source == "--set" else f"{name} = ") + toml_literal(default)
                example = "" if default is None else f"; for example {spelled}"
                raise BenchError(f"{source} {name}: expected {type_name(annotation)}, got "
                                 f"{value!r}{example}.")


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_hash(config: Any) -> str:
    """A short stable hash of a resolved config (part of a result's identity): its class and
    the fields that differ from the class's defaults, runtime fields left out, so adding a field
    with a default keeps every existing hash."""
    default = config_to_dict(type(config)())
    values = {k: v for k, v in config_to_dict(config).items()
              if k not in RUNTIME_FIELDS and v != default[k]}
    blob = json.dumps({"config": type(config).__name__, "fields": values}, sort_keys=True,
                      default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def differences_from_paper(config: Any) -> dict[str, Any]:
    """The fields where ``config`` departs from its class's paper defaults."""
    default = type(config)()
    return {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in RUNTIME_FIELDS and getattr(config, f.name) != getattr(default, f.name)
    }


__all__ = [
    "BackboneConfig", "FeatureConfig", "KNOWN_PRESETS", "SpatialConfig", "PRESET_FALLBACK",
    "padded_input",
    "REDUCED_PRESETS", "RUNTIME_FIELDS", "applied_preset",
    "check_override_types", "config_from_dict", "config_hash", "config_to_dict",
    "differences_from_paper", "field_types", "resolve_config", "toml_literal", "type_name",
    "value_fits",
]
