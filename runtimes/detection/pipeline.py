"""The pipelined loop shared by evaluation and video: prepare ahead, run the backend here, finish behind.

Three stages overlap: a reader thread pulls the next items from the source and prepares them (decoding,
preprocessing), the calling thread runs the backend, a writer thread finishes earlier items in order (decode +
NMS, tracking, drawing, writing). Both queues are bounded, so memory stays flat on endless sources (cameras).
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

from runtimes.detection.detector import Detector
from runtimes.detection.preprocess import prepare

Item, Loaded, Outputs, Result = TypeVar("Item"), TypeVar("Loaded"), TypeVar("Outputs"), TypeVar("Result")
_END = object()


def pipelined(source: Iterable[Item], load: Callable[[Item], Loaded], forward: Callable[[Loaded], Outputs],
              finish: Callable[[Loaded, Outputs], Result], ahead: int = 2, behind: int = 4) -> Iterator[Result]:
    """Yield finish(loaded, forward(loaded)) for each item of `source`, in order, where loaded = load(item).

    The source is iterated and `load` runs on a reader thread up to `ahead` items ahead; `forward` runs on the
    calling thread; `finish` runs on a writer thread, at most `behind` items behind. Results are yielded as soon
    as they are ready without stalling the backend. If the consumer stops early (break, Ctrl-C), the items
    already forwarded are still finished before this returns, and nothing more is read.
    """
    items = iter(source)

    def pull():
        item = next(items, _END)
        return _END if item is _END else load(item)

    reader = ThreadPoolExecutor(1, thread_name_prefix="facekit-load")
    writer = ThreadPoolExecutor(1, thread_name_prefix="facekit-finish")
    try:
        loading = deque(reader.submit(pull) for _ in range(max(1, ahead)))
        finishing: deque = deque()
        while (loaded := loading.popleft().result()) is not _END:
            loading.append(reader.submit(pull))
            finishing.append(writer.submit(finish, loaded, forward(loaded)))
            while finishing and (len(finishing) > behind or finishing[0].done()):
                yield finishing.popleft().result()
        while finishing:
            yield finishing.popleft().result()
    finally:
        reader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True)


def lowest_block_median(times: list[float], blocks: int = 3) -> float:
    """The lowest median of `blocks` consecutive blocks of `times`: on a shared machine, bursts of outside load
    lasting a few hundred milliseconds moved single medians by up to 50%; a burst spoils a block, not the figure."""
    size = max(1, len(times) // blocks)
    return min(statistics.median(times[i:i + size]) for i in range(0, size * blocks, size) if times[i:i + size])


def forward_alone_ms(detector: Detector, image_bgr: np.ndarray, runs: int = 10, blocks: int = 3,
                     warmup: int = 3) -> float:
    """Backend time on one real image with nothing else running, the lowest of `blocks` medians of `runs` runs:
    the reference for overhead shares (in-loop forward times are inflated by the other stages competing for the
    cores, and a slow reference would flatter the pipeline)."""
    blob, _ = prepare(image_bgr, detector.spec, detector.resize)
    for _ in range(warmup):
        detector.backend(blob)
    times = []
    for _ in range(runs * blocks):
        start = time.perf_counter()
        detector.backend(blob)
        times.append(time.perf_counter() - start)
    return lowest_block_median(times, blocks) * 1000
