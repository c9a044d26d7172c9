"""Features of the images a detector will score, extracted while its density model trains.

On a CPU the flow's small training steps use two threads poorly (DifferNet's step: 120 ms on
two threads, 165 ms on one, benchmarks/flow_step.py), while the engine can run in streams of
one thread each (ONNX Runtime). So while the flow trains on one thread, one engine stream
extracts the features of the images the runner will score next (``ScoringExpected``), a few
images at a time; when the training ends, the stream stops after its chunk and scoring extracts
the rest with every stream. Only features are computed ahead: the training never reads them,
and they are the numbers scoring would compute (the same graph, images and transforms).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from bench.config import FeatureConfig
from bench.data.base import Sample
from bench.data.imagecache import ImageCache
from bench.features import bank
from bench.features.engines import Engine

log = logging.getLogger(__name__)

# Images per extraction call ahead (each under all its transforms): the longest the training's
# end waits for the call in flight (2 images x 32 test transforms: about 3 s on one stream).
CHUNK_IMAGES = 2


@dataclass
class Part:
    """One set of images to extract ahead, and how far it got."""

    key: str  # the feature cache key scoring will ask for
    samples: Sequence[Sample]
    params: np.ndarray  # (n, k, 3) transforms
    out: np.ndarray | None = None  # (n, k, dim), filled up to ``done`` images
    done: int = 0


class FeaturesAhead:
    """A thread that extracts ``parts`` in order on one engine stream until ``stop``; ``take``
    gives a part's finished images. ``features_ahead`` starts one only where the engine has
    more than one stream (one of them is then a fair share of the cores; an engine that runs
    as one call on every thread would compete with the training for all of them)."""

    def __init__(self, engine: Engine, images: ImageCache, config: FeatureConfig,
                 parts: list[Part], threads: int):
        self.engine, self.images, self.config, self.parts = engine, images, config, parts
        self.threads = threads  # the training's, once the thread is done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="features-ahead", daemon=True)
        self.seconds = 0.0  # wall time the thread spent extracting (for the record)

    def start(self) -> None:
        self._thread.start()

    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop after the chunk in flight and wait for it."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join()

    def take(self, key: str) -> tuple[np.ndarray, int] | None:
        """(features, images done) of the part scoring asks for by ``key``, stopping the thread
        first; None when nothing of it was extracted."""
        self.stop()
        for part in self.parts:
            if part.key == key and part.done:
                self.parts.remove(part)
                return part.out, part.done
        return None

    def pace(self) -> None:
        """Called by the training between epochs: all the threads back once the work is done."""
        if not self.running() and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def images_done(self) -> int:
        return sum(part.done * part.params.shape[1] for part in self.parts)

    def _run(self) -> None:
        stream = self.engine.streams()[0]
        start = time.perf_counter()
        try:
            for part in self.parts:
                n = len(part.samples)
                for i in range(0, n, CHUNK_IMAGES):
                    if self._stop.is_set():
                        return
                    feats = bank.extract(self.engine, self.images, part.samples[i:i + CHUNK_IMAGES],
                                         part.params[i:i + CHUNK_IMAGES], self.config,
                                         streams=[stream])
                    if part.out is None:
                        part.out = np.empty((n, *feats.shape[1:]), dtype=feats.dtype)
                    part.out[i:i + len(feats)] = feats
                    part.done = i + len(feats)
        except Exception as err:  # scoring extracts what is missing and meets the error itself
            log.debug("features ahead stopped: %s", err)
        finally:
            self.seconds = time.perf_counter() - start


@contextmanager
def features_ahead(engine: Engine, images: ImageCache, config: FeatureConfig,
                   parts: list[Part]) -> Iterator[FeaturesAhead | None]:
    """Around a training: ``parts`` extracted on one engine stream meanwhile, the training on
    the threads the stream leaves (None, and nothing changed, where it would not pay)."""
    streams = engine.streams()
    if not parts or len(streams) < 2:
        yield None
        return
    threads = torch.get_num_threads()
    ahead = FeaturesAhead(engine, images, config, parts, threads)
    # Threads made from here on (the stream's batch producer) start with this many too.
    torch.set_num_threads(max(1, threads - threads // len(streams)))
    ahead.start()
    try:
        yield ahead
    finally:
        ahead.stop()
        torch.set_num_threads(threads)
