"""What the patch-level methods cost on this machine, side by side in one run.

1. PatchCore's greedy coreset step (one distance pass over the projected bank, the running
   minimum, the argmax) with the bank stored as rows or as columns, and the argmax in torch or
   NumPy: milliseconds per selected point, and the whole coreset's minutes at 1 % and 10 % of a
   bank of ``--rows`` patches (MTD at 224 px, stride-8 maps: 761 x 28 x 28 = 597k).
2. Peak resident memory (a child process per method, ``ru_maxrss``) of fitting and scoring
   PatchCore and PaDiM on an MVTec-size category (``--train`` training images, 64 test images)
   with the papers' backbone, WideResNet-50, at 224 px; its weights need not be present (the
   memory does not depend on them, so random ones are used when they are missing).

    python benchmarks/spatial_cost.py                   # both parts
    python benchmarks/spatial_cost.py --skip-memory     # the coreset part only
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
@click.option("--skip-memory", is_flag=True)
def main(rows: int, dims: str, steps: int, train: int, skip_memory: bool) -> None:
    print(f"CPU: {platform.processor() or platform.machine()}; torch threads: "
          f"{torch.get_num_threads()}")
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
    if skip_memory:
        return
    from bench.data.synthetic import make_synthetic

    print(f"\n2. peak resident memory, WideResNet-50 at 224 px, {train} training images")
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
