"""Do two runs of one artifact find the same faces? Boxes matched one to one by IoU, scores compared."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from runtimes.detection.nms import box_iou


@dataclass(frozen=True)
class Agreement:
    reference: int  # detections in the reference run (x86)
    other: int  # detections in the compared run (emulated core)
    matched: int  # pairs with IoU >= min_iou and |score difference| <= max_score_diff
    min_iou: float  # worst IoU among matched pairs (1.0 when nothing to match)
    max_score_diff: float  # worst score difference among matched pairs

    @property
    def agrees(self) -> bool:
        return self.matched == self.reference == self.other


def _pairs(reference: list[dict], other: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The one-to-one assignment maximising IoU: row and column indices, their IoUs and |score differences|."""
    if not reference or not other:
        empty = np.zeros(0)
        return empty.astype(int), empty.astype(int), empty, empty
    iou = box_iou(np.array([d["box"] for d in reference], np.float64), np.array([d["box"] for d in other], np.float64))
    rows, cols = linear_sum_assignment(-iou)
    diffs = np.abs(np.array([reference[r]["score"] for r in rows]) - np.array([other[c]["score"] for c in cols]))
    return rows, cols, iou[rows, cols], diffs


def agreement(reference: list[dict], other: list[dict], min_iou: float = 0.9,
              max_score_diff: float = 0.02) -> Agreement:
    """reference/other: one image's detections as [{'box': [x1,y1,x2,y2], 'score': s}, ...]."""
    _, _, ious, diffs = _pairs(reference, other)
    good = (ious >= min_iou) & (diffs <= max_score_diff)
    return Agreement(len(reference), len(other), int(good.sum()), float(ious.min(initial=1.0)),
                     float(diffs.max(initial=0.0)))


def outliers(reference: list[dict], other: list[dict], min_iou: float = 0.9,
             max_score_diff: float = 0.02) -> list[str]:
    """What keeps two runs from agreeing, readable: pairs out of tolerance and detections only one side has."""
    rows, cols, ious, diffs = _pairs(reference, other)
    found = [f"score {reference[r]['score']:.3f} → {other[c]['score']:.3f}, IoU {iou:.3f}"
             for r, c, iou, diff in zip(rows, cols, ious, diffs) if iou < min_iou or diff > max_score_diff]
    found += [f"score {reference[r]['score']:.3f} only in the reference"
              for r in sorted(set(range(len(reference))) - set(rows.tolist()))]
    found += [f"score {other[c]['score']:.3f} only here" for c in sorted(set(range(len(other))) - set(cols.tolist()))]
    return found


def combine(parts: list[Agreement]) -> Agreement:
    """Several images' agreements as one (counts added, worst cases kept)."""
    return Agreement(sum(p.reference for p in parts), sum(p.other for p in parts), sum(p.matched for p in parts),
                     min((p.min_iou for p in parts), default=1.0), max((p.max_score_diff for p in parts), default=0.0))
