"""Today's methods (PatchCore, PaDiM, CS-Flow): they find the synthetic defects, localize a
defect no intensity reference can find, are saved and predict their recorded scores, run on
few-shot subsets, and their pieces agree with slow independent computations."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import invoke, one_line_error

from baselines.patchcore import greedy_coreset, nearest
from bench.data import load_split
from bench.data.synthetic import make_synthetic
from bench.deploy.models import load_model, predict
from bench.features.backbones import FeatureMaps, build_backbone
from bench.features.engines import build_engine, engine_available
from bench.methods import build_detector, get_method
from bench.metrics import image_auroc
from bench.registry import RunContext
from bench.run.pixel_metrics import evaluate_localization
from bench.run.suites import Suite, plan, resolve_for_dataset
from bench.store.results import ResultsStore

REPO = Path(__file__).resolve().parents[1]
TODAY = ("patchcore", "padim", "csflow")


def tiny(method: str, seed: int = 0, **overrides):
    config = resolve_for_dataset(method, "tiny", "synthetic",
                                 {"backbone": "efficientnet_lite0", **overrides})
    return build_detector(method, config, RunContext(seed=seed))


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = make_synthetic(tmp_path_factory.mktemp("today"), n_train=32, n_test_good=16,
                          n_test_defect=16, size=64)
    return {c: load_split("synthetic", c, root) for c in ("stripes", "blobs")}


@pytest.mark.parametrize("method", TODAY)
def test_each_finds_the_synthetic_defects(method, data):
    for category, split in data.items():
        scores = tiny(method).fit(split.train).score(split.test)
        auroc = image_auroc(np.array([s.label for s in split.test]), scores)
        assert auroc > 0.9, (method, category, auroc)


@pytest.fixture(scope="module")
def smudge(tmp_path_factory):
    """Stripes wiped out over a disc: a change of texture at unchanged intensity, which the
    distance to the mean training image ranks as the most normal region."""
    root = make_synthetic(tmp_path_factory.mktemp("smudge"), categories=("stripes",),
                          n_train=20, n_test_good=8, n_test_defect=8, size=64,
                          defects=("smudge",))
    return load_split("synthetic", "stripes", root)


@pytest.mark.parametrize("method", TODAY)
def test_each_localizes_a_texture_defect(method, smudge):
    detector = tiny(method).fit(smudge.train)
    maps = detector.localize(smudge.test)
    assert maps.shape == (len(smudge.test), 64, 64)
    scores = evaluate_localization(maps, smudge.test, smudge.train)
    assert scores["method"]["pixel_auroc"] > scores["mean_image"]["pixel_auroc"] + 0.1, scores


@pytest.mark.parametrize("method", TODAY)
def test_saved_and_predicted_with_their_recorded_scores(method, synthetic_root, tmp_path):
    short = ["--set", "epochs=2"] if method == "csflow" else []
    result = invoke("run", "--suite", "smoke", "--methods", method, "--categories", "stripes",
                    "--preset", "tiny", *short, "--save-models", "--localize",
                    "--no-progress", "--data-root", str(synthetic_root),
                    "--results-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    (record,) = ResultsStore(tmp_path).records()
    assert record.pixel_auroc is not None and record.pro is not None
    assert record.info["method_family"] == "today"
    model = load_model(Path(record.info["model_file"]))
    chosen = [5, 0, 9]
    paths = [synthetic_root / "stripes" / "test" / record.test_files[i] for i in chosen]
    scores = predict(model, paths, show_progress=False)["score"].to_numpy()
    np.testing.assert_allclose(scores, [record.scores[i] for i in chosen], rtol=1e-5)
    maps = tmp_path / "maps"
    result = invoke("predict", "--model", record.info["model_file"], str(paths[0]), "--maps",
                    str(maps), "--no-progress")
    assert result.exit_code == 0 and len(list(maps.glob("*.png"))) == 1


def test_families_and_fewshot(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["today"], categories=["blobs"],
                  preset="tiny", backbone="efficientnet_lite0")
    assert [c.method for c in plan(suite, data_root=synthetic_root)] == sorted(TODAY)
    assert len(Suite(name="t", dataset="synthetic", methods=["paper"]).methods) == 7
    result = invoke("fewshot", "--suite", "smoke", "--shots", "8", "--runs", "1", "--methods",
                    "patchcore,padim", "--categories", "blobs", "--preset", "tiny",
                    "--no-progress", "--data-root", str(synthetic_root),
                    "--results-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    records = ResultsStore(tmp_path).records()
    assert {(r.method, r.shots, r.n_train) for r in records} == {("patchcore", 8, 8),
                                                                 ("padim", 8, 8)}


def test_paper_backbone_without_weights_is_one_line_before_anything_runs(synthetic_root,
                                                                         tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*_args, **_kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr("torch.hub.download_url_to_file", offline)
    result = invoke("run", "--suite", "smoke", "--methods", "patchcore", "--preset", "paper",
                    "--backbone", "wide_resnet50_2", "--no-progress", "--data-root",
                    str(synthetic_root), "--results-dir", str(tmp_path / "r"))
    line = one_line_error(result)
    assert "wide_resnet50_2" in line and "--backbone efficientnet_lite0" in line
    assert not (tmp_path / "r" / "records").exists()


# -- the pieces, against slow independent computations ------------------------------------


def test_greedy_coreset_adds_the_farthest_point_each_time():
    bank = torch.from_numpy(np.random.default_rng(3).normal(size=(300, 6)).astype(np.float32))
    chosen = greedy_coreset(bank, 25, dim=64, rng=np.random.default_rng(0))  # no projection
    points = bank.double().numpy()
    slow = [int(chosen[0])]
    for _ in range(24):
        gaps = np.min(np.linalg.norm(points[:, None] - points[slow][None], axis=-1), axis=1)
        slow.append(int(np.argmax(gaps)))
    assert chosen.tolist() == slow


def test_nearest_and_the_reweighting_of_eq7():
    rng = np.random.default_rng(1)
    memory = torch.from_numpy(rng.normal(size=(50, 4)).astype(np.float32))
    queries = torch.from_numpy(rng.normal(size=(33, 4)).astype(np.float32))
    dist, index = nearest(queries, memory, chunk=7, k=3)
    full = torch.cdist(queries.double(), memory.double())
    expected, where = full.topk(3, largest=False)
    np.testing.assert_allclose(dist.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
    assert torch.equal(index, where)
    nearest_one, at = nearest(queries, memory, chunk=7)  # k = 1: a minimum, not topk
    np.testing.assert_allclose(nearest_one.numpy(), expected[:, :1].numpy(), rtol=1e-5, atol=1e-5)
    assert torch.equal(at, where[:, :1])


def slow_delong(labels, a, b):
    """DeLong et al. (1988) from the Mann-Whitney kernel, pair by pair (O(m n) loops)."""
    pos, neg = np.where(labels == 1)[0], np.where(labels == 0)[0]

    def psi(x, y):
        return 1.0 if x > y else 0.5 if x == y else 0.0

    comps = []
    for s in (a, b):
        v10 = [sum(psi(s[i], s[j]) for j in neg) / len(neg) for i in pos]
        v01 = [sum(psi(s[i], s[j]) for i in pos) / len(pos) for j in neg]
        comps.append((v10, v01))
    auc = [np.mean(c[0]) for c in comps]
    s10 = np.cov([comps[0][0], comps[1][0]])
    s01 = np.cov([comps[0][1], comps[1][1]])
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / len(pos) \
        + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / len(neg)
    z = (auc[0] - auc[1]) / math.sqrt(var)
    return auc[0] - auc[1], math.erfc(abs(z) / math.sqrt(2))


def test_delong_p_value_matches_the_slow_computation():
    from bench.metrics import delong, placements

    rng = np.random.default_rng(7)
    labels = np.array([0] * 9 + [1] * 7)
    a = np.round(rng.normal(size=16) + labels, 1)  # rounded: ties happen
    b = np.round(rng.normal(size=16) + 0.4 * labels, 1)
    pa, pb = placements(labels, a), placements(labels, b)
    diff, se, p = delong(np.stack([pa[0], pb[0]]), np.stack([pa[1], pb[1]]))
    slow_diff, slow_p = slow_delong(labels, a, b)
    assert diff == pytest.approx(slow_diff, abs=1e-12)
    assert p == pytest.approx(slow_p, rel=1e-9)
    assert pa[0].mean() == pytest.approx(image_auroc(labels, a))


def test_compare_command_prints_difference_interval_and_p(tmp_path):
    from bench.store.results import Record

    store = ResultsStore(tmp_path)
    rng = np.random.default_rng(0)
    labels = [0] * 20 + [1] * 20
    files = [f"good/{i}.png" for i in range(20)] + [f"crack/{i}.png" for i in range(20)]
    for method, shift in (("differnet", 2.0), ("patchcore", 0.5)):
        for seed in (0, 1):
            scores = (rng.normal(size=40) + shift * np.array(labels)).tolist()
            store.write(Record(
                cell_id=f"{method}-{seed}", status="ok", method=method, dataset="mtd",
                category="mtd", seed=seed, shots=None, preset="fast", backbone="x",
                variant=None, config={}, config_hash="h", reduced=True,
                auroc=image_auroc(np.array(labels), np.array(scores)), scores=scores,
                labels=labels, test_files=files, n_test=len(files)))
    result = invoke("compare", "--methods", "differnet,patchcore", "--results-dir",
                    str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "p (DeLong)" in result.output and "95% CI low" in result.output
    assert "placements averaged over seeds" in result.output
    assert "two different methods" in one_line_error(
        invoke("compare", "--methods", "knn", "--results-dir", str(tmp_path)))


def test_report_renders_today_without_importing_their_methods(synthetic_root, tmp_path):
    result = invoke("run", "--suite", "smoke", "--methods", "patchcore", "--categories",
                    "blobs", "--preset", "tiny", "--no-progress", "--data-root",
                    str(synthetic_root), "--results-dir", str(tmp_path / "r"))
    assert result.exit_code == 0, result.output
    store = ResultsStore(tmp_path / "r")
    (record,) = store.records()
    # The same scores recorded as if on MTD: its table shows them beside PatchCore's published
    # number; MVTec AD, where nothing of today's ran, is one line, not rows of "not run".
    store.write(dataclasses.replace(record, cell_id=record.cell_id.replace("blobs", "mtd"),
                                    dataset="mtd", category="mtd"))
    code = ("import sys; [sys.modules.__setitem__(m, None) for m in ('baselines', "
            "'baselines.patchcore', 'baselines.padim', 'baselines.csflow', 'bench.methods')]; "
            "from pathlib import Path; from bench.report import build_report; "
            f"r = build_report(Path({str(tmp_path / 'r')!r}), Path({str(tmp_path / 'out')!r})); "
            "print(r.markdown)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    report = (tmp_path / "out" / "report.md").read_text()
    section = report[report.index("## Today's methods on Synthetic defects"):]
    row = next(line for line in section.splitlines() if line.startswith("| PatchCore | blobs"))
    assert f"{100 * record.auroc:.1f}" in row
    mtd = report[report.index("## Today's methods on MTD"):]
    row = next(line for line in mtd.splitlines() if line.startswith("| PatchCore | mtd"))
    assert f"{100 * record.auroc:.1f}" in row and "97.9" in row  # PatchCore's published number
    assert "## Today's methods on MVTec AD" not in report
    assert "Today's methods were not run on MVTec AD (no record)" in report


@pytest.mark.skipif(not engine_available("onnxruntime"), reason="ONNX Runtime not installed")
def test_feature_map_engines_agree():
    backbone = build_backbone("random")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32))
    reference = [m.numpy() for m in FeatureMaps(backbone, (1, 3))(x)]
    for name in ("onnxruntime", "openvino"):
        if engine_available(name):
            outs = build_engine(backbone, name, "cpu", "fp32", maps=(1, 3)).outputs(x)
            for got, want in zip(outs, reference):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert get_method("patchcore").family == "today"


def test_cross_scale_flow_inverts_and_its_log_determinant_is_the_jacobians():
    from baselines.csflow import CrossScaleFlow, CSFlowConfig

    config = CSFlowConfig(n_coupling_blocks=2, hidden=8, kernel_sizes=(3,))
    shapes = [(4, 4), (2, 2), (1, 1)]
    flow = CrossScaleFlow(4, shapes, config, seed=0).double()
    with torch.no_grad():  # leave the identity every block starts as
        for name, p in flow.named_parameters():
            if name.endswith("gamma"):
                p.fill_(0.7)
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, 4, h, w, generator=gen, dtype=torch.float64) for h, w in shapes]
    z, log_jac = flow(xs)
    back, _ = flow.inn(z, rev=True)
    for x, b in zip(xs, back):
        torch.testing.assert_close(b, x)
    sizes = [4 * h * w for h, w in shapes]

    def forward(flat):
        parts = torch.split(flat, sizes)
        out, _ = flow([p.reshape(1, 4, h, w) for p, (h, w) in zip(parts, shapes)])
        return torch.cat([o.flatten() for o in out])

    first = torch.cat([x[0].flatten() for x in xs])
    jacobian = torch.autograd.functional.jacobian(forward, first)
    assert torch.linalg.slogdet(jacobian).logabsdet.item() == pytest.approx(log_jac[0].item())


def test_csflow_bf16_training_runs_its_convolutions_in_bf16_and_is_refused_without_it(
        data, monkeypatch):
    import bench.features.engines as engines
    from bench.errors import BenchError
    from bench.training import check_train_precision

    monkeypatch.setattr(engines, "native_bf16", lambda: False)
    with pytest.raises(BenchError, match="no native bf16"):
        check_train_precision("bf16", "cpu")
    with pytest.raises(BenchError, match="train_precision"):
        tiny("csflow", train_precision="bf16").fit(data["blobs"].train)
    check_train_precision("bf16", "cuda")  # CUDA has it

    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    split = data["blobs"]
    seen: set[torch.dtype] = set()
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: seen.add(out.dtype)
        if isinstance(module, torch.nn.Conv2d) and module.training else None)
    try:
        bf16 = tiny("csflow", train_precision="bf16", epochs=4).fit(split.train)
    finally:
        hook.remove()
    assert seen == {torch.bfloat16}  # every training convolution, and none in fp32
    fp32 = tiny("csflow", epochs=4).fit(split.train)
    assert all(p.dtype == torch.float32 for p in bf16.flow_.parameters() if p.requires_grad)
    assert all(math.isfinite(v) for v in bf16.loss_history_)
    # Rounding, not another method: the same course of training (AUROC on MTD: the benchmark).
    assert bf16.loss_history_ != fp32.loss_history_
    np.testing.assert_allclose(bf16.loss_history_, fp32.loss_history_, atol=1e-3)


def test_csflow_fp32_last_epochs_train_the_end_of_a_bf16_fit_in_fp32(data, monkeypatch):
    import bench.features.engines as engines
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="fp32_last_epochs"):
        tiny("csflow", epochs=4, fp32_last_epochs=5)
    monkeypatch.setattr(engines, "native_bf16", lambda: True)
    dtypes: list[torch.dtype] = []
    hook = torch.nn.modules.module.register_module_forward_hook(
        lambda module, args, out: dtypes.append(out.dtype)
        if isinstance(module, torch.nn.Conv2d) and module.training else None)
    try:
        tiny("csflow", train_precision="bf16", epochs=4, fp32_last_epochs=1).fit(
            data["blobs"].train)
    finally:
        hook.remove()
    per_epoch = len(dtypes) // 4  # every epoch runs the same batches through the same convs
    assert dtypes[:3 * per_epoch] == [torch.bfloat16] * (3 * per_epoch)
    assert dtypes[3 * per_epoch:] == [torch.float32] * per_epoch
