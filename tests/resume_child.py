"""What tests/test_training.py runs to kill a training for real: fit one method with a
checkpoint every epoch, and SIGKILL this process right after the first checkpoint is written
(no cleanup, no exception handler runs).

    PYTHONPATH=<repo> python tests/resume_child.py METHOD DATA_ROOT CHECKPOINT
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from pathlib import Path

import bench.training
from bench.config import resolve_config
from bench.data import load_split
from bench.registry import METHODS, RunContext

# Each method's module (imported alone: a child starts faster without the other methods), a
# category it learns, and what keeps a run short: 2 epochs (a checkpoint after the first),
# small images, the first few training and test images.
RESUMABLE = {
    "differnet": ("bench.differnet", "blobs", {"backbone": "random", "epochs": 2}),
    "geotrans": ("baselines.geotrans", "stripes", {"epochs": 2}),
    "ganomaly": ("baselines.ganomaly", "blobs", {"epochs": 2, "image_size": 32}),
    "dsebm": ("baselines.dsebm", "blobs", {"epochs": 2}),
    "adgan": ("baselines.adgan", "blobs", {"epochs": 2, "image_size": 32}),
}
N_TRAIN, N_TEST = 8, 8


def fit(method: str, root: Path, checkpoint: Path | None) -> tuple[list[float], dict]:
    """Fit ``method`` at the tiny preset with seed 0, checkpointing every epoch to
    ``checkpoint``; its scores of the first test images and its run info."""
    module, category, overrides = RESUMABLE[method]
    importlib.import_module(module)  # registers the method
    split = load_split("synthetic", category, root)
    spec = METHODS[method]
    config = resolve_config(spec.config_cls, spec.presets, "tiny", overrides)
    context = RunContext(seed=0, checkpoint=checkpoint, checkpoint_every=1)
    detector = spec.cls(config, context).fit(split.train[:N_TRAIN])
    context.info["loss_history"] = detector.loss_history_
    return detector.score(split.test[:N_TEST]).tolist(), context.info


def die_after_the_first_checkpoint() -> None:
    save = bench.training.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    bench.training.save_checkpoint = save_then_die


if __name__ == "__main__":
    method, root, checkpoint = sys.argv[1:4]
    die_after_the_first_checkpoint()
    fit(method, Path(root), Path(checkpoint))
    sys.exit("the fit finished without writing a checkpoint")
