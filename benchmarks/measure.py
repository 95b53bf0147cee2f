"""One benchmark configuration, measured inside this fresh process: python -m benchmarks.measure ... prints JSON.

The process pins itself to the first N usable cores before any runtime is imported (thread pools size
themselves at start), records its resident memory after the shared imports, after the runtime's import and
after loading the model, then times, round by round in turn, the forward pass alone, preprocessing, decode +
NMS and the whole Detector (BGR image in, Detections out) on each image, and reports its peak RSS last. Run by
benchmarks.harness, one process per configuration.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Only the standard library at import time: the process pins its cores before numpy, OpenCV or any runtime
# starts a thread pool (see measure()).

MIB = 1024 * 1024


def pin_to_cores(count: int) -> list[int]:
    """Restrict this process to the first `count` cores it may use; the cores chosen (all of them off Linux)."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    cores = sorted(os.sched_getaffinity(0))[:count]
    os.sched_setaffinity(0, cores)
    return cores


def rss_mib() -> float:
    """Resident memory now (Linux /proc), in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / MIB


def interleaved_ms(measured: dict, runs: int, warmup: int) -> dict[str, list[float]]:
    """Milliseconds of each named function, all of them run in turn each round, so that a burst of outside load
    (seen here lasting a few hundred ms) hits every quantity alike and their ratios stay meaningful."""
    for _ in range(warmup):
        for fn in measured.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(runs):
        for name, fn in measured.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def stats(times: list[float], blocks: int = 3) -> dict:
    """median_ms: the lowest of `blocks` consecutive block medians (the device unloaded: a noise burst spoils a
    block, not the figure); p10, p90 and spread = (p90 - p10) / median over all runs (what a user will see)."""
    from runtimes.detection.pipeline import lowest_block_median  # after pinning, like every heavy import here

    median = lowest_block_median(times, blocks)
    deciles = statistics.quantiles(times, n=10, method="inclusive") if len(times) > 1 else times * 9
    p10, p90 = deciles[0], deciles[8]
    return {"median_ms": round(median, 4), "p10_ms": round(p10, 4), "p90_ms": round(p90, 4),
            "spread": round((p90 - p10) / median, 4), "runs": len(times)}


def import_runtime(runtime) -> None:
    """Import the package a runtime needs (the adapters import theirs lazily, at load)."""
    if runtime.name == "litert":
        from runtimes.backends.tflite import interpreter_class

        interpreter_class()  # the lightest of LiteRT, tflite_runtime and TensorFlow that is installed
    else:
        importlib.import_module(runtime.package)


FACE_DETECTOR_YN = "facedetectoryn"  # OpenCV's own YuNet detector on a YuNet ONNX: what users run instead of the kit


def measure(model: Path, threads: int, runs: int, warmup: int, images: list[Path], runtime: str | None = None
            ) -> dict:
    cores = pin_to_cores(threads)
    import cv2

    record = {"cores": cores, "rss_base_mib": round(rss_mib(), 1)}
    pictures = []
    for path in images:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{path}: cannot be read as an image")
        pictures.append((path, image))
    make = face_detector_yn if runtime == FACE_DETECTOR_YN else kit_detector
    measured, faces = make(model, threads, runtime, pictures[0][1], record)
    measured.update({f"e2e {i}": (lambda image=image: faces(image)) for i, (_, image) in enumerate(pictures)})
    times = interleaved_ms(measured, runs, warmup)
    for name in ("forward", "preprocess", "postprocess"):
        record[name] = stats(times[name]) if name in times else None  # None: inside the forward
    record["end_to_end"] = [{"image": path.name, "size": [image.shape[1], image.shape[0]],
                             "faces": faces(image), **stats(times[f"e2e {i}"])}
                            for i, (path, image) in enumerate(pictures)]
    record["rss_peak_mib"] = round(peak_rss_mib(), 1)
    return record


def kit_detector(model: Path, threads: int, runtime: str | None, first: np.ndarray, record: dict):
    """The timed steps of the kit's Detector on the artifact, and a function image → face count."""
    from runtimes.backends.base import load_backend, resolve_artifact, runtime_for
    from runtimes.detection.detector import Detector
    from runtimes.detection.preprocess import prepare

    import_runtime(runtime_for(resolve_artifact(model)[0], runtime))
    record["rss_runtime_import_mib"] = round(rss_mib(), 1)
    backend = load_backend(model, threads, runtime=runtime)
    record["rss_loaded_mib"] = round(rss_mib(), 1)
    detector = Detector(backend, score_threshold=0.5)
    blob, resized = prepare(first, detector.spec, detector.resize)
    outputs = backend(blob)
    return ({"forward": lambda: backend(blob), "preprocess": lambda: prepare(first, detector.spec, detector.resize),
             "postprocess": lambda: detector.postprocess(outputs, resized)}, lambda image: len(detector(image)))


def face_detector_yn(model: Path, threads: int, runtime: str | None, first: np.ndarray, record: dict):
    """cv2.FaceDetectorYN on a YuNet artifact's ONNX at its input size, letterboxed as the kit does: its forward
    includes OpenCV's decode and NMS, so it has no postprocess step of its own."""
    import cv2

    from models.spec import ModelSpec
    from runtimes.backends.base import resolve_artifact
    from runtimes.detection.detector import PRE_NMS_TOP_K
    from runtimes.detection.preprocess import resize_to_canvas

    model_path, spec_path = resolve_artifact(model)
    spec = ModelSpec.load(spec_path)
    if model_path.suffix != ".onnx" or spec.family != "yunet":
        raise ValueError(f"{model}: cv2.FaceDetectorYN runs YuNet ONNX files, not {spec.family} {model_path.suffix}")
    record["rss_runtime_import_mib"] = round(rss_mib(), 1)  # OpenCV: imported with the shared modules
    cv2.setNumThreads(threads)
    detector = cv2.FaceDetectorYN.create(str(model_path), "", (spec.input_w, spec.input_h), 0.5, 0.4, PRE_NMS_TOP_K)
    record["rss_loaded_mib"] = round(rss_mib(), 1)

    def letterbox(image):
        return resize_to_canvas(image, spec.input_h, spec.input_w, "letterbox", rgb=False).canvas

    def faces(image) -> int:
        found = detector.detect(letterbox(image))[1]
        return 0 if found is None else len(found)

    canvas = letterbox(first)
    return {"forward": lambda: detector.detect(canvas), "preprocess": lambda: letterbox(first)}, faces


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.measure",
                                description="Measure one artifact at one thread count in this process (JSON out).")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--runs", type=int, default=60)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--image", type=Path, action="append", required=True, help="first: the 640x480 image")
    p.add_argument("--runtime", help="the runtime that runs the artifact (default: its file type's own)")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.model, args.threads, args.runs, args.warmup, args.image, args.runtime)))
    return 0


if __name__ == "__main__":
    from runtimes.cli import run_cli

    run_cli(main)
