"""Face anonymisation: every face box, grown by a margin, blurred or pixelated in place.

The blur shrinks the region to a few pixels across the face (so no detail survives, whatever the face size) and
smooths it back up: about ten times cheaper than a Gaussian of the same strength on the full region. Regions of
one face (its shown box, its track's estimate, its raw detection: IoU 0.3 or more) merge into one, so no edge of
one runs across the face; other regions are blurred largest first, so a small face is blurred last, whole.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

STYLES = ("blur", "pixelate")
DEFAULT_MARGIN = 0.25  # share of the box's width (height) added on the left and right (top and bottom)
MERGE_IOU = 0.3  # regions this alike are one face seen twice
CELLS_ACROSS = 6  # what is left of a face: this many cells (pixelate) or blurred samples (blur) across the box


def grown_boxes(boxes: np.ndarray, margin: float, width: int, height: int) -> np.ndarray:
    """(N,4) int xyxy: each box grown by `margin` of its size on every side, rounded outwards, clipped."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    size = boxes[:, 2:] - boxes[:, :2]
    grown = np.concatenate([np.floor(boxes[:, :2] - margin * size), np.ceil(boxes[:, 2:] + margin * size)], axis=1)
    return np.clip(grown, 0, [width, height, width, height]).astype(np.int64)


def merged_regions(boxes: np.ndarray, margin: float, width: int, height: int) -> list[tuple[np.ndarray, float]]:
    """(region xyxy, largest face size in it), largest first: grown boxes, those of one face (IoU >= MERGE_IOU)
    merged into their bounding box."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    regions = [(grown, float(max(box[2] - box[0], box[3] - box[1])))
               for grown, box in zip(grown_boxes(boxes, margin, width, height), boxes)]
    merged = True
    while merged:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                (a, size_a), (b, size_b) = regions[i], regions[j]
                if iou(a, b) >= MERGE_IOU:
                    regions[i] = (np.concatenate([np.minimum(a[:2], b[:2]), np.maximum(a[2:], b[2:])]),
                                  max(size_a, size_b))
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(regions, key=lambda region: -region[1])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def anonymise(image_bgr: np.ndarray, boxes: np.ndarray, style: str = "blur",
              margin: float = DEFAULT_MARGIN) -> None:
    """Blur or pixelate each box of `boxes` (xyxy, image pixels) grown by `margin`, in place."""
    if style not in STYLES:
        raise ValueError(f"anonymisation style {style!r}: expected one of {', '.join(STYLES)}")
    height, width = image_bgr.shape[:2]
    for (x1, y1, x2, y2), face in merged_regions(boxes, margin, width, height):
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = image_bgr[y1:y2, x1:x2]
        cell = max(1.0, face / CELLS_ACROSS)
        small = (max(1, math.ceil((x2 - x1) / cell)), max(1, math.ceil((y2 - y1) / cell)))
        coarse = cv2.resize(region, small, interpolation=cv2.INTER_AREA)
        if style == "pixelate":
            region[:] = cv2.resize(coarse, (x2 - x1, y2 - y1), interpolation=cv2.INTER_NEAREST)
        else:
            coarse = cv2.GaussianBlur(coarse, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
            region[:] = cv2.resize(coarse, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)
