"""Evaluate artifacts (or existing prediction folders) on WIDER FACE and collect what the report shows."""
from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from eval.breakdown import by_size, operating_point
from eval.degrade import Degradation
from eval.groundtruth import SETTINGS, GroundTruth
from eval.inference import Timing, predict_images
from eval.predictions import read_predictions, shard_of
from eval.protocol import IOU_THRESHOLD, SettingResult, image_curves, normalize_scores, summarize
from models.families import FAMILIES
from runtimes.backends.base import load_backend, resolve_artifact
from runtimes.detection.detector import MAX_DET, PRE_NMS_TOP_K, Detector
from runtimes.files import atomic_write_text, sha256_file


@dataclass(frozen=True)
class Protocol:
    """Inference settings, recorded in the report because each one moves AP."""

    hw: tuple[int, int] | None = None
    resize: str | None = None
    score_threshold: float = 0.02
    nms_threshold: float = 0.4
    max_det: int | None = MAX_DET
    threads: int | None = None
    pre_nms_top_k: int | None = PRE_NMS_TOP_K
    runtime: str | None = None  # None: the artifact's file type's own


@dataclass(frozen=True)
class Scoring:
    """How predictions are scored: the match IoU (0.5 official, 0.3 for rough detection) and the deployment score."""

    iou_threshold: float = IOU_THRESHOLD
    operating_score: float = 0.5


OFFICIAL = Scoring()


@dataclass
class ModelResult:
    label: str
    source: str
    results: dict[str, SettingResult]
    per_event: dict[str, dict[str, float]]
    protocol: dict
    predictions_dir: Path
    operating_point: dict[str, dict]
    by_size: dict[str, dict]
    degradations: dict[str, dict[str, float]] = field(default_factory=dict)  # name → AP per setting
    timing: dict | None = None
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def ap(self) -> dict[str, float]:
        return {s: self.results[s].ap for s in SETTINGS}


def label_for(path: Path) -> str:
    """A folder name for an artifact: its parent and own names, e.g. scrfd_500m_kps_480x640-tflite-int8."""
    path = Path(path)
    parts = [path.parent.name, path.name] if path.is_dir() else [path.parent.parent.name, path.parent.name]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(p for p in parts if p))


def load_detector(artifact: Path, protocol: Protocol) -> Detector:
    model_path, spec_path = resolve_artifact(artifact)
    if not spec_path.is_file():
        raise FileNotFoundError(f"{artifact}: no model.json beside {model_path.name}; make one with "
                                f"python -m converters.describe {model_path} --family {'|'.join(FAMILIES)} --hw H,W "
                                "--out DIR (or convert it: python -m converters.onnx --onnx FILE ...)")
    backend = load_backend(model_path, protocol.threads, runtime=protocol.runtime)
    if protocol.hw and tuple(protocol.hw) != backend.spec.hw:
        h, w = protocol.hw
        raise ValueError(f"{artifact} takes a fixed {backend.spec.input_h}x{backend.spec.input_w} input; "
                         f"for {h}x{w} convert again with --hw {h},{w}")
    return Detector(backend, protocol.score_threshold, protocol.nms_threshold, protocol.max_det, protocol.resize,
                    protocol.pre_nms_top_k)


def prediction_settings(artifact: Path, detector: Detector) -> dict:
    """What the prediction files depend on: the artifact's files and every setting that moves a detection."""
    model_path, spec_path = resolve_artifact(artifact)
    files = sorted({spec_path, *model_path.parent.glob(f"{model_path.stem}.*")})  # e.g. ncnn's .param and .bin
    return {"artifact": {p.name: sha256_file(p) for p in files},
            "hw": list(detector.spec.hw), "resize": detector.resize, "score_threshold": detector.score_threshold,
            "nms_threshold": detector.nms_threshold, "pre_nms_top_k": detector.pre_nms_top_k,
            "max_det": detector.max_det, "runtime": type(detector.backend).__name__}


def check_reuse(folder: Path, settings: dict, overwrite: bool) -> None:
    """Prediction files are reused only when made with these settings: other settings are an error (or, with
    overwrite, the old files go first so no file of either run can be mistaken for the other's)."""
    record = folder / "settings.json"
    if (folder / "predictions").is_dir() and any((folder / "predictions").rglob("*.txt")):
        made_with = json.loads(record.read_text()) if record.is_file() else None
        if made_with == settings and not overwrite:
            return
        if not overwrite:
            changed = (sorted(k for k in settings if made_with.get(k) != settings[k]) if made_with
                       else ["unknown: no settings.json"])
            raise ValueError(f"{folder / 'predictions'} holds predictions made with other settings "
                             f"({', '.join(changed)}); pass --overwrite to predict again, or another --out")
        shutil.rmtree(folder / "predictions")
    atomic_write_text(record, json.dumps(settings, indent=2) + "\n")


def run_model(artifact: Path, truth: GroundTruth, images_dir: Path, out: Path, protocol: Protocol,
              overwrite: bool = False, shard: tuple[int, int] | None = None,
              degradations: list[Degradation] = ()) -> Path:
    """Predict with one artifact into out/<label>/predictions (and out/<label>/degraded/<name>/predictions for each
    degradation), recording run.json beside each; returns the label folder."""
    detector = load_detector(artifact, protocol)
    label = label_for(artifact) + (f"-{protocol.runtime}" if protocol.runtime else "")
    folder = out / label
    settings = prediction_settings(artifact, detector)
    keys = [t.key for t in truth.images]
    keys = shard_of(keys, shard) if shard else keys
    record = {"source": str(artifact), "protocol": {**asdict(protocol), "hw": list(detector.spec.hw),
                                                     "resize": detector.resize}}
    for degradation in (None, *degradations):
        where = folder if degradation is None else folder / "degraded" / degradation.name
        check_reuse(where, settings if degradation is None else {**settings, "degradation": degradation.name},
                    overwrite)
        name = label if degradation is None else f"{label} {degradation.name}"
        run = predict_images(detector, images_dir, keys, where / "predictions", overwrite, name, degradation)
        write_run_record(where, {**record, "degradation": degradation.name if degradation else None}, run, shard)
    return folder


def write_run_record(folder: Path, record: dict, run, shard: tuple[int, int] | None) -> None:
    record = {**record, "timing": run.timing.as_dict(), "reused": run.reused, "unreadable": run.unreadable,
              "shard": list(shard) if shard else None}
    record_path = folder / (f"run_shard{shard[0]}of{shard[1]}.json" if shard else "run.json")
    if run.timing.images == 0 and record_path.is_file():  # all reused: keep the timing of the run that predicted
        record["timing"] = json.loads(record_path.read_text())["timing"]
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")


def predictions_dir_of(folder: Path) -> Path:
    """folder/predictions for a label folder the kit wrote, folder itself for a bare submission folder."""
    return folder / "predictions" if (folder / "predictions").is_dir() else folder


def read_folder(folder: Path, keys: list[str]) -> tuple[dict[str, np.ndarray], list[str], list[dict]]:
    """The predictions under predictions_dir_of(folder), the keys without a file, and the run records."""
    predictions_dir = predictions_dir_of(folder)
    if not predictions_dir.is_dir():
        raise FileNotFoundError(f"{predictions_dir}: no such predictions folder")
    found, missing = read_predictions(predictions_dir, keys)
    if not found:
        raise ValueError(f"{predictions_dir}: no prediction file for any of the {len(keys)} evaluated images")
    runs = [json.loads(p.read_text()) for p in sorted(folder.glob("run*.json"))]
    unreadable = {k for r in runs for k in r["unreadable"]}
    return found, [k for k in missing if k not in unreadable], runs


def degraded_folders(folder: Path, names: list[str] | None) -> list[Path]:
    """folder/degraded/<name> for the names asked for, or (None) every one there (merged shards)."""
    root = folder / "degraded"
    if names is None:
        return sorted(p for p in root.glob("*") if (p / "predictions").is_dir())
    return [root / name for name in names]


def score(folder: Path, truth: GroundTruth, label: str | None = None, source: str | None = None,
          scoring: Scoring = OFFICIAL, degradations: list[str] | None = ()) -> ModelResult:
    """Score the submission files under folder (or folder/predictions) against the ground truth: AP per setting
    and event, the operating point, face sizes and (None: whichever folder/degraded/ holds) each degradation's AP."""
    start = time.perf_counter()
    keys = [t.key for t in truth.images]
    found, missing, runs = read_folder(folder, keys)
    iou = scoring.iou_threshold
    curves = image_curves(normalize_scores(found), truth.images, iou)
    results = summarize(curves.sum(axis=0), truth.images)
    per_event = {}
    for event in sorted({t.event for t in truth.images}):
        members = [i for i, t in enumerate(truth.images) if t.event == event]
        subset = summarize(curves[members].sum(axis=0), [truth.images[i] for i in members])
        per_event[event] = {s: r.ap for s, r in subset.items()}
    degraded = {}
    for where in degraded_folders(folder, degradations):
        variant, variant_missing, _ = read_folder(where, keys)
        degraded[where.name] = {s: r.ap for s, r in
                                summarize(image_curves(normalize_scores(variant), truth.images, iou).sum(axis=0),
                                          truth.images).items()}
        missing += [f"{where.name}:{k}" for k in variant_missing]
    timing = merged_timing(runs, time.perf_counter() - start)
    unreadable = sorted({k for r in runs for k in r["unreadable"]})
    predictions_dir = predictions_dir_of(folder)
    return ModelResult(label or folder.name, source or (runs[0]["source"] if runs else str(predictions_dir)),
                       results, per_event, runs[0]["protocol"] if runs else {}, predictions_dir,
                       operating_point(found, truth.images, scoring.operating_score, iou),
                       by_size(found, truth.images, scoring.operating_score, iou), degraded, timing, missing,
                       unreadable)


def merged_timing(runs: list[dict], scoring_seconds: float) -> dict | None:
    """Timings of all runs (shards) added up, plus scoring.

    The overhead share is 1 − (images × the backend's forward-alone time) / wall: how much longer evaluating
    took than the forward passes alone would have.
    """
    runs = [r for r in runs if r["timing"]["images"]]
    if not runs:
        return None
    summed = [f.name for f in fields(Timing) if f.name != "forward_alone_ms"]
    total = {k: sum(r["timing"][k] for r in runs) for k in summed}
    total["forward_alone_ms"] = float(np.mean([r["timing"]["forward_alone_ms"] for r in runs]))
    total["scoring"] = scoring_seconds
    total["wall"] += scoring_seconds
    forward_only = total["images"] * total["forward_alone_ms"] / 1000
    total["overhead_share"] = max(0.0, 1 - forward_only / total["wall"]) if total["wall"] else 0.0
    total["images_per_s"] = total["images"] / total["wall"] if total["wall"] else 0.0
    return total


def merge_shards(shard_outs: list[Path], out: Path) -> list[Path]:
    """Union the label folders (predictions and run records) of several shard outputs into out."""
    labels = []
    for shard_out in shard_outs:
        if not shard_out.is_dir():
            raise FileNotFoundError(f"{shard_out}: no such shard output folder")
        for folder in sorted(p for p in shard_out.iterdir() if (p / "predictions").is_dir()):
            target = out / folder.name
            shutil.copytree(folder, target, dirs_exist_ok=True)
            if target not in labels:
                labels.append(target)
    if not labels:
        raise ValueError(f"no predictions found in {', '.join(map(str, shard_outs))}")
    return labels
