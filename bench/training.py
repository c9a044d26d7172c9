"""The one training loop every trained method runs: epochs, progress, loss history, the
divergence check, the test-set monitor, atomic checkpoints and resume.

As Lightning's ``Trainer`` calls a module's ``training_step``, the loop calls a method's
``epoch(i)`` and does the rest; a method describes its training in a ``Training`` (its epoch
step, modules, optimizers and random generators) and reads the ``TrainingResult``. A checkpoint
holds everything needed to continue exactly as if the run had never stopped: the modules'
and optimizers' state, the epoch, the histories, the method's declared extra state and every
random generator the epochs draw from, torch's global ones included.

>>> import torch
>>> net = torch.nn.Linear(2, 1)
>>> sgd = torch.optim.SGD(net.parameters(), lr=0.1)
>>> def epoch(i: int) -> float:
...     loss = net(torch.ones(4, 2)).pow(2).mean()
...     sgd.zero_grad(); loss.backward(); sgd.step()
...     return loss.item()
>>> result = run_training(Training("toy", "toy loss", 3, epoch, {"net": net}, {"sgd": sgd}))
>>> len(result.loss_history)
3
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.errors import BenchError
from bench.progress import progress
from bench.registry import RunContext
from bench.store.atomic import save_torch

log = logging.getLogger(__name__)

# One epoch's loss: a number, or a dict of named numbers (e.g. a GAN's two losses).
Loss = float | dict[str, float]
RandomGenerator = np.random.Generator | torch.Generator
CHECKPOINT_FORMAT = 1


@dataclass
class Training:
    """What a method hands the loop: only what differs between methods."""

    desc: str  # progress bar label, and the kind of training a checkpoint belongs to
    loss_name: str  # for the divergence message: "<loss_name> diverged at epoch i"
    epochs: int
    epoch: Callable[[int], Loss]  # trains epoch i (1, 2, ..., epochs); returns its mean loss
    modules: Mapping[str, nn.Module]
    optimizers: Mapping[str, torch.optim.Optimizer]
    # Every generator the epochs draw from besides torch's global ones (which are always
    # saved): batch orders, noise, latents. Restored on resume, so draws continue in order.
    generators: Mapping[str, RandomGenerator] = field(default_factory=dict)
    train_files: Sequence[str] = ()  # a checkpoint of other training files is not resumed
    detector: Any = None  # what ``context.monitor`` is called with; owns ``extra_state``
    extra_state: Sequence[str] = ()  # attributes of ``detector`` the epochs change (plain values)
    eval_every: int = 0  # call ``context.monitor(detector, epoch)`` every this many epochs


@dataclass
class TrainingResult:
    loss_history: list[Loss] = field(default_factory=list)  # one entry per epoch
    eval_history: list[tuple[int, float]] = field(default_factory=list)  # (epoch, monitor value)
    resumed_from_epoch: int = 0


def run_training(training: Training, context: RunContext | None = None) -> TrainingResult:
    """Run ``training.epochs`` epochs, resuming from ``context.checkpoint`` when it holds this
    training, and checkpointing every ``context.checkpoint_every`` epochs (not after the last:
    the caller's result supersedes it). Leaves the modules in eval mode."""
    context = context or RunContext()
    result = resume(training, context)
    first = result.resumed_from_epoch + 1
    with progress(training.epochs, training.desc, enabled=context.progress,
                  initial=first - 1) as bar:
        for epoch in range(first, training.epochs + 1):
            for module in training.modules.values():
                module.train()  # the monitor may have scored in eval mode
            loss = training.epoch(epoch)
            result.loss_history.append(loss)
            check_finite(loss, f"{training.loss_name} diverged at epoch {epoch}")
            if training.eval_every and context.monitor and epoch % training.eval_every == 0:
                result.eval_history.append((epoch, context.monitor(training.detector, epoch)))
            if (context.checkpoint is not None and context.checkpoint_every > 0
                    and epoch % context.checkpoint_every == 0 and epoch < training.epochs):
                save_checkpoint(context.checkpoint, training, result, epoch)
            bar.update(1)
            if isinstance(loss, float):
                bar.set_postfix(loss=f"{loss:.4g}")
    for module in training.modules.values():
        module.eval()
    return result


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   clip_norm: float | None = None) -> float:
    """One gradient step on ``loss`` (its gradient's norm clipped to ``clip_norm`` if given);
    returns the loss's value."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip_norm is not None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        nn.utils.clip_grad_norm_(params, clip_norm)
    optimizer.step()
    return loss.item()


def check_train_precision(precision: str, device: str) -> None:
    """A trained network's precision can run here: fp32 anywhere, bf16 on CUDA or a CPU with
    native bf16 (elsewhere it is emulated, slower than fp32); a mistake to fix before any cell."""
    from bench.features.engines import native_bf16

    if precision == "fp32":
        return
    if precision != "bf16":
        raise BenchError(f"train_precision {precision!r} is not offered; choose fp32 or bf16.")
    if not device.startswith("cuda") and not native_bf16():
        raise BenchError("this CPU has no native bf16 (AVX512-BF16 or AMX), where training in "
                         "bf16 would be slower than fp32; use --set train_precision=fp32.")


def training_autocast(precision: str, device: str) -> Callable[[], Any]:
    """A context factory for a training step's forward pass at ``precision``: nothing at fp32,
    autocast to bfloat16 at bf16 (matrix products and convolutions in bf16, weights, gradients
    and the optimizer in fp32)."""
    check_train_precision(precision, device)
    if precision == "fp32":
        return contextlib.nullcontext
    device_type = device.split(":")[0]
    return lambda: torch.autocast(device_type, dtype=torch.bfloat16)


def mean_over_batches(indices: Iterable[Any], step: Callable[[Any], float]) -> float:
    """One epoch's loss: ``step(idx)`` for every batch of indices, averaged over the samples
    (each batch weighted by its size)."""
    total, seen = 0.0, 0
    for idx in indices:
        total, seen = total + step(idx) * len(idx), seen + len(idx)
    return total / max(seen, 1)


def check_finite(loss: Loss, message: str) -> None:
    values = loss.values() if isinstance(loss, dict) else (loss,)
    if not all(math.isfinite(v) for v in values):
        raise FloatingPointError(message)


# -- checkpoints ----------------------------------------------------------------------------


def save_checkpoint(path: Path, training: Training, result: TrainingResult, epoch: int) -> None:
    """Everything needed to continue after ``epoch``, written atomically (temp file, rename),
    so a kill at any moment leaves either the previous checkpoint or this one."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "desc": training.desc,
        "epoch": epoch,
        "train_files": list(training.train_files),
        "modules": {name: m.state_dict() for name, m in training.modules.items()},
        "optimizers": {name: o.state_dict() for name, o in training.optimizers.items()},
        "generators": {name: _generator_state(g) for name, g in training.generators.items()},
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
        "loss_history": list(result.loss_history),
        # Plain floats (a monitor may return NumPy scalars, which weights_only loading refuses).
        "eval_history": [(e, v if v is None else float(v)) for e, v in result.eval_history],
        "extra": {name: getattr(training.detector, name) for name in training.extra_state},
    }
    save_torch(path, state)


def discard_checkpoint(path: Path) -> None:
    """Remove a finished cell's checkpoint (temporary files a kill mid-write left beside it
    are swept when a run starts: ``bench.store.atomic.sweep_temporaries``)."""
    path.unlink(missing_ok=True)


def resume(training: Training, context: RunContext) -> TrainingResult:
    """Restore ``context.checkpoint`` into ``training`` if it holds this training; the
    histories so far and the epoch it covers (0: none, start from scratch)."""
    path = context.checkpoint
    if path is None or not path.is_file():
        return TrainingResult()
    try:
        # Plain values and tensors only: no code runs while loading.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a file of an older format, or not a checkpoint at all
        log.warning("not resuming from %s, which cannot be read (%s)", path, exc)
        return TrainingResult()
    reason = _mismatch(state, training)
    if reason:
        log.warning("not resuming from %s: %s", path, reason)
        return TrainingResult()
    for name, module in training.modules.items():
        module.load_state_dict(state["modules"][name])
    for name, optimizer in training.optimizers.items():
        optimizer.load_state_dict(state["optimizers"][name])
    for name, generator in training.generators.items():
        _set_generator_state(generator, state["generators"][name])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available() \
            and len(state["cuda_rng"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    for name, value in state["extra"].items():
        setattr(training.detector, name, value)
    context.info["resumed_from_epoch"] = state["epoch"]
    return TrainingResult(list(state["loss_history"]),
                          [(e, v) for e, v in state["eval_history"]], state["epoch"])


def _mismatch(state: dict[str, Any], training: Training) -> str:
    """Why ``state`` cannot continue ``training`` ("" if it can)."""
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        return "it is of another checkpoint format"
    if state["desc"] != training.desc:
        return f"it holds {state['desc']!r}, not {training.desc!r}"
    if state["train_files"] != list(training.train_files):
        return "it was trained on other files"
    if not 0 < state["epoch"] < training.epochs:
        return f"its epoch {state['epoch']} is not within the {training.epochs} epochs to train"
    expected = {"modules": training.modules, "optimizers": training.optimizers,
                "generators": training.generators, "extra": training.extra_state}
    for key, names in expected.items():
        if set(state[key]) != set(names):
            return f"its {key} are {sorted(state[key])}, not {sorted(names)}"
    return ""


def _generator_state(generator: RandomGenerator) -> Any:
    if isinstance(generator, np.random.Generator):
        return generator.bit_generator.state
    return generator.get_state()


def _set_generator_state(generator: RandomGenerator, state: Any) -> None:
    if isinstance(generator, np.random.Generator):
        generator.bit_generator.state = state
    else:
        generator.set_state(state)
