"""Detections: the one result type every tool downstream of a Detector consumes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """boxes (N,4) float32 xyxy in original-image pixels; scores (N,); landmarks (N,5,2) or None; track ids or None."""

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray | None = None
    track_ids: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def __getitem__(self, index) -> Detections:
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        return Detections(self.boxes[index], self.scores[index], pick(self.landmarks), pick(self.track_ids))

    @classmethod
    def empty(cls, with_landmarks: bool = False) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, 5, 2), np.float32) if with_landmarks else None)
