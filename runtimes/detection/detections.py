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

    def to_records(self, pixel_digits: int = 1, score_digits: int = 4) -> list[dict]:
        """One JSON-ready dict per face: its track id (when tracked), box x1,y1,x2,y2, score and landmarks (when
        the model has them), rounded; what runtimes.detect prints, --json writes and the Pi probe compares."""
        records = []
        for i in range(len(self)):
            record = {} if self.track_ids is None else {"id": int(self.track_ids[i])}
            record["box"] = [round(float(v), pixel_digits) for v in self.boxes[i]]
            record["score"] = round(float(self.scores[i]), score_digits)
            if self.landmarks is not None:
                record["landmarks"] = [[round(float(x), pixel_digits), round(float(y), pixel_digits)]
                                       for x, y in self.landmarks[i]]
            records.append(record)
        return records

    @classmethod
    def empty(cls, with_landmarks: bool = False) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32),
                   np.zeros((0, 5, 2), np.float32) if with_landmarks else None)
