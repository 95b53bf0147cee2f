"""Which artifacts to measure and how: one fresh process per (artifact, thread count, repeat), pinned to that many
cores by benchmarks.measure, results collected as rows labelled with the device."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
from tqdm import tqdm

from benchmarks.measure import FACE_DETECTOR_YN
from models.spec import ModelSpec
from runtimes.backends.base import RUNTIMES, SUFFIXES, resolve_artifact, runtime_for
from runtimes.files import atomic_write_bytes, shared_dir

LARGE_IMAGE = Path("data/widerface/WIDER_val/images/0--Parade/0_Parade_Parade_0_611.jpg")  # 1024×683, 10 faces


@dataclass(frozen=True)
class Target:
    """One artifact to benchmark: its folder, a label for tables, the set it belongs to, and its hub ONNX."""

    folder: Path
    label: str
    group: str
    runtime: str
    precision: str
    size_mb: float
    input_hw: tuple[int, int]
    onnx: Path | None  # the float graph FLOPs are counted on


def artifact_size_mb(model_file: Path) -> float:
    files = [model_file] + ([model_file.with_suffix(".bin")] if model_file.suffix == ".param" else [])
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 3)


def target_for(folder: Path, runtime: str | None = None) -> Target:
    """The artifact in `folder`, run by `runtime` (default: its file type's own; labelled when another)."""
    model_file, spec_file = resolve_artifact(folder)
    if runtime == FACE_DETECTOR_YN:
        return replace(target_for(folder), label=f"{folder.parent.name}/{folder.name} (cv2.FaceDetectorYN)",
                       runtime=FACE_DETECTOR_YN)
    chosen = runtime_for(model_file, runtime)
    if not spec_file.is_file():
        raise FileNotFoundError(f"{spec_file}: missing; describe a third-party file first (python -m "
                                "converters.describe FILE --family F --hw H,W --out DIR)")
    spec = ModelSpec.load(spec_file)
    folder = model_file.parent
    hub = folder.parent / "onnx" / "model.onnx"
    onnx = model_file if model_file.suffix == ".onnx" else hub if hub.is_file() else None
    if onnx is not None and onnx != model_file and ModelSpec.load(hub.with_name("model.json")).hw != spec.hw:
        onnx = None
    label = f"{folder.parent.name}/{folder.name}" + (f" ({chosen.name})" if chosen != runtime_for(model_file) else "")
    return Target(folder, label, folder.parent.name, chosen.name, spec.provenance.precision,
                  artifact_size_mb(model_file), spec.hw, onnx)


def targets_in(folders: list[Path], sets: list[Path], runtimes: list[str] = ()) -> list[Target]:
    """Artifact folders given one by one, then every artifact folder (with a model.json) inside each set folder;
    each once per runtime in `runtimes` that runs its file type (by its own runtime where none does), and YuNet
    ONNX files also by cv2.FaceDetectorYN when `runtimes` holds FACE_DETECTOR_YN."""
    chosen = [Path(f) for f in folders]
    for root in map(Path, sets):
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: no such folder of artifacts")
        found = sorted(p.parent for p in root.glob("*/model.json")
                       if any(q.suffix in SUFFIXES for q in p.parent.iterdir()))
        if not found:
            raise FileNotFoundError(f"{root}: holds no artifact folders (expected e.g. onnx/, tflite-int8/ from "
                                    "python -m converters.all)")
        chosen += sorted(found, key=lambda p: (p.name != "onnx", p.name))
    targets = []
    for folder in chosen:
        model_file, spec_file = resolve_artifact(folder)
        able = [r for r in runtimes if r != FACE_DETECTOR_YN and RUNTIMES[r].suffix == model_file.suffix] or [None]
        targets += [target_for(folder, runtime) for runtime in able]  # target_for checks model.json first
        if FACE_DETECTOR_YN in runtimes and model_file.suffix == ".onnx":
            if ModelSpec.load(spec_file).family == "yunet":
                targets.append(target_for(folder, FACE_DETECTOR_YN))
    return targets


def default_images(folder: Path | None = None) -> list[Path]:
    """A 640×480 photo (cut from a WIDER val image, cached in `folder`, default ~/.cache/facekit/benchmarks: never
    in the results, it is dataset content) and that 1024×683 image itself."""
    folder = folder or Path.home() / ".cache" / "facekit" / "benchmarks"
    large = shared_dir() / LARGE_IMAGE
    image = cv2.imread(str(large), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{large}: not found; pass two images with --image (a 640x480 one, then a large one)")
    small = cv2.resize(image, (720, 480), interpolation=cv2.INTER_AREA)[:, 40:680]
    path = folder / "photo_640x480.jpg"
    atomic_write_bytes(path, cv2.imencode(".jpg", small)[1].tobytes())
    return [path, large]


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def measure_in_fresh_process(target: Target, threads: int, runs: int, warmup: int, images: list[Path],
                             timeout: float = 900) -> dict:
    """Run benchmarks.measure in a new interpreter; its JSON, or {'error': …} naming what failed."""
    command = [sys.executable, "-m", "benchmarks.measure", "--model", str(target.folder), "--threads", str(threads),
               "--runs", str(runs), "--warmup", str(warmup), "--runtime", target.runtime] + [
        a for i in images for a in ("--image", str(i))]
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return json.loads(lines[-1])


def run(targets: list[Target], thread_counts: list[int], runs: int, warmup: int, images: list[Path],
        repeat: int = 1, device: str = "") -> tuple[list[dict], list[str]]:
    """Rows (one per target × threads × repeat) and notes (skipped configurations, failures)."""
    cores = usable_cores()
    notes = [f"{t} threads skipped: this machine lets the process use {cores} cores"
             for t in thread_counts if t > cores]
    counts = [t for t in thread_counts if t <= cores]
    configs = [(target, threads, k) for target in targets for threads in counts for k in range(repeat)]
    rows = []
    for target, threads, k in tqdm(configs, desc="benchmark", unit="config", disable=None):
        record = measure_in_fresh_process(target, threads, runs, warmup, images)
        if "error" in record:
            notes.append(f"{target.label} at {threads} threads failed: {record['error']}")
            continue
        rows.append({"device": device, "artifact": target.label, "folder": str(target.folder.resolve()),
                     "group": target.group, "runtime": target.runtime,
                     "precision": target.precision, "size_mb": target.size_mb,
                     "input": f"{target.input_hw[0]}x{target.input_hw[1]}", "threads": threads, "repeat": k,
                     **record})
    return rows, notes
