"""What a deployer reads beside AP: precision, recall and F1 at the score they will run, and results per face size.

Both count as the official protocol does (a detection of a face outside the setting's keep list is ignored, a face is
recalled once, duplicates are false positives) but on the raw scores the runtimes threshold, not normalised ones.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from eval.groundtruth import SETTINGS, ImageTruth
from eval.protocol import image_curves, normalize_scores, sort_by_score, summarize

SCORE_GRID = np.round(1 - (np.arange(1000) + 1) / 1000, 3)  # raw score thresholds 0.999 … 0.0 for the F1 maximum
SIZE_BUCKETS = ((0, 16, "<16"), (16, 32, "16-32"), (32, 64, "32-64"), (64, 128, "64-128"), (128, np.inf, ">=128"))
SIZE_SETTING = "hard"  # Hard's faces include Easy's and Medium's: every face that counts anywhere


def counts_at(predictions: dict[str, np.ndarray], truths: list[ImageTruth], thresholds: np.ndarray,
              iou_threshold: float, outside=None) -> np.ndarray:
    """(settings, thresholds, 2) proposals and recalled faces at raw score thresholds."""
    return image_curves(sort_by_score(predictions), truths, iou_threshold, thresholds, outside).sum(axis=0)


def prf(proposals: float, recalled: float, faces: int) -> dict:
    precision = recalled / proposals if proposals else 1.0
    recall = recalled / faces if faces else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "true_positives": int(recalled),
            "false_positives": int(proposals - recalled), "faces": faces}


def operating_point(predictions: dict[str, np.ndarray], truths: list[ImageTruth], score: float,
                    iou_threshold: float) -> dict[str, dict]:
    """Per setting: P/R/F1 at `score`, and the raw score threshold (0.001 steps) that maximises F1, with its P/R/F1."""
    thresholds = np.concatenate([[score], SCORE_GRID])
    counts = counts_at(predictions, truths, thresholds, iou_threshold)
    result = {}
    for k, setting in enumerate(SETTINGS):
        faces = int(sum(t.counted[setting].sum() for t in truths))
        at = [prf(*counts[k, i], faces) for i in range(len(thresholds))]
        best = 1 + int(np.argmax([a["f1"] for a in at[1:]]))
        result[setting] = {"at_score": {"score": score, **at[0]},
                           "best_f1": {"score": float(thresholds[best]), **at[best]}}
    return result


def face_heights(truth: ImageTruth) -> np.ndarray:
    return truth.boxes[:, 3]


def in_bucket(heights: np.ndarray, bucket: tuple) -> np.ndarray:
    lo, hi, _ = bucket
    return (heights >= lo) & (heights < hi)


def bucket_truths(truths: list[ImageTruth], bucket: tuple) -> list[ImageTruth]:
    """The same images with only the faces of this height bucket counting (the others ignored, as COCO's areas)."""
    return [replace(t, counted={s: t.counted[s] & in_bucket(face_heights(t), bucket) for s in SETTINGS})
            for t in truths]


def by_size(predictions: dict[str, np.ndarray], truths: list[ImageTruth], score: float,
            iou_threshold: float) -> dict[str, dict]:
    """Per face-height bucket (Hard's faces): face count, recall at `score`, and AP.

    Within a bucket, faces of other sizes are ignored, and so is an unmatched detection whose own height is
    outside the bucket: a false positive counts against the size it would have been.
    """
    normalized = normalize_scores(predictions)
    k = SETTINGS.index(SIZE_SETTING)
    result = {}
    for bucket in SIZE_BUCKETS:
        subset = bucket_truths(truths, bucket)

        def outside(pred, bucket=bucket):
            return ~in_bucket(pred[:, 3], bucket)

        faces = int(sum(t.counted[SIZE_SETTING].sum() for t in subset))
        curve = image_curves(normalized, subset, iou_threshold, outside=outside).sum(axis=0)
        at = counts_at(predictions, subset, np.array([score]), iou_threshold, outside)[k, 0]
        result[bucket[2]] = {"faces": faces, "recall": at[1] / faces if faces else 0.0,
                             "ap": summarize(curve, subset)[SIZE_SETTING].ap if faces else 0.0}
    return result
