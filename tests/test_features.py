"""The fast feature path computes what the plain per-image PyTorch path computes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from torchvision.transforms import InterpolationMode

import bench.features.engines as engines_module
from bench.config import FeatureConfig
from bench.data import load_split
from bench.data.imagecache import ImageCache, decode_resized
from bench.errors import BenchError
from bench.features.backbones import build_backbone
from bench.features.bank import extract
from bench.features.engines import build_engine, resolve_engine
from bench.features.extractor import MultiScaleExtractor
from bench.features.transforms import apply_transforms, normalize


def per_image_reference(image: torch.Tensor, params: np.ndarray, interpolation: str) -> torch.Tensor:
    """One image, one transform, with torchvision's own functions (what the code did before)."""
    angle, brightness, contrast = (float(p) for p in params)
    out = TF.rotate(image, angle, interpolation=InterpolationMode(interpolation))
    out = TF.adjust_brightness(out, brightness)
    return TF.adjust_contrast(out, contrast)


@pytest.mark.parametrize("interpolation", ["bilinear", "nearest"])
def test_batched_transforms_match_torchvision(interpolation):
    rng = np.random.default_rng(0)
    images = torch.rand(12, 3, 48, 48)
    params = np.stack([
        np.r_[0.0, 90.0, 180.0, 270.0, 360.0, -90.0, rng.uniform(0, 360, 6)],
        np.r_[1.0, 1.0, 1.1, 0.9, 1.0, 1.0, rng.uniform(0.85, 1.15, 6)],
        np.r_[1.0, 0.9, 1.0, 1.15, 1.0, 1.0, rng.uniform(0.85, 1.15, 6)],
    ], axis=1).astype(np.float32)
    config = FeatureConfig(rotation_interpolation=interpolation)
    batched = apply_transforms(images, params, config)
    for i in range(len(images)):
        expected = per_image_reference(images[i], params[i], interpolation)
        if interpolation == "nearest" and params[i, 0] % 90:
            # Nearest neighbour may pick the other pixel where a sample point falls exactly
            # half-way; compare all but a handful of pixels.
            assert (batched[i] - expected).abs().gt(1e-4).float().mean() < 0.01
        else:
            torch.testing.assert_close(batched[i], expected, atol=2e-5, rtol=0)


def test_right_angles_are_exact_permutations():
    image = torch.rand(1, 3, 8, 8)
    out = apply_transforms(image.repeat(4, 1, 1, 1),
                           np.array([[a, 1, 1] for a in (0, 90, 180, 270)], np.float32),
                           FeatureConfig())
    for k in range(4):
        assert torch.equal(out[k], torch.rot90(image[0], k, dims=(-2, -1)))


def test_image_cache_returns_what_decoding_returns(synthetic_root, tmp_path):
    split = load_split("synthetic", "stripes", synthetic_root)
    cache = ImageCache(tmp_path / "images")
    for sample in split.train[:3]:
        first = cache.load(sample.path, 40)
        assert np.array_equal(first, decode_resized(sample.path, 40))
        assert np.array_equal(cache.load(sample.path, 40), first)  # now from disk
    entries = list((tmp_path / "images").rglob("*.npy"))
    assert len(entries) == 3
    # Keyed by content: a copy of a file elsewhere is the same entry.
    copy = tmp_path / "copy.png"
    copy.write_bytes(split.train[0].path.read_bytes())
    cache.load(copy, 40)
    assert len(list((tmp_path / "images").rglob("*.npy"))) == 3


def _reference_features(extractor, images: ImageCache, samples, params, config):
    """Per image and transform, torchvision's functions and the PyTorch extractor."""
    out = []
    with torch.inference_mode():
        for sample, rows in zip(samples, params):
            image = images.load_float(sample.path, config.image_size)
            batch = torch.stack([per_image_reference(image, p, config.rotation_interpolation)
                                 for p in rows])
            out.append(extractor(normalize(batch)).numpy())
    return np.stack(out)


@pytest.mark.parametrize("engine", ["torch", "onnxruntime", "openvino"])
def test_engines_give_the_reference_features(engine, synthetic_root, monkeypatch):
    if importlib.util.find_spec(engine) is None:
        pytest.skip(f"{engine} is not installed")
    config = FeatureConfig(backbone="random", image_size=64, scales=(64, 32, 16),
                           photometric=True, extract_batch_size=5)
    split = load_split("synthetic", "blobs", synthetic_root)
    samples = split.train[:4]
    params = np.stack([np.array([[a, b, c] for a, b, c in zip(
        np.random.default_rng(i).uniform(0, 360, 3), [1.0, 0.9, 1.1], [1.1, 1.0, 0.87])],
        np.float32) for i in range(len(samples))])
    backbone = build_backbone("random")
    images = ImageCache(None)
    features = extract(build_engine(backbone, engine, "cpu", "fp32"), images, samples, params,
                       config)
    expected = _reference_features(MultiScaleExtractor(backbone, config), images, samples,
                                   params, config)
    assert features.shape == (4, 3, 3 * 128)
    rel = np.linalg.norm(features - expected) / np.linalg.norm(expected)
    assert rel < 1e-5
    if engine == "onnxruntime":  # two sessions of one thread each, two batches at once
        monkeypatch.setattr(engines_module, "ORT_STREAMS", 2)
        streamed = extract(build_engine(backbone, engine, "cpu", "fp32"), images, samples,
                           params, config)
        np.testing.assert_array_equal(streamed, features)


def test_auto_engine_falls_back_to_torch_without_the_optional_engines(monkeypatch):
    import bench.features.engines as engines

    monkeypatch.setattr(engines, "engine_available", lambda name: name == "torch")
    assert resolve_engine("auto", "cpu", "fp32") == "torch"
    assert resolve_engine("auto", "cuda", "fp32") == "torch"
    with pytest.raises(BenchError, match="not installed"):
        resolve_engine("onnxruntime", "cpu", "fp32")


def test_engine_errors_are_one_sentence():
    with pytest.raises(BenchError, match="unknown extractor_engine"):
        resolve_engine("tensorrt", "cpu", "fp32")
    with pytest.raises(BenchError, match="cannot run fp16"):
        resolve_engine("torch", "cpu", "fp16")
    with pytest.raises(BenchError, match="CPU only"):
        resolve_engine("onnxruntime", "cuda", "fp32")


def test_grayscale_batches_are_carried_as_one_channel():
    """A grayscale batch (one channel) gives the features inputs its 3-channel copy gives."""
    from bench.features.transforms import draw_transforms, prepare_batch

    config = FeatureConfig(photometric=True)
    gray = (torch.rand(6, 1, 32, 32) * 255).to(torch.uint8)
    params = draw_transforms(config, 6, np.random.default_rng(1))
    params[:2, 0] = [90.0, 0.0]
    one = prepare_batch(gray, params, config, (32, 16, 8))
    three = prepare_batch(gray.expand(-1, 3, -1, -1).contiguous(), params, config, (32, 16, 8))
    for a, b in zip(one, three):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_bf16_is_refused_in_one_line_where_the_cpu_lacks_it(monkeypatch, synthetic_root,
                                                             tmp_path):
    from click.testing import CliRunner

    import bench.features.engines as engines
    from bench.cli import cli

    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    assert resolve_engine("torch", "cpu", "bf16") == "torch"
    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    with pytest.raises(BenchError, match="no native bf16"):
        resolve_engine("torch", "cpu", "bf16")
    assert resolve_engine("torch", "cpu", "fp32") == "torch"  # fp32 is never refused
    result = CliRunner().invoke(cli, [
        "run", "--suite", "smoke", "--methods", "knn", "--categories", "blobs", "--preset",
        "tiny", "--backbone", "random", "--data-root", str(synthetic_root), "--results-dir",
        str(tmp_path), "--set", "extractor_precision=bf16", "--no-progress"])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 2 and len(errors) == 1, result.output
    assert "no native bf16" in errors[0] and not (tmp_path / "records").exists()
    assert "Traceback" not in result.output


@pytest.mark.skipif(not (engines_module.native_bf16() and engines_module.engine_available("openvino")),
                    reason="needs OpenVINO and a CPU with native bf16 (AVX512-BF16 or AMX)")
def test_openvino_runs_bf16_where_the_cpu_has_it():
    backbone, x = build_backbone("random"), torch.rand(4, 3, 64, 64)
    full = build_engine(backbone, "openvino", "cpu", "fp32")([x])
    half = build_engine(backbone, "openvino", "cpu", "bf16")([x])
    rel = np.abs(full - half).max() / np.abs(full).max()
    assert 0 < rel < 0.05  # reduced precision: close, and not the fp32 numbers


class SlowMeans:
    """A stand-in engine: each scale's mean per image, a little slowly, so the producer fills
    every buffer set ahead of it and must wait for the engine to free one."""

    class backbone:  # noqa: N801 - the attribute ``extract`` reads
        channels = 1

    def __call__(self, scaled):
        import time

        time.sleep(0.005)
        return np.stack([x.mean(dim=(1, 2, 3)).numpy() for x in scaled], axis=1)

    def streams(self):
        return [self, self]  # two batches at once, as ONNX Runtime's streams run them


def test_reused_input_buffers_never_change_a_batch_the_engine_has_not_run(synthetic_root):
    """With more batches than buffer sets and two engine streams, every transformed image's
    inputs are what ``prepare_batch`` gives it alone."""
    from bench.features.transforms import draw_transforms, prepare_batch

    config = FeatureConfig(image_size=32, scales=(32, 16), photometric=True,
                           extract_batch_size=2)
    samples = load_split("synthetic", "blobs", synthetic_root).train[:5]
    params = draw_transforms(config, 15, np.random.default_rng(2)).reshape(5, 3, 3)  # 8 batches
    images = ImageCache(None)
    features = extract(SlowMeans(), images, samples, params, config)  # 6 buffer sets
    for i, sample in enumerate(samples):
        image = torch.from_numpy(images.load_compact(sample.path, 32))[None]
        for j in range(3):
            alone = prepare_batch(image, params[i, j:j + 1], config, (32, 16))
            expected = [float(x.mean()) for x in alone]
            np.testing.assert_allclose(features[i, j], expected, rtol=1e-6)


def test_normalised_scales_into_buffers_equal_new_ones():
    from bench.features.transforms import normalized_scales

    images = torch.rand(3, 1, 32, 32)
    buffers = [torch.full((5, 3, s, s), float("nan")) for s in (32, 16)]
    fresh = normalized_scales(images, (32, 16))
    into = normalized_scales(images, (32, 16), out=buffers)
    for a, b, buffer in zip(fresh, into, buffers):
        assert b.shape == (3, 3, *a.shape[-2:]) and b.data_ptr() == buffer.data_ptr()
        assert torch.equal(a, b)
    expected = normalize(images.expand(-1, 3, -1, -1))  # torchvision's normalisation
    torch.testing.assert_close(fresh[0], expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("rotation, downscale", [("bilinear", "bilinear"),
                                                  ("bicubic", "bicubic"), ("nearest", "area")])
def test_batches_prepared_in_reused_temporaries_are_the_same_numbers(rotation, downscale):
    """``prepare_batch`` with one ``Scratch`` over batches of other shapes and transforms (quarter
    turns among them) gives what fresh tensors give, bit for bit."""
    from bench.features.transforms import Scratch, draw_transforms, prepare_batch

    config = FeatureConfig(photometric=True, rotation_interpolation=rotation,
                           downscale_mode=downscale)
    scratch, rng = Scratch(), np.random.default_rng(2)
    for batch, channels, size in [(6, 1, 32), (6, 3, 32), (4, 1, 32), (6, 1, 24), (6, 1, 32)]:
        images = (torch.rand(batch, channels, size, size) * 255).to(torch.uint8)
        params = draw_transforms(config, batch, rng)
        params[:2, 0] = [90.0, 270.0]
        scales = (size, size // 2, size // 4)
        fresh = prepare_batch(images, params, config, scales)
        reused = prepare_batch(images, params, config, scales, scratch=scratch)
        assert all(torch.equal(a, b) for a, b in zip(fresh, reused))


def test_the_faster_grid_and_normalisation_give_the_same_numbers_bit_for_bit():
    """The rotation grid and the normalisation, as written before they were made faster."""
    from bench.features.transforms import (
        IMAGENET_MEAN,
        IMAGENET_STD,
        normalized_scales,
        pixel_centres,
        rotation_grid,
    )

    angles = torch.tensor([0.0, 17.3, 90.0, 211.7, 359.9])
    rad = torch.deg2rad(-angles.double())
    cos, sin = torch.cos(rad).float().view(-1, 1, 1), torch.sin(rad).float().view(-1, 1, 1)
    coords = pixel_centres(40)
    x, y = coords.view(1, 1, 40), coords.view(1, 40, 1)
    assert torch.equal(rotation_grid(angles, 40),
                       torch.stack([cos * x + sin * y, cos * y - sin * x], dim=-1))
    images = torch.rand(4, 1, 40, 40)
    scale = 1.0 / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    shift = -torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * scale
    for got, size in zip(normalized_scales(images, (40, 20)), (40, 20)):
        resized = images if size == 40 else torch.nn.functional.interpolate(
            images, size=(size, size), mode="bilinear", antialias=True)
        assert torch.equal(got, torch.addcmul(shift, resized, scale))


def test_several_engine_streams_always_finish():
    """Streams that end at once never wait on an end mark another stream took (this hung one
    run in a few hundred before it was fixed)."""
    from pathlib import Path

    from bench.data.base import Sample
    from bench.features.transforms import draw_transforms

    class Fast:
        class backbone:  # noqa: N801
            channels = 1

        def __call__(self, scaled):
            return np.stack([x.mean(dim=(1, 2, 3)).numpy() for x in scaled], axis=1)

        def streams(self):
            return [self, self, self]

    class Flat(ImageCache):
        def load_compact(self, path, size):
            return np.full((1, size, size), 7, np.uint8)

    config = FeatureConfig(image_size=8, scales=(8, 4), photometric=True, extract_batch_size=1)
    samples = [Sample(Path(f"/image{i}.png"), 0) for i in range(3)]
    params = draw_transforms(config, 9, np.random.default_rng(0)).reshape(3, 3, 3)
    for _ in range(60):
        assert extract(Fast(), Flat(None), samples, params, config).shape == (3, 3, 2)


def test_untransformed_training_scored_under_transforms_is_warned_of(caplog):
    from bench.features.pipeline import warn_unseen_test_transforms

    with caplog.at_level("WARNING", logger="bench.features.pipeline"):
        assert warn_unseen_test_transforms(FeatureConfig(train_transforms=False, n_test_transforms=4))
        assert "n_test_transforms=1" in caplog.text
        caplog.clear()
        # Table 3 A/C (one test transform) and the transformed default are fine.
        assert not warn_unseen_test_transforms(FeatureConfig(train_transforms=False, n_test_transforms=1))
        assert not warn_unseen_test_transforms(FeatureConfig(n_test_transforms=4))
        assert caplog.text == ""
