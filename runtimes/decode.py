"""The one decoder: canonical raw outputs → candidate boxes/scores/landmarks in model-input pixels.

SCRFD: anchor centres on each stride's grid, distances×stride → boxes and landmarks (as insightface).
Ultra-Light: SSD priors from the spec, centre/size variances (as the Ultra-Light project).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from models.spec import ModelSpec


@lru_cache(maxsize=32)
def anchor_centers(h: int, w: int, stride: int, anchors: int) -> np.ndarray:
    """(H/s·W/s·anchors, 2) float32 x,y anchor centres in input pixels, row-major, each repeated per anchor."""
    ys, xs = np.mgrid[: math.ceil(h / stride), : math.ceil(w / stride)]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, anchors, axis=0)


def distance_to_boxes(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """centres (N,2) and distances (N,4) left,top,right,bottom → (N,4) xyxy."""
    return np.concatenate([centers - distances[:, :2], centers + distances[:, 2:]], axis=1)


def distance_to_points(centers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """centres (N,2) and offsets (N,2K) → (N,K,2) points."""
    return centers[:, None, :] + offsets.reshape(len(offsets), offsets.shape[1] // 2, 2)


@lru_cache(maxsize=32)
def ultraface_priors(h: int, w: int, strides: tuple[int, ...], min_boxes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(N,4) float32 cx,cy,w,h priors in 0..1, in the Ultra-Light project's order (level, row, column, box), clamped."""
    priors = []
    for stride, boxes in zip(strides, min_boxes):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        ys, xs = np.mgrid[:fh, :fw]
        cx = ((xs + 0.5) / fw).reshape(-1, 1).repeat(len(boxes), 1)
        cy = ((ys + 0.5) / fh).reshape(-1, 1).repeat(len(boxes), 1)
        bw = np.broadcast_to(np.array(boxes, np.float64) / w, cx.shape)
        bh = np.broadcast_to(np.array(boxes, np.float64) / h, cx.shape)
        priors.append(np.stack([cx, cy, bw, bh], axis=-1).reshape(-1, 4))
    return np.clip(np.concatenate(priors), 0.0, 1.0).astype(np.float32)


def decode_ssd(locations: np.ndarray, priors: np.ndarray, center_variance: float, size_variance: float) -> np.ndarray:
    """SSD regression (N,4) against priors (N,4) cx,cy,w,h → (N,4) xyxy in the priors' units."""
    centers = priors[:, :2] + locations[:, :2] * center_variance * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(locations[:, 2:] * size_variance)
    return np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)


def decode(outputs: list[np.ndarray], spec: ModelSpec, score_threshold: float
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Canonical raw outputs → boxes (M,4) xyxy, scores (M,), landmarks (M,5,2)|None in input pixels.

    Only candidates with score ≥ threshold are decoded.
    """
    if spec.family == "scrfd":
        return _decode_scrfd(outputs, spec, score_threshold)
    scores, locations = outputs
    keep = np.flatnonzero(scores[:, 1] >= score_threshold)
    priors = ultraface_priors(spec.input_h, spec.input_w, spec.strides, spec.min_boxes)[keep]
    boxes = decode_ssd(locations[keep], priors, spec.center_variance, spec.size_variance)
    boxes *= np.array([spec.input_w, spec.input_h] * 2, np.float32)
    return boxes.astype(np.float32), scores[keep, 1].astype(np.float32), None


def _decode_scrfd(outputs, spec, score_threshold):
    per_stride = 3 if spec.has_landmarks else 2
    boxes, scores, points = [], [], []
    for i, stride in enumerate(spec.strides):
        group = outputs[i * per_stride:(i + 1) * per_stride]
        keep = np.flatnonzero(group[0][:, 0] >= score_threshold)
        centers = anchor_centers(spec.input_h, spec.input_w, stride, spec.anchors_per_location)[keep]
        scores.append(group[0][keep, 0])
        boxes.append(distance_to_boxes(centers, group[1][keep] * stride))
        if spec.has_landmarks:
            points.append(distance_to_points(centers, group[2][keep] * stride))
    landmarks = np.concatenate(points).astype(np.float32) if spec.has_landmarks else None
    return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32), landmarks
