"""The official WIDER FACE protocol (the WiderFace-Evaluation algorithm), vectorised.

Per image: detections by descending score; each takes the ground-truth face it overlaps most (IoU with the
official +1 pixel convention); at IoU ≥ 0.5 a face outside the setting's keep list makes the detection
ignored (neither hit nor false positive), a kept face is recalled once. Scores are min-max normalised over
all detections; precision/recall at 1,000 thresholds; AP is the VOC area under the precision envelope.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.groundtruth import SETTINGS, ImageTruth

THRESHOLDS = 1 - (np.arange(1000) + 1) / 1000  # as the official code: 0.999 … 0.0
IOU_THRESHOLD = 0.5


@dataclass(frozen=True)
class SettingResult:
    ap: float
    precision: np.ndarray  # (1000,) at THRESHOLDS
    recall: np.ndarray
    faces: int


def overlaps_plus_one(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """(N,K) IoU with the official +1 convention (py-faster-rcnn's bbox_overlaps)."""
    p, g = pred_xyxy[:, None, :], gt_xyxy[None, :, :]
    iw = np.minimum(p[..., 2], g[..., 2]) - np.maximum(p[..., 0], g[..., 0]) + 1
    ih = np.minimum(p[..., 3], g[..., 3]) - np.maximum(p[..., 1], g[..., 1]) + 1
    gt_area = (gt_xyxy[:, 2] - gt_xyxy[:, 0] + 1) * (gt_xyxy[:, 3] - gt_xyxy[:, 1] + 1)
    pred_area = (pred_xyxy[:, 2] - pred_xyxy[:, 0] + 1) * (pred_xyxy[:, 3] - pred_xyxy[:, 1] + 1)
    inter = iw * ih
    union = pred_area[:, None] + gt_area[None, :] - inter
    valid = (iw > 0) & (ih > 0)
    return np.where(valid, inter / np.where(valid, union, 1), 0.0)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:4]], axis=1)


def sort_by_score(predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each image's rows by descending score (stable), as a copy."""
    return {key: pred[np.argsort(-pred[:, 4], kind="stable")].copy() for key, pred in predictions.items()}


def normalize_scores(predictions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Min-max normalise scores over all images (official: min starts at 1, max at 0); rows sorted by score."""
    nonempty = [p for p in predictions.values() if len(p)]
    lo = min([1.0] + [float(p[:, 4].min()) for p in nonempty])
    hi = max([0.0] + [float(p[:, 4].max()) for p in nonempty])
    normalized = {}
    for key, pred in sort_by_score(predictions).items():
        if len(pred):
            with np.errstate(divide="ignore", invalid="ignore"):  # one distinct score: NaN, as the official code
                pred[:, 4] = (pred[:, 4] - lo) / (hi - lo)
        normalized[key] = pred
    return normalized


def assign(pred: np.ndarray, truth: ImageTruth, iou_threshold: float = IOU_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per detection: the face it overlaps most and whether that overlap reaches the IoU threshold."""
    overlaps = overlaps_plus_one(xywh_to_xyxy(pred[:, :4]), xywh_to_xyxy(truth.boxes))
    return overlaps.argmax(axis=1), overlaps.max(axis=1) >= iou_threshold


def first_hits(best: np.ndarray, recalled: np.ndarray) -> np.ndarray:
    """Detections (sorted) that recall their face first; later ones on the same face are duplicates."""
    first = np.zeros(len(best), bool)
    _, where = np.unique(best[recalled], return_index=True)
    first[np.flatnonzero(recalled)[where]] = True
    return first


def match_image(pred: np.ndarray, truth: ImageTruth, iou_threshold: float = IOU_THRESHOLD,
                outside: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per setting and detection (sorted): faces recalled so far, and whether it is a proposal (not ignored).

    outside: detections that, unmatched, are ignored rather than false positives (a face-size bucket's other sizes).
    """
    best, hit = assign(pred, truth, iou_threshold)
    matched = {}
    for setting in SETTINGS:
        counted = truth.counted[setting][best]
        first = first_hits(best, hit & counted)
        proposal = ~(hit & ~counted) if outside is None else ~(hit & ~counted) & (hit | ~outside)
        matched[setting] = np.cumsum(first).astype(np.float64), proposal
    return matched


def image_pr(scores: np.ndarray, recall_count: np.ndarray, proposal: np.ndarray,
             thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """(T,2): proposals and recalled faces among detections scoring ≥ each threshold (scores descending)."""
    above = np.searchsorted(-scores, -thresholds, side="right")  # detections with score ≥ threshold
    last = np.maximum(above - 1, 0)
    proposals = np.cumsum(proposal)[last]
    return np.where(above[:, None] > 0, np.stack([proposals, recall_count[last]], axis=1), 0.0)


def image_curves(predictions: dict[str, np.ndarray], truths: list[ImageTruth],
                 iou_threshold: float = IOU_THRESHOLD, thresholds: np.ndarray = THRESHOLDS,
                 outside=None) -> np.ndarray:
    """(images, settings, thresholds, 2) PR counts of each image; sums over any subset give that subset's curve.

    predictions: image key 'event/name' → (N,5) x,y,w,h,score sorted by descending score (normalize_scores
    for the official curve; raw scores with score thresholds for an operating point). outside: detections →
    mask of those ignored when unmatched (see match_image).
    """
    curves = np.zeros((len(truths), len(SETTINGS), len(thresholds), 2))
    for i, truth in enumerate(truths):
        pred = predictions.get(truth.key)
        if len(truth.boxes) == 0 or pred is None or len(pred) == 0:
            continue
        mask = None if outside is None else outside(pred)
        for k, (recall_count, proposal) in enumerate(match_image(pred, truth, iou_threshold, mask).values()):
            curves[i, k] = image_pr(pred[:, 4], recall_count, proposal, thresholds)
    return curves


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def summarize(curve: np.ndarray, truths: list[ImageTruth]) -> dict[str, SettingResult]:
    """AP per setting from summed PR counts (settings, 1000, 2) of `truths`, whose kept faces are the recall base."""
    results = {}
    for k, setting in enumerate(SETTINGS):
        faces = int(sum(t.counted[setting].sum() for t in truths))
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = curve[k, :, 1] / curve[k, :, 0]
            recall = curve[k, :, 1] / faces if faces else np.zeros(len(THRESHOLDS))
        results[setting] = SettingResult(voc_ap(recall, precision), precision, recall, faces)
    return results


def evaluate(predictions: dict[str, np.ndarray], truths: list[ImageTruth],
             iou_threshold: float = IOU_THRESHOLD) -> dict[str, SettingResult]:
    """AP per setting over `truths` (predictions as for image_curves)."""
    return summarize(image_curves(predictions, truths, iou_threshold).sum(axis=0), truths)
