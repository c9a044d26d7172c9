"""Features of transformed images, computed in batches and cached on disk by what they depend on.

The extractor is frozen, so the features of a transformed image are a pure function of the
image, the transform and the extractor: ``extract`` computes them once (a pipeline of three
stages that overlap: decoded images from the ``ImageCache``, transforms applied to whole
batches, the engine), and ``cached`` keeps them under a key of everything they depend on, so a
rerun or another method on the same features never recomputes them.
"""

from __future__ import annotations

import hashlib
import json
import queue
import threading
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from bench.config import FeatureConfig
from bench.data.base import Sample
from bench.data.imagecache import RECIPE, ImageCache
from bench.features.engines import Engine
from bench.features.extractor import extractor_scales
from bench.features.transforms import Scratch, prepare_batch
from bench.progress import progress as progress_bar
from bench.store.atomic import atomic_path, set_aside_unreadable

_PREFETCH = 8  # decoded images in flight ahead of the batch being assembled
_QUEUE = 2  # prepared batches waiting for the engine


def decoded(images: ImageCache, samples: Sequence[Sample], size: int) -> Iterator[np.ndarray]:
    """Compact uint8 images in order (one channel for grayscale), read by two threads a bounded
    window ahead (PIL and NumPy's file reads release the GIL)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        window = [pool.submit(images.load_compact, s.path, size) for s in samples[:_PREFETCH]]
        for i in range(len(samples)):
            image = window.pop(0).result()
            if i + _PREFETCH < len(samples):
                window.append(pool.submit(images.load_compact, samples[i + _PREFETCH].path, size))
            yield image


def stack_uint8(images: list[np.ndarray]) -> torch.Tensor:
    """uint8 (B, C, S, S): one channel when every image is grayscale, else three."""
    channels = max(x.shape[0] for x in images)
    return torch.from_numpy(np.stack([np.broadcast_to(x, (channels, *x.shape[1:]))
                                      for x in images]))


class InputBuffers:
    """The engine's input buffers, one (batch, 3, s, s) tensor per scale a set, reused: the
    producer fills a free set, the consumer frees it once the engine has run on it. At most
    ``sets`` exist (those waiting in the queue, the engine's and the one being filled), so the
    batches never pay for the page faults of fresh memory (40 MB a batch of 16 at 448 px)."""

    def __init__(self, batch: int, scales: tuple[int, ...], sets: int, stop: threading.Event):
        self.batch, self.scales, self.sets, self.stop = batch, scales, sets, stop
        self.made = 0
        self.free: queue.Queue = queue.Queue()

    def take(self) -> list[torch.Tensor] | None:
        """A free set (None once ``stop`` is set)."""
        if self.free.empty() and self.made < self.sets:
            self.made += 1
            return [torch.empty(self.batch, 3, s, s) for s in self.scales]
        while not self.stop.is_set():
            try:
                return self.free.get(timeout=0.1)
            except queue.Empty:
                continue
        return None

    def give(self, buffers: list[torch.Tensor]) -> None:
        self.free.put(buffers)


def _batches(images: ImageCache, samples: Sequence[Sample], params: np.ndarray,
             config: FeatureConfig, buffers: InputBuffers | None = None
             ) -> Iterator[tuple[np.ndarray, list[torch.Tensor], list[torch.Tensor] | None]]:
    """(flat indices, per-scale normalised inputs, the buffer set holding them) for
    ``extract_batch_size`` transformed images at a time, in image-major order."""
    n, k, _ = params.shape
    flat_params = params.reshape(n * k, 3)
    scales = extractor_scales(config)
    pending: list[np.ndarray] = []
    slots: list[int] = []
    scratch = Scratch()  # this generator's thread alone prepares its batches

    def prepared():
        idx = np.array(slots)
        held = None if buffers is None else buffers.take()
        if buffers is not None and held is None:
            return None  # stopped
        with torch.inference_mode():
            scaled = prepare_batch(stack_uint8(pending), flat_params[idx], config, scales, held,
                                   scratch)
        pending.clear()
        slots.clear()
        return idx, scaled, held

    for i, image in enumerate(decoded(images, samples, config.image_size)):
        for j in range(k):
            pending.append(image)
            slots.append(i * k + j)
            if len(pending) >= config.extract_batch_size:
                if (item := prepared()) is None:
                    return
                yield item
    if pending and (item := prepared()) is not None:
        yield item


def extract(engine: Engine, images: ImageCache, samples: Sequence[Sample], params: np.ndarray,
            config: FeatureConfig, progress: bool = False, desc: str = "features",
            streams: list[Callable[[list[torch.Tensor]], np.ndarray]] | None = None) -> np.ndarray:
    """Features of every transformed image: params (N, K, 3) -> features (N, K, D).

    A producer thread decodes, transforms and resizes the next batches into reused buffers
    while the engine runs on the current ones (``streams``, by default ``engine.streams()``:
    one call at a time, or several, each in a thread of its own), so the engine does not wait
    for its input.
    """
    n, k, _ = params.shape
    dim = engine.backbone.channels * len(extractor_scales(config))
    out = np.empty((n * k, dim), dtype=np.float32)
    streams = streams or engine.streams()
    ready: queue.Queue = queue.Queue(maxsize=_QUEUE + len(streams) - 1)
    stop = threading.Event()
    failure: list[BaseException] = []
    buffers = InputBuffers(config.extract_batch_size, extractor_scales(config),
                           _QUEUE + 2 * len(streams), stop)

    def produce() -> None:
        try:
            for item in _batches(images, samples, params, config, buffers):
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as err:  # re-raised in the consumer
            failure.append(err)
        finally:
            for _ in streams:
                ready.put(None)

    with progress_bar(n * k, desc, enabled=progress, unit="img") as bar:
        lock = threading.Lock()

        def consume(run: Callable[[list[torch.Tensor]], np.ndarray]) -> None:
            # Every batch comes before the end marks (one None a stream), so a stream that
            # finds the queue empty once ``stop`` is set has nothing left to do: the other
            # streams may have drained its mark.
            try:
                while not failure:
                    try:
                        item = ready.get(timeout=0.1)
                    except queue.Empty:
                        if stop.is_set():
                            return
                        continue
                    if item is None:
                        return
                    idx, scaled, held = item
                    out[idx] = run(scaled)  # rows of its own: no two streams write the same
                    buffers.give(held)
                    with lock:
                        bar.update(len(idx))
            except BaseException as err:
                failure.append(err)
                stop.set()

        threads = [threading.Thread(target=produce, name="feature-batches", daemon=True)]
        threads += [threading.Thread(target=consume, args=(run,), name=f"engine-stream-{i}",
                                     daemon=True) for i, run in enumerate(streams[1:], 1)]
        for thread in threads:
            thread.start()
        try:
            consume(streams[0])
        finally:
            stop.set()
            while any(t.is_alive() for t in threads):  # unblock a producer on a full queue
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass
            for thread in threads:
                thread.join()
    if failure:
        raise failure[0]
    return out.reshape(n, k, dim)


def feature_cache_key(engine: Engine, config: FeatureConfig, images: ImageCache,
                      samples: Sequence[Sample], params: np.ndarray) -> str:
    """Everything the features depend on: backbone, engine and precision, extractor settings,
    the files' contents and the transforms."""
    blob = json.dumps(
        {
            "backbone": engine.backbone.name,
            "backbone_stage": engine.backbone.stage,
            "engine": engine.name,
            "precision": engine.precision,
            "image_recipe": RECIPE,
            "image_size": config.image_size,
            "scales": list(extractor_scales(config)),
            "downscale_mode": config.downscale_mode,
            "rotation_interpolation": config.rotation_interpolation,
            "files": [images.key(s.path) for s in samples],
            "params": hashlib.sha256(np.ascontiguousarray(params, np.float32).tobytes()).hexdigest(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def cached(cache_dir: Path | None, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
    """Load features from ``cache_dir/key.npy`` or compute and store them atomically (an entry
    that fails to load is moved aside and computed again, never trusted)."""
    return _cached(cache_dir, key, compute, many=False)


def cached_arrays(cache_dir: Path | None, key: str,
                  compute: Callable[[], list[np.ndarray]]) -> list[np.ndarray]:
    """``cached`` for a list of arrays (one ``.npz`` file, uncompressed: read back fast)."""
    return _cached(cache_dir, key, compute, many=True)


def is_cached(cache_dir: Path | None, key: str, many: bool = False) -> bool:
    """Whether ``cached`` (``cached_arrays``) would find an entry for ``key``."""
    return cache_dir is not None and (Path(cache_dir) / f"{key}.{'npz' if many else 'npy'}").is_file()


def _cached(cache_dir: Path | None, key: str, compute: Callable, many: bool):
    if cache_dir is None:
        return compute()
    path = Path(cache_dir) / f"{key}.{'npz' if many else 'npy'}"
    if path.is_file():
        try:
            if not many:
                return np.load(path)
            with np.load(path) as stored:
                return [stored[f"arr_{i}"] for i in range(len(stored.files))]
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as err:
            set_aside_unreadable(path, err, "feature cache")
    values = compute()
    needed = sum(v.nbytes for v in values) if many else values.nbytes
    with atomic_path(path, suffix=".npz" if many else "", needed=needed) as tmp:
        if many:
            np.savez(tmp, *values)
        else:
            with open(tmp, "wb") as fh:  # a short write raises; atomic_path tells a full disk
                np.save(fh, values)
    return values
