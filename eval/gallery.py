"""Pictures of what each artifact gets right and wrong: the same val images, one column per artifact.

At the operating score, every Hard face and detection is one of: a true positive (the first detection to reach
the IoU threshold on a face), a false positive (unmatched, or a duplicate), a miss (a face no detection recalled),
or ignored (a detection of a face outside the keep lists, as the protocol ignores it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from eval.groundtruth import ImageTruth
from eval.predictions import read_prediction
from eval.protocol import assign, first_hits, xywh_to_xyxy
from runtimes.files import atomic_write_bytes

SETTING = "hard"
COLORS = {"truth": (255, 160, 0), "tp": (0, 200, 0), "fp": (0, 0, 255), "miss": (0, 200, 255),
          "ignored": (160, 160, 160)}  # BGR
LEGEND = {"ground truth": "truth", "true positive": "tp", "false positive": "fp", "missed face": "miss",
          "ignored (not a Hard face)": "ignored"}
COLUMN_WIDTH = 640
MAX_FACES = 30  # crowd images with hundreds of faces make unreadable pictures


@dataclass(frozen=True)
class Outcome:
    """One artifact on one image at the operating score (detections sorted by score)."""

    detections: np.ndarray  # (N,5) x,y,w,h,score
    tp: np.ndarray          # (N,) bool
    fp: np.ndarray          # (N,) bool
    recalled: np.ndarray    # (K,) bool, per face
    missed: np.ndarray      # (K,) bool: a counted face not recalled


def classify(pred: np.ndarray, truth: ImageTruth, score: float, iou_threshold: float) -> Outcome:
    pred = pred[np.argsort(-pred[:, 4], kind="stable")]
    pred = pred[pred[:, 4] >= score]
    counted = truth.counted[SETTING]
    recalled = np.zeros(len(truth.boxes), bool)
    if len(pred) == 0 or len(truth.boxes) == 0:
        return Outcome(pred, np.zeros(len(pred), bool), np.ones(len(pred), bool), recalled, counted.copy())
    best, hit = assign(pred, truth, iou_threshold)
    tp = first_hits(best, hit & counted[best])
    recalled[best[tp]] = True
    ignored = hit & ~counted[best]
    return Outcome(pred, tp, ~tp & ~ignored, recalled, counted & ~recalled)


def disagreement(outcomes: list[Outcome]) -> tuple[int, int]:
    """(faces some artifacts recall and others miss + the spread of false-positive counts, total errors)."""
    recalled = np.stack([o.recalled for o in outcomes])
    split = int((recalled.any(axis=0) & ~recalled.all(axis=0)).sum())
    fps = [int(o.fp.sum()) for o in outcomes]
    errors = sum(int(o.missed.sum()) + f for o, f in zip(outcomes, fps))
    return split + max(fps) - min(fps), errors


def choose(outcomes: dict[str, list[Outcome]], truths: dict[str, ImageTruth], n: int) -> list[str]:
    """The n image keys (with at most MAX_FACES Hard faces) where the artifacts disagree most, then err most."""
    readable = [k for k in outcomes if truths[k].counted[SETTING].sum() <= MAX_FACES]
    return sorted(readable, key=lambda k: (*(-v for v in disagreement(outcomes[k])), k))[:n]


def draw(image: np.ndarray, truth: ImageTruth, outcome: Outcome, title: str) -> np.ndarray:
    """The image scaled to COLUMN_WIDTH with the outcome drawn, under a title line with its counts."""
    scale = COLUMN_WIDTH / image.shape[1]
    canvas = cv2.resize(image, (COLUMN_WIDTH, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)

    def box(xywh, color, thickness):
        x1, y1, x2, y2 = (int(round(v * scale)) for v in xywh_to_xyxy(np.asarray(xywh)[None])[0])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        return x1, y1

    counted = truth.counted[SETTING]
    for face, is_counted, missed in zip(truth.boxes, counted, outcome.missed):
        box(face, COLORS["miss"] if missed else COLORS["truth"] if is_counted else COLORS["ignored"],
            2 if missed else 1)
    for det, tp, fp in zip(outcome.detections, outcome.tp, outcome.fp):
        color = COLORS["tp"] if tp else COLORS["fp"] if fp else COLORS["ignored"]
        x1, y1 = box(det[:4], color, 2)
        cv2.putText(canvas, f"{det[4]:.2f}", (x1, max(10, y1 - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, color, 1,
                    cv2.LINE_AA)
    counts = (f"TP {int(outcome.tp.sum())}  FP {int(outcome.fp.sum())}  missed {int(outcome.missed.sum())} "
              f"of {int(counted.sum())}")
    return np.vstack([text_strip(title, 26, 0.5), text_strip(counts, 22, 0.45), canvas])


def text_strip(text: str, height: int, size: float, width: int = COLUMN_WIDTH) -> np.ndarray:
    strip = np.full((height, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (6, height - 7), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 1, cv2.LINE_AA)
    return strip


def legend_strip(width: int) -> np.ndarray:
    """The colour legend, each name in its own colour, wrapped to width."""
    lines, x, row_height = [[]], 6, 20
    for name, key in LEGEND.items():
        (w, _), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
        if x + w > width - 6 and lines[-1]:
            lines.append([])
            x = 6
        lines[-1].append((name, key, x))
        x += w + 18
    strip = np.full((row_height * len(lines) + 4, width, 3), 255, np.uint8)
    for y, line in enumerate(lines, 1):
        for name, key, x in line:
            cv2.putText(strip, name, (x, y * row_height - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, COLORS[key], 1,
                        cv2.LINE_AA)
    return strip


def side_by_side(columns: list[np.ndarray], footer: str) -> np.ndarray:
    height = max(c.shape[0] for c in columns)
    gap = np.full((height, 6, 3), 255, np.uint8)
    padded = [np.vstack([c, np.full((height - c.shape[0], c.shape[1], 3), 255, np.uint8)]) for c in columns]
    row = np.hstack([part for c in padded for part in (c, gap)][:-1])
    return np.vstack([row, text_strip(footer, 24, 0.45, row.shape[1]), legend_strip(row.shape[1])])


def write_gallery(models, truths: list[ImageTruth], images_dir: Path, out: Path, n: int, score: float,
                  iou_threshold: float) -> list[Path]:
    """out/NN_<image>.png for the n images chosen; returns the files written (each: one column per model)."""
    by_key = {t.key: t for t in truths}
    outcomes = {}
    for key, truth in by_key.items():
        preds = []
        for m in models:
            path = m.predictions_dir / f"{key}.txt"
            preds.append(read_prediction(path) if path.is_file() else np.zeros((0, 5)))
        outcomes[key] = [classify(p, truth, score, iou_threshold) for p in preds]
    written = []
    for rank, key in enumerate(choose(outcomes, by_key, n), 1):
        image = cv2.imread(str(images_dir / f"{key}.jpg"), cv2.IMREAD_COLOR)
        if image is None:
            continue
        columns = [draw(image, by_key[key], o, m.label) for m, o in zip(models, outcomes[key])]
        footer = f"{key}: detections scoring >= {score}, matched at IoU {iou_threshold}, Hard faces"
        ok, png = cv2.imencode(".png", side_by_side(columns, footer))
        path = out / f"{rank:02d}_{key.split('/')[1]}.png"
        atomic_write_bytes(path, png.tobytes())
        written.append(path)
    return written
