"""What one training step of DifferNet's flow costs, part by part, beside its FLOP floor.

The flow of a preset (default ``cpu``: 768 features, 8 coupling blocks of 3 hidden layers of
512, batches of 96, Adam with the fused kernel) on random features: milliseconds of the
forward pass, forward and backward, the optimizer's update and the whole step, on 1 thread and
on all of them, and the page faults a step takes (fresh memory for its activations and
gradients); the step's counted FLOPs (``torch.utils.flop_counter``) at the fp32 matmul rate
measured in the same run; and ``torch.compile``'s step (its compile time apart) where asked.
Side by side in one process, medians of ``--steps`` steps after a warm-up.

    python benchmarks/flow_step.py --preset cpu --compile
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import click
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_throughput import timed  # noqa: E402
from fingerprint_cost import cpu_model  # noqa: E402
from stage_profile import flops, matmul_rate  # noqa: E402

from bench.differnet.flow import DifferNetFlow  # noqa: E402
from bench.run.suites import resolve_for_dataset  # noqa: E402
from bench.training import training_autocast  # noqa: E402


def median_ms(fn, steps: int) -> float:
    return 1000 * timed(fn, steps)


def faults_per_call(fn, calls: int = 5) -> float:
    """Minor page faults (fresh memory touched) per call of ``fn``."""
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


@click.command()
@click.option("--preset", default="cpu", show_default=True)
@click.option("--steps", default=30, show_default=True)
@click.option("--compile", "compiled", is_flag=True, help="Also time torch.compile's step.")
@click.option("--bf16", is_flag=True, help="Also time the step under train_precision=bf16's "
              "autocast (a CPU with native bf16).")
def main(preset, steps, compiled, bf16):
    cfg = resolve_for_dataset("differnet", preset, "mtd", {})
    dim = 3 * 256  # 3 scales of 256 pooled channels (the paper's backbone and Lite0's stage)
    flow = DifferNetFlow(dim, cfg.n_coupling_blocks, cfg.subnet_hidden, cfg.subnet_layers,
                         cfg.clamp_alpha, seed=0)
    optimizer = torch.optim.Adam(flow.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                                 eps=cfg.adam_eps, fused=True)
    batch = torch.randn(cfg.batch_size, dim, generator=torch.Generator().manual_seed(0))
    n_params = sum(p.numel() for p in flow.parameters())
    step_flops = flops(lambda: flow.nll(batch).mean().backward())
    rate = matmul_rate(torch.float32)
    print(f"CPU: {cpu_model()}; preset {preset}: {n_params / 1e6:.1f} M parameters, batches of "
          f"{cfg.batch_size}; {step_flops / 1e9:.2f} GFLOP a step; matmul fp32 "
          f"{rate / 1e9:.0f} GFLOP/s: floor {1000 * step_flops / rate:.1f} ms a step")

    def forward():
        with torch.no_grad():
            flow.nll(batch).mean()

    def backward():
        flow.zero_grad(set_to_none=True)
        flow.nll(batch).mean().backward()

    def step():
        optimizer.zero_grad(set_to_none=True)
        flow.nll(batch).mean().backward()
        optimizer.step()

    threads = torch.get_num_threads()
    print(f"{'threads':>8s} {'forward':>9s} {'fwd+bwd':>9s} {'adam':>9s} {'step':>9s} "
          f"{'x floor':>8s} {'faults':>8s}")
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        backward()
        f_ms, b_ms = median_ms(forward, steps), median_ms(backward, steps)
        a_ms, s_ms = median_ms(optimizer.step, steps), median_ms(step, steps)
        print(f"{n:8d} {f_ms:9.1f} {b_ms:9.1f} {a_ms:9.1f} {s_ms:9.1f} "
              f"{s_ms / (1000 * step_flops / rate):8.2f} {faults_per_call(step):8.0f}")
    torch.set_num_threads(threads)
    if bf16:
        autocast = training_autocast("bf16", "cpu")

        def bf16_step():
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = flow.nll(batch).mean()
            loss.backward()
            optimizer.step()

        print(f"bf16 autocast ({threads} threads): {median_ms(bf16_step, steps):.1f} ms a step, "
              f"fp32 {median_ms(step, steps):.1f}, side by side")
    if compiled:
        loss_fn = torch.compile(lambda y: flow.nll(y).mean())

        def compiled_step():
            optimizer.zero_grad(set_to_none=True)
            loss_fn(batch).backward()
            optimizer.step()

        start = time.perf_counter()
        compiled_step()
        print(f"torch.compile: first step (compiling) {time.perf_counter() - start:.1f} s, then "
              f"{median_ms(compiled_step, steps):.1f} ms a step")


if __name__ == "__main__":
    main()
