"""What content fingerprints cost: hashing a split's files cold (no key file) and warm (the
keys remembered by path, size and modification time), side by side in one run.

1. MTD as laid out by ``bench.py download mtd`` (``--data-root``; its 1344 images), the
   authors' split.
2. An MVTec-size category: ``--mvtec-files`` files of ``--mvtec-mb`` MB each (MVTec AD's
   categories hold up to ~500 images of 0.3 to 1.4 MB PNG; the bytes are random, which hashing
   does not care about), written to a temporary folder.

"Cold" reads every file (from the page cache when it holds them: this script does not drop it,
so a first read from a slow disk costs more); "warm" is a new process's first fingerprint with
the key file in place: one ``stat`` per file and no read.

    python benchmarks/fingerprint_cost.py --data-root /work/data
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import click

from bench.data import load_split
from bench.data.base import Sample, Split
from bench.data.content import ContentKeys
from bench.data.fingerprint import legacy_split_fingerprint, split_fingerprint


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def timings(split: Split, root: Path, repeats: int) -> dict[str, float]:
    cold, warm, legacy = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as keys_dir:
            start = time.perf_counter()
            keys = ContentKeys(Path(keys_dir))
            split_fingerprint(split, root, keys)
            keys.save()
            cold.append(time.perf_counter() - start)
            start = time.perf_counter()
            again = ContentKeys(Path(keys_dir))  # as the next run: from the key file
            split_fingerprint(split, root, again)
            warm.append(time.perf_counter() - start)
            assert again.hashed == 0
        start = time.perf_counter()
        legacy_split_fingerprint(split, root)
        legacy.append(time.perf_counter() - start)
    return {"cold": statistics.median(cold), "warm": statistics.median(warm),
            "legacy": statistics.median(legacy)}


def show(name: str, n: int, megabytes: float, t: dict[str, float]) -> None:
    click.echo(f"{name}: {n} files, {megabytes:.0f} MB | cold {t['cold']:.2f} s | warm "
               f"{t['warm'] * 1000:.0f} ms | paths+sizes only (the old fingerprint) "
               f"{t['legacy'] * 1000:.0f} ms | cold/warm {t['cold'] / t['warm']:.0f}x")


@click.command()
@click.option("--data-root", type=click.Path(path_type=Path), default=Path("data"),
              show_default=True, help="Where MTD is laid out (skipped when it is not).")
@click.option("--mvtec-files", default=320, show_default=True)
@click.option("--mvtec-mb", default=1.0, show_default=True)
@click.option("--repeats", default=3, show_default=True)
def main(data_root: Path, mvtec_files: int, mvtec_mb: float, repeats: int) -> None:
    click.echo(f"CPU: {cpu_model()}, {os.cpu_count()} cores")
    if (data_root / "mtd").is_dir():
        split = load_split("mtd", "mtd", data_root)
        files = [s.path for s in (*split.train, *split.test)]
        size = sum(p.stat().st_size for p in files) / 2**20
        show("MTD", len(files), size, timings(split, data_root, repeats))
    else:
        click.echo(f"MTD: not under {data_root} (bench.py download mtd), skipped")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for i in range(mvtec_files):
            path = root / "cat" / ("train" if i < mvtec_files * 2 // 3 else "test") / f"{i:03d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(int(mvtec_mb * 2**20)))
            paths.append(path)
        cut = mvtec_files * 2 // 3
        split = Split("folder", "cat", [Sample(p, 0) for p in paths[:cut]],
                      [Sample(p, i % 2) for i, p in enumerate(paths[cut:])])
        show("MVTec-size category", len(paths), mvtec_files * mvtec_mb,
             timings(split, root, repeats))


if __name__ == "__main__":
    main()
