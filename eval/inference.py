"""Run a Detector over the evaluation images and write submission files, resumably, with a timing split.

The stages overlap through runtimes.detection.pipeline (read + preprocess ahead, backend here, decode + NMS + write
behind). The overhead share is measured against the backend alone (a forward-only timing before the run), never
against in-loop timings that contention inflates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
from tqdm import tqdm

from eval.predictions import write_prediction
from runtimes.detection.detector import Detector
from runtimes.detection.pipeline import forward_alone_ms, pipelined
from runtimes.detection.preprocess import prepare


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


@dataclass
class _Loaded:
    key: str
    prepared: tuple | None  # (blob, Resized), None if the image did not decode


def predict_images(detector: Detector, images_dir: Path, keys: list[str], out_dir: Path,
                   overwrite: bool = False, label: str = "", transform=None) -> InferenceRun:
    """Detect faces in images_dir/<key>.jpg for each key; write out_dir/<key>.txt. Existing files are reused.

    transform(image, key) → image, if given, changes each image as read (e.g. a degradation; counted as preprocess).
    """
    run = InferenceRun()
    todo = [k for k in keys if overwrite or not (out_dir / f"{k}.txt").is_file()]
    run.reused = len(keys) - len(todo)
    if not todo:
        return run
    timing = run.timing
    first = cv2.imread(str(images_dir / f"{todo[0]}.jpg"), cv2.IMREAD_COLOR)
    timing.forward_alone_ms = 0.0 if first is None else forward_alone_ms(detector, first)

    def load(key: str) -> _Loaded:
        t0 = time.perf_counter()
        image = cv2.imread(str(images_dir / f"{key}.jpg"), cv2.IMREAD_COLOR)
        t1 = time.perf_counter()
        if image is not None and transform is not None:
            image = transform(image, key)
        prepared = None if image is None else prepare(image, detector.spec, detector.resize)
        timing.read += t1 - t0
        timing.preprocess += time.perf_counter() - t1
        return _Loaded(key, prepared)

    def forward(loaded: _Loaded):
        if loaded.prepared is None:
            return None
        t0 = time.perf_counter()
        outputs = detector.backend(loaded.prepared[0])
        timing.forward += time.perf_counter() - t0
        return outputs

    def finish(loaded: _Loaded, outputs) -> None:
        if outputs is None:
            run.unreadable.append(loaded.key)
            return
        t0 = time.perf_counter()
        found = detector.postprocess(outputs, loaded.prepared[1])
        t1 = time.perf_counter()
        write_prediction(out_dir, loaded.key, found.boxes, found.scores)
        timing.postprocess += t1 - t0
        timing.write += time.perf_counter() - t1
        timing.images += 1

    start = time.perf_counter()
    results = pipelined(todo, load, forward, finish)
    for _ in tqdm(results, total=len(todo), desc=f"detect {label}".strip(), unit="img", leave=False, disable=None):
        pass
    timing.wall = time.perf_counter() - start
    return run
