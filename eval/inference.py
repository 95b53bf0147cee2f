"""Run a Detector over the evaluation images and write submission files, resumably, with a timing split.

Three stages overlap: a thread reads and preprocesses the next image, the calling thread runs the backend,
another thread decodes, applies NMS and writes the previous one. The overhead share is measured against the
backend alone (a forward-only timing before the run), never against in-loop timings that contention inflates.
"""
from __future__ import annotations

import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from eval.predictions import write_prediction
from runtimes.detector import Detector
from runtimes.preprocess import prepare

AHEAD = 2  # images read and preprocessed ahead of the backend


@dataclass
class Timing:
    """Seconds per stage (stage totals overlap in time); forward_alone_ms is the backend without the pipeline."""

    read: float = 0.0
    preprocess: float = 0.0
    forward: float = 0.0
    postprocess: float = 0.0
    write: float = 0.0
    wall: float = 0.0
    images: int = 0
    forward_alone_ms: float = 0.0

    def as_dict(self) -> dict:
        return {k: round(v, 4) for k, v in vars(self).items()}


@dataclass
class InferenceRun:
    timing: Timing = field(default_factory=Timing)
    reused: int = 0
    unreadable: list[str] = field(default_factory=list)


def forward_alone_ms(detector: Detector, image_path: Path, runs: int = 10) -> float:
    """Median backend time on one real image, nothing else running: the reference for the overhead share."""
    image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if image is None:
        return 0.0
    blob, _ = prepare(image, detector.spec, detector.resize)
    detector.backend(blob)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        detector.backend(blob)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def predict_images(detector: Detector, images_dir: Path, keys: list[str], out_dir: Path,
                   overwrite: bool = False, label: str = "") -> InferenceRun:
    """Detect faces in images_dir/<key>.jpg for each key; write out_dir/<key>.txt. Existing files are reused."""
    run = InferenceRun()
    todo = [k for k in keys if overwrite or not (out_dir / f"{k}.txt").is_file()]
    run.reused = len(keys) - len(todo)
    if not todo:
        return run
    timing = run.timing
    timing.forward_alone_ms = forward_alone_ms(detector, images_dir / f"{todo[0]}.jpg")

    def load(key):
        t0 = time.perf_counter()
        image = cv2.imread(str(images_dir / f"{key}.jpg"), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        prepared = None if image is None else prepare(image, detector.spec, detector.resize)
        return prepared, t1 - t0, time.perf_counter() - t1

    def finish(key, outputs, resized):
        t0 = time.perf_counter()
        found = detector.postprocess(outputs, resized)
        t1 = time.perf_counter()
        write_prediction(out_dir, key, found.boxes, found.scores)
        return t1 - t0, time.perf_counter() - t1

    start = time.perf_counter()
    with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as writer:
        loading = deque(reader.submit(load, k) for k in todo[:AHEAD])
        finishing = []
        for i, key in enumerate(tqdm(todo, desc=f"detect {label}".strip(), unit="img", leave=False, disable=None)):
            prepared, read_s, prep_s = loading.popleft().result()
            if i + AHEAD < len(todo):
                loading.append(reader.submit(load, todo[i + AHEAD]))
            timing.read += read_s
            timing.preprocess += prep_s
            if prepared is None:
                run.unreadable.append(key)
                continue
            blob, resized = prepared
            t0 = time.perf_counter()
            outputs = detector.backend(blob)
            timing.forward += time.perf_counter() - t0
            finishing.append(writer.submit(finish, key, outputs, resized))
        for future in finishing:
            post_s, write_s = future.result()
            timing.postprocess += post_s
            timing.write += write_s
            timing.images += 1
    timing.wall = time.perf_counter() - start
    return run
