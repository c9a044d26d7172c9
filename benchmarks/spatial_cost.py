"""What the patch-level methods cost on this machine, side by side in one run.

1. PatchCore's greedy coreset step (one distance pass over the projected bank, the running
   minimum, the argmax) with the bank stored as rows or as columns, and the argmax in torch or
   NumPy: milliseconds per selected point, and the whole coreset's minutes at 1 % and 10 % of a
   bank of ``--rows`` patches (MTD at 224 px, stride-8 maps: 761 x 28 x 28 = 597k).
2. PatchCore's nearest-neighbour search (``baselines.patchcore.nearest``, k = 1, as scoring
   runs it) against the same search taking the smallest distance with ``torch.topk`` (the code
   before): seconds for ``--queries`` test patches against a memory of ``--memory`` rows, and
   whether the two agree.
3. CS-Flow's training step at a preset (default ``cpu``; EfficientNet-Lite0's stage 6 at 768,
   384 and 192 px: 192 channels on 24 x 24, 12 x 12 and 6 x 6 maps) on random maps: Adam as the
   code before ran it (PyTorch's per-parameter loop on a CPU) and with the fused kernel, in
   NCHW and channels_last, and (where the CPU has native bf16) the fused one with the forward
   pass autocast to bf16 (``train_precision = "bf16"``); milliseconds a step and the ratio to the
   first variant, the step's FLOPs at the fp32 matmul rate, and the losses of
   ``--check-steps`` steps from the same start against the first variant's.
4. Peak resident memory (a child process per method, ``ru_maxrss``) of fitting and scoring
   PatchCore and PaDiM on an MVTec-size category (``--train`` training images, 64 test images)
   with the papers' backbone, WideResNet-50, at 224 px; its weights need not be present (the
   memory does not depend on them, so random ones are used when they are missing).

    python benchmarks/spatial_cost.py                   # both parts
    python benchmarks/spatial_cost.py --skip-memory     # parts 1-3 only
    python benchmarks/spatial_cost.py --skip-patchcore --skip-memory   # part 3 only
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import torch


def _per_step(columns: bool, numpy_argmax: bool, rows: int, dim: int, steps: int) -> float:
    points = torch.randn(rows, dim)
    store = points.T.contiguous() if columns else points
    norms = (points * points).sum(dim=1)
    nearest = torch.full((rows,), math.inf)
    nearest_np = nearest.numpy()
    distance = torch.empty(rows)
    last = 0
    start = time.perf_counter()
    for _ in range(steps):
        if columns:
            torch.addmv(norms, store.T, store[:, last].contiguous(), alpha=-2, out=distance)
        else:
            torch.addmv(norms, store, store[last], alpha=-2, out=distance)
        distance += norms[last]
        torch.minimum(nearest, distance, out=nearest)
        last = int(nearest_np.argmax()) if numpy_argmax else int(torch.argmax(nearest))
    return (time.perf_counter() - start) / steps


def _nearest_topk(queries, memory, chunk=4096):
    """``nearest`` as it was for k = 1: ``torch.topk`` over every memory row."""
    squared = (memory * memory).sum(dim=1)
    dists, index = [], []
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk]
        d2 = (q * q).sum(dim=1, keepdim=True) - 2 * q @ memory.T + squared
        values, where = torch.topk(d2, 1, dim=1, largest=False)
        dists.append(values.clamp_min(0).sqrt())
        index.append(where)
    return torch.cat(dists), torch.cat(index)


def _nearest_buffered(queries, memory, chunk=4096):
    """``nearest`` before it fused its passes (k = 1): a reused buffer, a minimum, but |q|^2
    subtracted and |m|^2 added over the whole buffer."""
    squared = (memory * memory).sum(dim=1)
    buffer = torch.empty(min(chunk, len(queries)), len(memory))
    dists, index = [], []
    for i in range(0, len(queries), chunk):
        q = queries[i:i + chunk]
        d2 = torch.matmul(2 * q, memory.T, out=buffer[:len(q)])
        torch.sub((q * q).sum(dim=1, keepdim=True), d2, out=d2).add_(squared)
        values, where = d2.min(dim=1, keepdim=True)
        dists.append(values.clamp_min(0).sqrt())
        index.append(where)
    return torch.cat(dists), torch.cat(index)


def nearest_search(queries: int, memory: int, dim: int) -> None:
    from baselines.patchcore import nearest

    gen = torch.Generator().manual_seed(0)
    q, m = torch.randn(queries, dim, generator=gen), torch.randn(memory, dim, generator=gen)
    timed = {}
    for name, search in (("topk", _nearest_topk), ("buffered", _nearest_buffered),
                         ("current", nearest)):
        start = time.perf_counter()
        timed[name] = (search(q, m), time.perf_counter() - start)
    (old_d, old_i), old_s = timed["topk"]
    (new_d, new_i), new_s = timed["current"]
    mid_s = timed["buffered"][1]
    agree = float((old_i == new_i).float().mean())
    worst = float(((old_d - new_d).abs() / old_d.clamp_min(1e-12)).max())
    print(f"  {queries} queries x {memory} rows x {dim} dims: topk {old_s:.2f} s, buffered "
          f"{mid_s:.2f} s, current {new_s:.2f} s (x{old_s / new_s:.2f} over topk, "
          f"x{mid_s / new_s:.2f} over buffered); same index {agree:.4%}, largest relative "
          f"distance difference {worst:.1e}")


def csflow_step_cost(preset: str, steps: int, check_steps: int) -> None:
    from stage_profile import flops, matmul_rate

    from baselines.csflow import CrossScaleFlow
    from bench.features.engines import native_bf16
    from bench.run.suites import resolve_for_dataset
    from bench.training import training_autocast

    cfg = resolve_for_dataset("csflow", preset, "mtd", {"backbone": "efficientnet_lite0"})
    side = cfg.image_size // 32
    shapes = [(side // 2**s, side // 2**s) for s in range(cfg.scales)]
    gen = torch.Generator().manual_seed(0)
    maps = [torch.randn(cfg.batch_size, 192, h, w, generator=gen) for h, w in shapes]
    rate = matmul_rate(torch.float32)
    reference, base_ms = None, None
    variants = [(False, torch.contiguous_format, "fp32"), (True, torch.contiguous_format, "fp32"),
                (True, torch.channels_last, "fp32")]
    if native_bf16():
        variants.append((True, torch.contiguous_format, "bf16"))
    else:
        print("  (no native bf16 on this CPU: the bf16 variant is left out)")
    for fused, layout, precision in variants:
        flow = CrossScaleFlow(192, shapes, cfg, seed=0).to(memory_format=layout)
        with torch.no_grad():  # at 0 every block is the identity and the losses could not differ
            for name, param in flow.named_parameters():
                if name.endswith("gamma"):
                    param.fill_(0.5)
        optimizer = torch.optim.Adam(flow.parameters(), lr=cfg.lr, eps=cfg.adam_eps,
                                     weight_decay=cfg.weight_decay, fused=fused)
        xs = [x.contiguous(memory_format=layout) for x in maps]
        autocast = training_autocast(precision, "cpu")

        def step(flow=flow, optimizer=optimizer, xs=xs, autocast=autocast):
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = flow.loss(xs)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(flow.parameters(), cfg.grad_clip)
            optimizer.step()
            return loss.item()

        losses = [step() for _ in range(check_steps)]
        reference = reference or losses
        drift = max(abs(a - b) / abs(b) for a, b in zip(losses, reference))
        times = []
        for _ in range(steps):
            begin = time.perf_counter()
            step()
            times.append(time.perf_counter() - begin)
        ms = 1000 * sorted(times)[len(times) // 2]
        base_ms = base_ms or ms
        step_flops = flops(lambda flow=flow, xs=xs: flow.loss(xs).backward())
        name = (f"Adam {'fused' if fused else 'loop '}, "
                f"{'channels_last' if layout is torch.channels_last else 'NCHW'}, {precision}")
        print(f"  {name:34s} {ms:7.1f} ms/step (x{base_ms / ms:.2f})  {ms / (1000 * step_flops / rate):.2f}x "
              f"the fp32 floor ({1000 * step_flops / rate:.1f} ms: {step_flops / 1e9:.1f} GFLOP); "
              f"losses of {check_steps} steps within {drift:.1e} of the first variant's")


MEMORY_CHILD = """
import json, resource, sys, time, torch
import bench.features.backbones as backbones
from bench.data import load_split
from bench.methods import build_detector
from bench.registry import RunContext
from bench.run.suites import resolve_for_dataset
real = backbones._torchvision
def offline_ok(builder, weights_name, backbone):
    try:
        return real(builder, weights_name, backbone)
    except backbones.MissingWeightsError:  # memory does not depend on the weights' values
        import torchvision.models as models
        return getattr(models, builder)(weights=None)
backbones._torchvision = offline_ok
method, root = sys.argv[1], sys.argv[2]
split = load_split("synthetic", "blobs", root)
config = resolve_for_dataset(method, "paper", "synthetic", {})
detector = build_detector(method, config, RunContext(seed=0))
start = time.perf_counter()
detector.fit(split.train)
detector.score(split.test)
print(json.dumps({"method": method, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF)
                  .ru_maxrss / 1024, "seconds": time.perf_counter() - start}))
"""


@click.command()
@click.option("--rows", default=597_000, show_default=True, help="Patches in the bank.")
@click.option("--dims", default="128,32", show_default=True, help="Projection sizes.")
@click.option("--steps", default=200, show_default=True, help="Greedy steps timed per variant.")
@click.option("--train", default=320, show_default=True, help="Training images (memory part).")
@click.option("--queries", default=100_000, show_default=True, help="Test patches searched.")
@click.option("--memory", default=59_700, show_default=True, help="Coreset rows searched.")
@click.option("--patch-dim", default=152, show_default=True,
              help="Patch feature size (Lite0's strides 8 and 16: 40 + 112).")
@click.option("--csflow-preset", default="cpu", show_default=True)
@click.option("--csflow-steps", default=20, show_default=True)
@click.option("--skip-memory", is_flag=True)
@click.option("--skip-patchcore", is_flag=True, help="Leave out parts 1 and 2.")
def main(rows: int, dims: str, steps: int, train: int, queries: int, memory: int,
         patch_dim: int, csflow_preset: str, csflow_steps: int, skip_memory: bool,
         skip_patchcore: bool) -> None:
    print(f"CPU: {platform.processor() or platform.machine()}; torch threads: "
          f"{torch.get_num_threads()}")
    if not skip_patchcore:
        print(f"\n1. greedy coreset step, bank of {rows} patches")
        for dim in (int(d) for d in dims.split(",")):
            base = None
            for columns, numpy_argmax in ((False, False), (True, False), (True, True)):
                seconds = _per_step(columns, numpy_argmax, rows, dim, steps)
                base = base or seconds
                name = f"{'columns' if columns else 'rows':7s}, argmax in {'numpy' if numpy_argmax else 'torch'}"
                print(f"  d*={dim:4d} {name}: {1000 * seconds:6.2f} ms/step  (x{base / seconds:.2f}); "
                      f"coreset 1 %: {seconds * rows * 0.01 / 60:5.1f} min, "
                      f"10 %: {seconds * rows * 0.1 / 60:6.1f} min")
        print("\n2. nearest-neighbour search (k = 1)")
        nearest_search(queries, memory, patch_dim)
    print(f"\n3. CS-Flow's training step, preset {csflow_preset}")
    csflow_step_cost(csflow_preset, csflow_steps, check_steps=5)
    if skip_memory:
        return
    from bench.data.synthetic import make_synthetic

    print(f"\n4. peak resident memory, WideResNet-50 at 224 px, {train} training images")
    with tempfile.TemporaryDirectory() as tmp:
        root = make_synthetic(Path(tmp), categories=("blobs",), n_train=train, n_test_good=32,
                              n_test_defect=16, size=256)
        for method in ("patchcore", "padim"):
            out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, method, str(root)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"  {method}: failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  {method}: peak RSS {result['peak_rss_mb'] / 1024:.2f} GiB, "
                  f"{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
