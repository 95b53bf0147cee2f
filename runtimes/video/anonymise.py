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

from runtimes.detection.nms import box_iou

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
    merged into their bounding box until no two regions are that alike. Each round merges whole connected groups
    found on one IoU matrix, so a crowd of hundreds of boxes costs milliseconds (a pairwise loop took seconds)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    regions = grown_boxes(boxes, margin, width, height).astype(np.float64)
    sizes = (boxes[:, 2:] - boxes[:, :2]).max(axis=1)
    while len(regions) > 1:
        group = connected_groups(box_iou(regions, regions) >= MERGE_IOU)
        count = group.max() + 1
        if count == len(regions):
            break
        merged = np.concatenate([np.full((count, 2), np.inf), np.full((count, 2), -np.inf)], axis=1)
        np.minimum.at(merged[:, :2], group, regions[:, :2])
        np.maximum.at(merged[:, 2:], group, regions[:, 2:])
        merged_sizes = np.zeros(count)
        np.maximum.at(merged_sizes, group, sizes)
        regions, sizes = merged, merged_sizes
    order = np.argsort(-sizes, kind="stable")
    return [(regions[i].astype(np.int64), float(sizes[i])) for i in order]


def connected_groups(linked: np.ndarray) -> np.ndarray:
    """(N,) group index 0..G-1 of each node of a symmetric (N,N) boolean adjacency, groups numbered by first node:
    each node takes the smallest label among its neighbours until nothing changes."""
    label = np.arange(len(linked))
    while True:
        smallest = np.where(linked, label[None, :], len(linked)).min(axis=1)
        smallest = np.minimum(smallest, label)
        if np.array_equal(smallest, label):
            return np.unique(label, return_inverse=True)[1]
        label = smallest


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
