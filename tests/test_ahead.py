"""Features extracted ahead, while the flow trains, are the features scoring would extract."""

from __future__ import annotations

import importlib.util
import time

import numpy as np
import pytest
import torch

import bench.features.engines as engines_module
from bench.config import resolve_config
from bench.data import load_split
from bench.differnet import DifferNet
from bench.differnet.config import PRESETS, DifferNetConfig
from bench.registry import RunContext, ScoringExpected

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or torch.get_num_threads() < 2,
    reason="needs ONNX Runtime and two threads (one engine stream beside the training)")


@pytest.fixture(autouse=True)
def fresh_engines():
    """The shared engine is made with the number of streams of its time: made anew here."""
    engines_module._shared_engine.cache_clear()
    yield
    engines_module._shared_engine.cache_clear()


def config() -> DifferNetConfig:
    return resolve_config(DifferNetConfig, PRESETS, "tiny",
                          dict(backbone="random", extractor_engine="onnxruntime"))


def test_features_ahead_are_the_features_scoring_extracts(synthetic_root, monkeypatch):
    monkeypatch.setattr(engines_module, "ORT_STREAMS", 2)
    split = load_split("synthetic", "blobs", synthetic_root)
    plain = DifferNet(config(), RunContext(seed=0))
    plain.fit(split.train)
    expected = plain.features(split.test, plain.test_params(len(split.test)), "test")

    ahead = DifferNet(config(), RunContext(seed=0))
    assert isinstance(ahead, ScoringExpected)
    real_fit_density, seen = ahead._fit_density, {}

    def short_fit_density(bank):  # a training that ends once some images, not all, are done
        deadline = time.monotonic() + 30
        while ahead._ahead.images_done() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        ahead._ahead.stop()
        seen["threads"] = torch.get_num_threads()
        real_fit_density(bank)

    threads = torch.get_num_threads()
    ahead._fit_density = short_fit_density
    ahead.expect([split.test])
    ahead.fit(split.train)
    done = ahead.context.info["features_ahead"]["images"]
    assert 0 < done < len(split.test) * ahead.config.n_test_transforms
    assert seen["threads"] == threads - 1  # one core for the training, one for the stream
    assert torch.get_num_threads() == threads  # given back after the fit
    got = ahead.features(split.test, ahead.test_params(len(split.test)), "test")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    # The flow trained on one thread scores as on two (the same numbers here, bit for bit).
    np.testing.assert_allclose(ahead.score(split.test), plain.score(split.test), rtol=1e-6)


def test_nothing_is_extracted_ahead_without_a_second_stream(synthetic_root, monkeypatch):
    monkeypatch.setattr(engines_module, "ORT_STREAMS", 1)
    split = load_split("synthetic", "blobs", synthetic_root)
    model = DifferNet(config(), RunContext(seed=0))
    model.expect([split.test])
    model.fit(split.train)
    assert "features_ahead" not in model.context.info
