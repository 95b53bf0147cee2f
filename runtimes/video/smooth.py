"""Adaptive temporal smoothing of tracked boxes and landmarks: heavy when a face is still, light when it moves.

Per track, an exponential moving average whose factor follows the face's speed (the One Euro filter of Casiez
et al., CHI 2012): alpha = 1 / (1 + 1 / (2π·cutoff)), cutoff = min_cutoff + beta·speed, in cycles per frame.
Speed is the smoothed motion of the box centre and size in box sizes per frame, so the behaviour does not
depend on the resolution or on how large the face is. All tracks are filtered in one vectorised pass.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from runtimes.detection.detections import Detections


@dataclass(frozen=True)
class SmootherConfig:
    # Measured on the synthetic clip of tests/test_video.py (faces ~90 px, 3 px per frame pans): still-face
    # jitter 0.42x the raw detections', lag behind the true path 0.9 px.
    min_cutoff: float = 0.02  # cycles per frame when still: alpha ≈ 0.11
    beta: float = 10.0  # how fast the cutoff rises with speed (in box diagonals per frame)
    speed_cutoff: float = 0.15  # cycles per frame for smoothing the speed estimate itself
    forget_after: int = 60  # frames a track may be absent before its filter state is dropped


def alpha(cutoff: np.ndarray | float) -> np.ndarray | float:
    """EMA factor of a first-order low-pass filter at `cutoff` cycles per frame."""
    return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff))


class Smoother:
    """Call once per output frame with that frame's tracked Detections (track_ids set); returns them smoothed."""

    def __init__(self, config: SmootherConfig | None = None):
        self.config = config or SmootherConfig()
        self.frame = 0
        self._forget_all(4)

    def _forget_all(self, width: int) -> None:
        self.ids = np.zeros(0, np.int64)
        self.values = np.zeros((0, width))  # box xyxy, then landmarks x,y ×5 when present
        self.speed = np.zeros(0)
        self.last_frame = np.zeros(0, np.int64)

    def __call__(self, detections: Detections) -> Detections:
        self.frame += 1
        if detections.track_ids is None:
            raise ValueError("smoothing needs tracked detections (track_ids)")
        measured = _pack(detections)
        if self.values.shape[1] != measured.shape[1]:
            self._forget_all(measured.shape[1])  # landmarks appeared or vanished
        rows = self._rows(detections.track_ids, measured)
        previous = self.values[rows]
        box = previous[:, :4]
        size = np.maximum(np.hypot(box[:, 2] - box[:, 0], box[:, 3] - box[:, 1]), 1.0)
        motion = np.abs(_centre_and_size(measured[:, :4]) - _centre_and_size(box)).max(axis=1) / size
        speed = self.speed[rows] + alpha(self.config.speed_cutoff) * (motion - self.speed[rows])
        a = alpha(self.config.min_cutoff + self.config.beta * speed)[:, None]
        smoothed = previous + a * (measured - previous)
        self.values[rows], self.speed[rows], self.last_frame[rows] = smoothed, speed, self.frame
        self._drop_stale()
        return _unpack(smoothed, detections)

    def _rows(self, track_ids: np.ndarray, measured: np.ndarray) -> np.ndarray:
        """Row of each id in the state arrays; new ids start from their measurement (no history to smooth)."""
        known = {int(i): row for row, i in enumerate(self.ids)}
        new = [k for k, i in enumerate(track_ids) if int(i) not in known]
        if new:
            self.ids = np.concatenate([self.ids, np.asarray(track_ids)[new]])
            self.values = np.concatenate([self.values, measured[new]])
            self.speed = np.concatenate([self.speed, np.zeros(len(new))])
            self.last_frame = np.concatenate([self.last_frame, np.full(len(new), self.frame)])
            known = {int(i): row for row, i in enumerate(self.ids)}
        return np.array([known[int(i)] for i in track_ids], np.int64)

    def _drop_stale(self) -> None:
        fresh = self.frame - self.last_frame <= self.config.forget_after
        if not fresh.all():
            self.ids, self.values, self.speed, self.last_frame = (
                a[fresh] for a in (self.ids, self.values, self.speed, self.last_frame))


def _centre_and_size(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([(boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]], axis=1)


def _pack(detections: Detections) -> np.ndarray:
    parts = [np.asarray(detections.boxes, np.float64)]
    if detections.landmarks is not None:
        parts.append(np.asarray(detections.landmarks, np.float64).reshape(len(detections), 10))
    return np.concatenate(parts, axis=1)


def _unpack(values: np.ndarray, detections: Detections) -> Detections:
    landmarks = None if detections.landmarks is None else values[:, 4:].reshape(-1, 5, 2).astype(np.float32)
    return Detections(values[:, :4].astype(np.float32), detections.scores, landmarks, detections.track_ids)
