"""The synthetic validation split: made from training images only, seeded, and what select
chooses by; no test file is ever opened."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from bench.data import load_split
from bench.data.defects import parse_recipe
from bench.data.defects.mixes import DEFAULT_MIX, MIXES
from bench.data.validation import synthetic_validation, validation_value
from bench.origins import value_origins
from bench.report.provenance import mixes_chosen_on_test, values_chosen_on_test
from bench.run.runner import RunOptions, run_cell
from bench.run.selection import select
from bench.run.suites import Suite, plan, resolve_for_dataset
from bench.store.results import Record


@pytest.fixture
def opened(monkeypatch):
    """Every image path PIL opens while the test runs."""
    paths: list[str] = []
    real_open = Image.open

    def spy(fp, *args, **kwargs):
        paths.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    return paths


def test_made_from_training_images_only(synthetic_root, tmp_path, opened):
    """The default mix and every further recipe read training images only (held-out images
    and donors), never a test file; each defect comes with a mask that covers what changed."""
    split = load_split("synthetic", "stripes", synthetic_root)
    recipes = ("v1", "cutpaste", "nsa", "perlin", "crack", "pit", "uneven", "cutpaste_scar")
    held = synthetic_validation(split.train, seed=3, folder=tmp_path, recipes=recipes)
    train_paths = {str(s.path) for s in split.train}
    test_paths = {str(s.path) for s in split.test}
    assert opened and all(p in train_paths for p in opened)
    assert not set(opened) & test_paths
    normals = [s for s in held.validation if s.label == 0]
    defects = [s for s in held.validation if s.label == 1]
    assert len(normals) == len(defects) == round(0.2 * len(split.train))
    assert {str(s.path) for s in normals}.isdisjoint({str(s.path) for s in held.train})
    assert len(held.train) + len(normals) == len(split.train)
    assert {s.defect for s in defects} == {parse_recipe(r).name
                                            for r in MIXES[DEFAULT_MIX].recipes}
    assert set(held.by_recipe) == set(recipes)
    originals = {s.path.stem: s.path for s in normals}
    for samples in held.by_recipe.values():
        assert len(samples) == len(normals)
        for sample in samples:  # each defect's mask covers the pixels it changed
            mask = np.asarray(Image.open(sample.mask_path)) > 0
            image = np.asarray(Image.open(sample.path).convert("L"), dtype=int)
            original = np.asarray(Image.open(originals[sample.path.stem[5:]]).convert("L"),
                                  dtype=int)
            changed = image != original
            assert changed.any() and not (changed & ~mask).any()
            assert 0 < mask.mean() < 0.5


def test_seeded(synthetic_root, tmp_path):
    split = load_split("synthetic", "blobs", synthetic_root)
    a = synthetic_validation(split.train, seed=0, folder=tmp_path / "a")
    b = synthetic_validation(split.train, seed=0, folder=tmp_path / "b")
    c = synthetic_validation(split.train, seed=1, folder=tmp_path / "c")
    assert [s.path.name for s in a.validation] == [s.path.name for s in b.validation]
    for x, y in zip(a.validation, b.validation):
        assert x.path.read_bytes() == y.path.read_bytes()
    assert a.meta["held_out"] != c.meta["held_out"]


def test_select_never_scores_or_opens_the_test_set(synthetic_root, tmp_path, opened):
    suite = Suite(name="t", dataset="synthetic", methods=["knn"], categories=["blobs"],
                  preset="tiny", backbone="random")
    result = select(suite, {"n_test_transforms": [1, 4]}, tmp_path)
    test_paths = {str(s.path) for s in load_split("synthetic", "blobs", synthetic_root).test}
    assert not set(opened) & test_paths
    assert list(result.table["n_test_transforms"]) == [1, 4]
    assert result.table["mean"].between(0, 1).all()
    assert result.chosen["n_test_transforms"] in (1, 4)
    assert result.json.is_file() and result.csv.is_file()


def test_a_run_with_validation_records_both_aurocs(synthetic_root, tmp_path):
    suite = Suite(name="t", dataset="synthetic", methods=["knn"], categories=["stripes"],
                  preset="tiny", backbone="random", validation="synthetic")
    (cell,) = plan(suite, data_root=synthetic_root)
    record = run_cell(cell, RunOptions(cache_dir=tmp_path))
    assert f"val-{validation_value()}" in cell.cell_id and record.validation == validation_value()
    assert record.info["validation"]["recipe"] == DEFAULT_MIX
    assert 0 <= record.val_auroc <= 1 and 0 <= record.auroc <= 1
    assert len(record.val_scores) == len(record.val_labels) == 2 * round(0.2 * 20)
    assert record.n_train == 20 - round(0.2 * 20)
    plain = run_cell(dataclasses.replace(cell, validation=None), RunOptions(cache_dir=tmp_path))
    assert plain.val_auroc is None and plain.n_train == 20


def test_records_say_which_preset_values_were_decided_and_how():
    fast = resolve_for_dataset("differnet", "fast", "mtd", {"backbone": "efficientnet_lite0"})
    origins = {o["field"]: o for o in value_origins(fast, "fast")}
    assert set(origins) == {"rotation_mode", "backbone_stage"}
    assert all(o["decided_on"] in ("validation", "test") and o["evidence"] for o in origins.values())
    # A value the user overrides, or a backbone without stages, is not the preset's choice.
    mine = resolve_for_dataset("differnet", "fast", "mtd",
                               {"backbone": "random", "rotation_mode": "right_angles"})
    assert value_origins(mine, "fast") == []


def test_the_report_flags_values_decided_on_test_data():
    record = Record(cell_id="c", status="ok", method="knn", dataset="mtd", category="mtd",
                    seed=0, shots=None, preset="fast", backbone="efficientnet_lite0", variant=None,
                    config={}, config_hash="h", reduced=True, info={"value_origins": [
                        {"field": "backbone_stage", "value": 5, "decided_on": "test"},
                        {"field": "rotation_mode", "value": "right_angles",
                         "decided_on": "validation"}]})
    assert values_chosen_on_test([record]) == ["backbone_stage=5 (fast)"]
    assert values_chosen_on_test([dataclasses.replace(record, info={})]) is None  # an older record
    assert mixes_chosen_on_test([record]) == []
    # A value chosen on validation, on a mix whose own choice read test labels: said, with whose.
    on_v2 = dataclasses.replace(record, info={"value_origins": [
        {"field": "resize", "value": 320, "decided_on": "validation", "mix": "v2"}]})
    assert mixes_chosen_on_test([on_v2]) == ["v2 (chosen with the test labels of MTD, ELPV)"]


def test_the_select_command_runs_from_the_command_line(synthetic_root, tmp_path):
    """select takes run's options about cells and data, not the ones about saving models or
    executors (a keyword it did not expect once broke the whole command)."""
    from click.testing import CliRunner

    from bench.cli import cli

    args = ["select", "--suite", "smoke", "--methods", "knn", "--categories", "blobs",
            "--preset", "tiny", "--backbone", "random", "--data-root", str(synthetic_root),
            "--results-dir", str(tmp_path), "--grid", "n_test_transforms=1,2", "--no-progress"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "chosen by validation AUROC" in result.output
    refused = CliRunner().invoke(cli, [*args, "--save-models"])
    assert refused.exit_code == 2 and "--save-models" in refused.output
    grid = tmp_path / "grid.toml"  # or a grid file, as agreement takes it
    grid.write_text('[[points]]\n[[points]]\nname = "one"\nn_test_transforms = 1\n')
    from_file = [*args[:-3], "--grid-file", str(grid), "--no-progress"]
    result = CliRunner().invoke(cli, from_file)
    assert result.exit_code == 0 and "chosen by validation AUROC" in result.output, result.output


def test_select_refuses_a_point_that_pads_its_images(synthetic_root, tmp_path):
    """resize alone under a 320 px preset decodes at 224 and pads to 320: select says so and
    how to fix it before anything runs; with both sizes given the point is fine."""
    from click.testing import CliRunner

    from baselines.padim import PaDiMConfig
    from bench.cli import cli
    from bench.config import padded_input

    args = ["select", "--suite", "smoke", "--methods", "padim", "--categories", "blobs",
            "--preset", "fast", "--backbone", "random", "--data-root", str(synthetic_root),
            "--results-dir", str(tmp_path), "--no-progress", "--grid"]
    result = CliRunner().invoke(cli, [*args, "resize=224"])
    assert result.exit_code != 0 and "black borders" in result.output, result.output
    assert not (tmp_path / "selection").exists()
    assert padded_input(PaDiMConfig(image_size=224, resize=224)) is None
    assert padded_input(PaDiMConfig(image_size=224, resize=None)) is None


def test_a_recipes_scores_do_not_depend_on_the_recipes_asked_for_beside_it(synthetic_root,
                                                                          tmp_path):
    """DifferNet draws its test transforms by an image's place in the list: each recipe's copy
    j is scored under the transforms of the default mix's defect j, whatever else was asked."""
    from bench.methods import build_detector
    from bench.registry import RunContext
    from bench.run.runner import recipe_scores

    split = load_split("synthetic", "blobs", synthetic_root)
    config = resolve_for_dataset("differnet", "tiny", "synthetic", {"backbone": "random"})
    both = synthetic_validation(split.train, seed=0, folder=tmp_path, recipes=("pit", "crack"))
    alone = synthetic_validation(split.train, seed=0, folder=tmp_path, recipes=("crack",))
    detector = build_detector("differnet", config, RunContext(seed=0)).fit(both.train)
    val = np.asarray(detector.score(both.validation), dtype=np.float64)
    crack = [recipe_scores(detector, held, val)["val_recipe_scores"]["crack"]
             for held in (both, alone)]
    assert crack[0] == crack[1]


def test_a_mix_is_its_recipes_own_copies_in_turn(synthetic_root, tmp_path):
    """What benchmarks/recipe_mix.py assumed when it chose the default mix from single-recipe
    studies: held-out image j of a mix of k recipes is recipe j mod k's own copy of image j, the
    same file a study of that recipe alone scored."""
    split = load_split("synthetic", "blobs", synthetic_root)
    mix = MIXES[DEFAULT_MIX]
    assert not mix.legacy, "the default mix is assembled from single recipes"
    both = synthetic_validation(split.train, seed=0, folder=tmp_path, recipes=mix.recipes)
    defects = [s for s in both.validation if s.label == 1]
    for j, sample in enumerate(defects):
        alone = both.by_recipe[mix.recipes[j % len(mix.recipes)]][j]
        assert sample.path == alone.path and sample.mask_path == alone.mask_path


def test_recipe_mix_measures_how_far_an_assembled_mix_lies_from_the_mix_scored():
    """recipe_mix.py's check of its own assumption: 0 when the study's default mix is exactly its
    recipes' copies in turn, the largest score difference when it is not."""
    import importlib.util
    from pathlib import Path

    from bench.report.trust import Unit

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "recipe_mix.py"
    spec = importlib.util.spec_from_file_location("recipe_mix_check", script)
    recipe_mix = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe_mix)
    mix = MIXES[DEFAULT_MIX]
    rng = np.random.default_rng(0)
    singles = {r: rng.random((2, 8)) for r in mix.recipes}  # 2 points x 8 held-out images
    scored = np.stack([singles[mix.recipes[j % len(mix.recipes)]][:, j] for j in range(8)], 1)
    unit = Unit(rng.random((2, 5)), np.array([0, 0, 1, 1, 1]), rng.random((2, 8)),
                {mix.name: scored, **singles})
    study = {"recipes": [mix.name, *mix.recipes], "units": [unit]}
    assert recipe_mix.assembly_gap(study) == 0.0
    scored[1, 3] += 0.25
    assert recipe_mix.assembly_gap(study) == pytest.approx(0.25)
    assert recipe_mix.assembly_gap({**study, "recipes": [mix.name, *mix.recipes[1:]]}) is None
