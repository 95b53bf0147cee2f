"""Box IoU and greedy non-maximum suppression, vectorised numpy (areas without the legacy +1)."""
from __future__ import annotations

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a (N,4) xyxy with every box in b (M,4) → (N,M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def overlapping_pairs(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j), i ≠ j, whose boxes overlap along x: a sweep over boxes sorted by x1."""
    by_x1 = np.argsort(boxes[:, 0], kind="stable")
    x1 = boxes[by_x1, 0]
    ends = np.searchsorted(x1, boxes[by_x1, 2], side="left")  # boxes starting before this one ends
    counts = np.maximum(ends - np.arange(len(x1)) - 1, 0)
    first = np.repeat(np.arange(len(x1)), counts)
    second = first + 1 + np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return by_x1[first], by_x1[second]


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_det: int | None = None) -> np.ndarray:
    """Indices of the boxes kept by greedy NMS (a box goes if it overlaps a kept, higher-scoring one by more
    than iou_threshold), highest score first; ties keep input order.

    Exact greedy NMS without its N×kept loop: only pairs that overlap can suppress, so those are found first
    (sweep on x), and the greedy order is resolved over them alone. Thousands of low-score candidates, as
    WIDER evaluation at score 0.02 produces, take milliseconds.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = boxes[order].astype(np.float64)
    a, b = overlapping_pairs(ranked)
    x1, y1, x2, y2 = (np.ascontiguousarray(c) for c in ranked.T)
    inter = (np.clip(np.minimum(x2[a], x2[b]) - np.maximum(x1[a], x1[b]), 0, None)
             * np.clip(np.minimum(y2[a], y2[b]) - np.maximum(y1[a], y1[b]), 0, None))
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    iou = inter / np.maximum(areas[a] + areas[b] - inter, 1e-12)
    suppressing = iou > iou_threshold
    higher, lower = np.minimum(a, b)[suppressing], np.maximum(a, b)[suppressing]
    by_lower = np.argsort(lower, kind="stable")
    keep = [True] * len(order)
    # In rank order of the lower box, every higher box's fate is already settled when it is consulted.
    for low, high in zip(lower[by_lower].tolist(), higher[by_lower].tolist()):
        if keep[high]:
            keep[low] = False
    kept = order[np.flatnonzero(keep)]
    return kept if max_det is None else kept[:max_det]
