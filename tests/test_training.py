"""The one training loop (bench/training.py): history, divergence, checkpoints that continue
exactly, and every trained method resuming after a real SIGKILL with the uninterrupted scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from resume_child import RESUMABLE, fit  # tests/ is on the path under pytest
from torch import nn

from bench.registry import RunContext
from bench.training import Training, run_training

REPO = Path(__file__).resolve().parents[1]
CHILD = REPO / "tests" / "resume_child.py"


class Toy:
    """A one-weight model trained by SGD with momentum (optimizer state); every epoch draws
    from a NumPy generator, a torch generator and torch's global generator, and counts its
    steps in an attribute (extra state)."""

    def __init__(self, seed: int, fail_at: int | None = None):
        torch.manual_seed(seed)
        self.net = nn.Linear(1, 1)
        self.sgd = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.steps, self.draws, self.fail_at = 0, [], fail_at

    def epoch(self, i: int) -> float:
        if i == self.fail_at:
            raise KeyboardInterrupt  # stands for a kill in the middle of epoch i
        x = (self.rng.random() + torch.rand(1, 1, generator=self.gen) + torch.rand(1, 1))
        self.draws.append(x.item())
        loss = (self.net(x) - 1).pow(2).mean()
        self.sgd.zero_grad()
        loss.backward()
        self.sgd.step()
        self.steps += 1
        return loss.item()

    def training(self, files: tuple[str, ...] = ("a.png", "b.png")) -> Training:
        return Training("toy epochs", "the toy loss", 5, self.epoch, {"net": self.net},
                        {"sgd": self.sgd}, {"rng": self.rng, "gen": self.gen}, train_files=files,
                        detector=self, extra_state=("steps",), eval_every=2)


def weight(detector: Toy, _epoch: int) -> float:
    return detector.net.weight.item()


def test_one_loss_per_epoch_in_train_mode_then_eval_mode():
    net = nn.Dropout(0.5).eval()
    modes = []

    def epoch(i: int) -> dict[str, float]:
        modes.append(net.training)
        return {"generator": float(i), "discriminator": -float(i)}

    result = run_training(Training("toy epochs", "the toy loss", 4, epoch, {"net": net}, {}))
    assert result.loss_history == [{"generator": float(i), "discriminator": -float(i)}
                                   for i in range(1, 5)]
    assert modes == [True] * 4 and not net.training and result.resumed_from_epoch == 0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"),
                                 {"generator": 1.0, "discriminator": float("nan")}])
def test_a_non_finite_loss_raises_naming_its_epoch(bad):
    losses = [1.0, 0.5, bad, 0.1]
    with pytest.raises(FloatingPointError, match="the toy loss diverged at epoch 3"):
        run_training(Training("toy epochs", "the toy loss", 4, lambda i: losses[i - 1], {}, {}))


def test_a_resumed_training_continues_exactly(tmp_path):
    checkpoint = tmp_path / "toy.pt"
    with torch.random.fork_rng(devices=[]):
        reference = Toy(seed=0)
        expected = run_training(reference.training(), RunContext(monitor=weight))

        with pytest.raises(KeyboardInterrupt):
            run_training(Toy(seed=0, fail_at=4).training(),
                         RunContext(monitor=weight, checkpoint=checkpoint, checkpoint_every=1))
        assert torch.load(checkpoint, weights_only=True)["epoch"] == 3
        assert [p.name for p in tmp_path.iterdir()] == ["toy.pt"]  # no temp file left

        # Other seeds everywhere: only the checkpoint can make this continue the first run.
        resumed = Toy(seed=123)
        context = RunContext(monitor=weight, checkpoint=checkpoint, checkpoint_every=1)
        result = run_training(resumed.training(), context)

    assert context.info["resumed_from_epoch"] == result.resumed_from_epoch == 3
    assert resumed.draws == reference.draws[3:]  # NumPy, torch and torch's global generators
    assert resumed.steps == reference.steps == 5
    assert torch.equal(resumed.net.weight, reference.net.weight)
    assert result.loss_history == expected.loss_history and len(result.loss_history) == 5
    assert result.eval_history == expected.eval_history and len(result.eval_history) == 2
    # Checkpoints stop before the last epoch: the caller's result supersedes them.
    assert torch.load(checkpoint, weights_only=True)["epoch"] == 4


def test_a_checkpoint_of_other_training_files_is_not_resumed(tmp_path):
    checkpoint = tmp_path / "toy.pt"
    with torch.random.fork_rng(devices=[]):
        reference = Toy(seed=0)
        run_training(reference.training())
        with pytest.raises(KeyboardInterrupt):
            run_training(Toy(seed=0, fail_at=4).training(),
                         RunContext(checkpoint=checkpoint, checkpoint_every=1))
        other = Toy(seed=0)
        context = RunContext(checkpoint=checkpoint, checkpoint_every=1)
        result = run_training(other.training(files=("c.png",)), context)
    assert "resumed_from_epoch" not in context.info and result.resumed_from_epoch == 0
    assert other.draws == reference.draws and len(result.loss_history) == 5


# -- every trained method, killed for real ---------------------------------------------------


@pytest.mark.parametrize("method", list(RESUMABLE))
def test_sigkill_after_a_checkpoint_then_resume_gives_the_uninterrupted_scores(
        method, synthetic_root, tmp_path):
    expected, _ = fit(method, synthetic_root, None)  # uninterrupted, no checkpoint

    checkpoint = tmp_path / "cell.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    killed = subprocess.run([sys.executable, str(CHILD), method, str(synthetic_root),
                             str(checkpoint)], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["cell.pt"], "no half-written checkpoint"

    scores, info = fit(method, synthetic_root, checkpoint)
    assert info["resumed_from_epoch"] == 1 and len(info["loss_history"]) == 2
    assert scores == expected  # bit-identical, not merely close
