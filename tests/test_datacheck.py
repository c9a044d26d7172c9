"""The data check on folders built for it: test normals 15 % brighter or darker are a shift (p <
0.01) and the unchanged copy is not; training images copied (or resized) into the test set are
leakage, named; missing, empty and wrongly sized masks are named; grey among colour and 16-bit
images are said; ``run`` checks first (stored per data fingerprint: a second run checks
nothing), ``--strict`` stops before any cell, records name their check, the report shows it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import TINY, invoke
from PIL import Image

from bench.data.folder import load_folder_split
from bench.data.imagecache import ImageCache
from bench.run.datacheck import CheckOptions, check_fingerprint, check_split
from bench.run.datacheck.shift import mmd_permutation_test
from bench.store.results import ResultsStore

SIDE = 96
OPTIONS = CheckOptions(backbone="random")


def texture(rng: np.random.Generator) -> np.ndarray:
    """A smooth picture (a few blobs on a gradient) with a little noise, at one mean grey level
    as under a line's fixed lighting: distinct draws are distinct pictures; a resized copy
    stays the same picture."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    image = 0.3 + 0.2 * (rng.uniform(-1, 1) * xx + rng.uniform(-1, 1) * yy)
    for _ in range(5):
        cy, cx, s = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.15)
        image = image + rng.uniform(0.1, 0.3) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2)
                                                       / (2 * s * s))
    image = image - image.mean() + 0.45
    return np.clip(image + rng.normal(0, 0.01, image.shape), 0, 1)


def save(image: np.ndarray, path: Path, factor: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.stack([image, 0.9 * image, 0.8 * image], axis=-1)
    Image.fromarray((np.clip(rgb * factor, 0, 1) * 255).round().astype(np.uint8)).save(path)


def make_category(root: Path, n_train: int = 40, n_good: int = 25, n_crack: int = 10,
                  seed: int = 0) -> Path:
    """``root/widget``: training and test normals drawn alike, cracks (a dark line) with
    masks."""
    rng = np.random.default_rng(seed)
    category = root / "widget"
    for i in range(n_train):
        save(texture(rng), category / "train" / "good" / f"{i:03d}.png")
    for i in range(n_good):
        save(texture(rng), category / "test" / "good" / f"{i:03d}.png")
    for i in range(n_crack):
        image, mask = texture(rng), np.zeros((SIDE, SIDE), bool)
        row = int(rng.integers(10, SIDE - 10))
        mask[row:row + 3, 10:SIDE - 10] = True
        save(np.where(mask, 0.05, image), category / "test" / "crack" / f"{i:03d}.png")
        path = category / "ground_truth" / "crack" / f"{i:03d}_mask.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask.astype(np.uint8) * 255).save(path)
    return category


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    return make_category(tmp_path_factory.mktemp("clean"))


def copy_of(clean: Path, tmp_path: Path, name: str) -> Path:
    shutil.copytree(clean, tmp_path / name / "widget")
    return tmp_path / name


def check(root: Path, tmp_path: Path) -> dict:
    split = load_folder_split(root, "widget")
    cache = ImageCache(tmp_path / "images")
    return check_split(split, root, OPTIONS, cache,
                       check_fingerprint(split, root, cache.keys, OPTIONS.backbone))


def findings(result: dict, kind: str, split: str | None = "any") -> list[dict]:
    return [f for f in result["findings"]
            if f["kind"] == kind and (split == "any" or f["split"] == split)]


def test_the_unchanged_copy_is_drawn_like_its_training_normals(clean, tmp_path):
    result = check(clean.parent, tmp_path)
    (good,) = findings(result, "shift", "good")
    assert good["severity"] == "info" and good["values"]["mmd_p"] >= 0.01, good
    assert not [f for f in result["findings"] if f["severity"] != "info"], result["findings"]
    assert {r["split"]: r["images"] for r in result["splits"]} == {
        "train": 40, "good": 25, "crack": 10}


@pytest.mark.parametrize("factor", [1.15, 0.85])
def test_test_normals_brighter_or_darker_by_15_percent_are_a_shift(clean, tmp_path, factor):
    root = copy_of(clean, tmp_path, "shifted")
    for path in sorted((root / "widget" / "test").rglob("*.png")):
        image = np.asarray(Image.open(path), dtype=np.float64) / 255
        Image.fromarray((np.clip(image * factor, 0, 1) * 255).round().astype(np.uint8)).save(path)
    result = check(root, tmp_path)
    (good,) = findings(result, "shift", "good")
    assert good["severity"] == "error" and good["values"]["mmd_p"] < 0.01, good
    assert ("darker" if factor < 1 else "brighter") in good["detail"]
    # The defects moved the same way: the whole test set differs, not only its defects.
    assert "the whole test set differs" in good["detail"], good["detail"]


def test_training_images_copied_or_resized_into_test_are_leakage_by_name(clean, tmp_path):
    root = copy_of(clean, tmp_path, "leaky")
    train, test = root / "widget" / "train" / "good", root / "widget" / "test" / "good"
    for i in (3, 7, 11):
        shutil.copy(train / f"{i:03d}.png", test / f"copy_{i}.png")
    shutil.copy(train / "003.png", test / "copy_3_again.png")  # a second copy: leakage too
    with Image.open(train / "020.png") as image:
        image.resize((67, 67), Image.BILINEAR).save(test / "resized.png")
    result = check(root, tmp_path)
    exact, near = sorted(findings(result, "leakage", "good"), key=lambda f: f["values"]["how"])
    assert exact["severity"] == near["severity"] == "error"
    assert {p[0]: p[1] for p in exact["values"]["pairs"]} == {
        **{f"test/good/copy_{i}.png": f"train/good/{i:03d}.png" for i in (3, 7, 11)},
        "test/good/copy_3_again.png": "train/good/003.png"}
    assert [p[:2] for p in near["values"]["pairs"]] == [["test/good/resized.png",
                                                         "train/good/020.png"]]
    assert "test/good/resized.png" in near["files"] and "resized.png" in near["detail"]
    assert not findings(result, "near_duplicate")


def test_missing_empty_and_wrongly_sized_masks_are_named(clean, tmp_path):
    root = copy_of(clean, tmp_path, "masks")
    gt = root / "widget" / "ground_truth" / "crack"
    (gt / "001_mask.png").unlink()
    Image.fromarray(np.zeros((SIDE, SIDE), np.uint8)).save(gt / "002_mask.png")
    Image.fromarray(np.full((SIDE // 2, SIDE // 2), 255, np.uint8)).save(gt / "003_mask.png")
    Image.fromarray(np.full((SIDE, SIDE), 255, np.uint8)).save(gt / "004_mask.png")  # all defect
    result = check(root, tmp_path)
    named = {f["values"]["problem"]: f["files"] for f in findings(result, "mask", "crack")}
    assert named == {"missing": ["test/crack/001.png"], "empty": ["test/crack/002.png"],
                     "size": ["test/crack/003.png"]}


def test_grey_among_colour_and_16_bit_images_are_said(clean, tmp_path):
    root = copy_of(clean, tmp_path, "modes")
    train = root / "widget" / "train" / "good"
    Image.open(train / "000.png").convert("L").save(train / "000.png")
    Image.fromarray(np.full((SIDE, SIDE), 40000, np.uint16)).save(train / "001.png")
    # An RGB file of a grey picture is grey, as the methods see it.
    Image.open(train / "002.png").convert("L").convert("RGB").save(train / "002.png")
    result = check(root, tmp_path)
    (mixed,) = findings(result, "mixed_images")
    assert set(mixed["files"]) == {"train/good/000.png", "train/good/001.png",
                                   "train/good/002.png"}
    (mode,) = findings(result, "image_mode")
    assert mode["files"] == ["train/good/001.png"] and "I;16" in mode["detail"]


def test_the_permutation_test_is_seeded():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(30, 4)), rng.normal(0.3, size=(20, 4))
    assert mmd_permutation_test(a, b) == mmd_permutation_test(a, b)


def darker_test_normals(clean: Path, tmp_path: Path) -> Path:
    """The MVTec screw case: defect-free test images darker than the training images."""
    root = copy_of(clean, tmp_path, "screw")
    for path in sorted((root / "widget" / "test" / "good").glob("*.png")):
        image = np.asarray(Image.open(path), dtype=np.float64) / 255
        Image.fromarray((image * 0.8 * 255).round().astype(np.uint8)).save(path)
    return root


def run_args(root: Path, store: Path, *extra: str) -> list[str]:
    return ["run", "--suite", "folder", "--methods", "knn", "--data-root", str(root),
            "--results-dir", str(store), *TINY, *extra]


def test_run_checks_first_says_the_shift_and_strict_stops_before_any_cell(clean, tmp_path):
    root, store = darker_test_normals(clean, tmp_path), tmp_path / "store"
    strict = invoke(*run_args(root, store, "--strict"))
    assert strict.exit_code == 2 and "Traceback" not in strict.output, strict.output
    assert "widget shift good" in strict.output.splitlines()[-1]
    assert not ResultsStore(store).record_paths()  # no cell ran
    checked = invoke("check", "--suite", "folder", "--data-root", str(root), "--backbone",
                     "random", "--results-dir", str(store), "--strict", "--no-progress")
    assert checked.exit_code == 2 and "test normals are unlike" in checked.output
    ran = invoke(*run_args(root, store))
    assert ran.exit_code == 0, ran.output
    assert "1 error" in ran.output and "test normals are unlike the training normals" in ran.output
    assert "darker" in ran.output and "the test normals alone differ" in ran.output
    assert "1 from the store" in ran.output  # checked once, before the strict run stopped
    (record,) = ResultsStore(store).records()
    (check_file,) = ResultsStore(store).checks_dir.glob("*.json")
    assert record.data_check == check_file.stem
    report = invoke("report", "--results-dir", str(store), "--out", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Data checks" in text and "⚠ error: shift" in text
    assert "⚠ Data check: folder/widget has 1 error (shift)" in text
    # A stored check that is not one is skipped with a warning, never a traceback.
    (ResultsStore(store).checks_dir / "k1-broken.json").write_text("{")
    again = invoke("report", "--results-dir", str(store), "--out", str(tmp_path / "report"))
    assert again.exit_code == 0 and "Traceback" not in again.output, again.output


def test_check_command_writes_findings_as_json(clean, tmp_path):
    out = tmp_path / "findings.json"
    args = ["check", "--suite", "folder", "--data-root", str(clean.parent), "--backbone",
            "random", "--results-dir", str(tmp_path / "store"), "--json", str(out),
            "--no-progress"]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    listed = json.loads(out.read_text())
    assert {"category", "kind", "severity", "split", "files", "detail"} <= set(listed[0])
    assert {f["kind"] for f in listed} == {"counts", "shift"}
    again = invoke(*args, "--strict")
    assert again.exit_code == 0 and "1 from the store" in again.output, again.output


def test_a_stored_check_missing_or_retyping_a_field_is_refused_or_read_whole(clean, tmp_path):
    from bench.cli.check import check_text
    from bench.report.data import ReportData
    from bench.report.tables.data_checks import data_checks_table
    from bench.store.checks import check_problem

    real = json.loads(json.dumps(check(clean.parent, tmp_path)))
    variants = [{k: v for k, v in real.items() if k != key} for key in real]
    variants += [{**real, key: 7 if not isinstance(real[key], int) else "x"} for key in real]
    row = real["splits"][1]
    variants += [{**real, "splits": [{**row, key: "x"}]} for key in row]
    data = ReportData.load(tmp_path / "empty")
    for variant in variants:
        if check_problem(variant) is None:  # read: both readers take it whole
            check_text(variant)
            data.checks = {"k": variant}
            data_checks_table(data)
    assert check_problem(real) is None
