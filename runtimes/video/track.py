"""ByteTrack-style multi-face tracking: two-stage IoU association, a Kalman filter per track, stable integer ids.

Per detection frame: every track is predicted one frame ahead; confident detections are matched first (to all
confirmed tracks, lost ones included), then the weak ones, which only keep tracks alive that were seen on the
previous frame (a half-occluded face scores low and should not lose its id); finally new tracks' candidates are
matched. A track gets its id once it has `min_hits` hits (so a one-frame false positive burns no id), except on
the first detected frame of a stream or shot, where, as in ByteTrack, every confident face is shown at once; it
dies after `max_misses` detection frames without a match. Frames that are not detected (keyframe mode) only predict.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from runtimes.detection.detections import Detections
from runtimes.detection.nms import box_iou
from runtimes.video import kalman


@dataclass(frozen=True)
class TrackerConfig:
    """Association thresholds and track life; the defaults follow ByteTrack's, adjusted for faces."""

    high_score: float = 0.5  # detections at or above this start tracks and are matched first
    low_score: float = 0.1  # detections in [low, high) only keep existing tracks alive
    match_iou: float = 0.2  # minimum IoU for the first (confident) association
    low_match_iou: float = 0.5  # minimum IoU for the weak detections
    candidate_iou: float = 0.3  # minimum IoU to continue a track that has no id yet
    min_hits: int = 2  # hits before a track is confirmed and gets an id
    max_misses: int = 30  # detection frames without a match before a track dies

    def __post_init__(self) -> None:
        if not 0 <= self.low_score <= self.high_score <= 1:
            raise ValueError(f"scores must satisfy 0 <= low ({self.low_score}) <= high ({self.high_score}) <= 1")
        if self.min_hits < 1 or self.max_misses < 0:
            raise ValueError(f"min_hits={self.min_hits} must be >= 1 and max_misses={self.max_misses} >= 0")


def match(boxes_a: np.ndarray, boxes_b: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Optimal one-to-one pairs (rows of a, rows of b) maximising total IoU, each pair with IoU ≥ min_iou."""
    if len(boxes_a) == 0 or len(boxes_b) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    iou = box_iou(boxes_a, boxes_b)
    rows, cols = linear_sum_assignment(-iou)
    good = iou[rows, cols] >= min_iou
    return rows[good], cols[good]


class Tracker:
    """Tracks faces across frames. Call `update` on detected frames, `predict` on frames that were not detected."""

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        self.mean = np.zeros((0, 8))
        self.covariance = np.zeros((0, 8, 8))
        self.ids = np.zeros(0, np.int64)  # 0 until confirmed
        self.hits = np.zeros(0, np.int64)
        self.misses = np.zeros(0, np.int64)  # consecutive detection frames without a match
        self.scores = np.zeros(0, np.float32)
        self.landmarks: np.ndarray | None = None  # (N,5,2) relative to the box: (point - centre) / size
        self.next_id = 1
        self.first_frame = True  # the next update starts a stream or a shot: confirm its faces at once

    @property
    def boxes(self) -> np.ndarray:
        """(N,4) xyxy: every track's current estimate."""
        return kalman.cxcywh_to_xyxy(self.mean[:, :4])

    @property
    def tracks_started(self) -> int:
        """How many ids have been given out."""
        return self.next_id - 1

    def reset(self) -> None:
        """Forget every track (a scene cut): the faces that follow get new ids, shown from their first frame."""
        self._keep(np.zeros(len(self.ids), bool))
        self.first_frame = True

    def predict(self) -> Detections:
        """Advance one frame without detections: the Kalman boxes of the confirmed tracks matched at the last
        detection frame, their landmarks moved with the box."""
        self._advance()
        rows = np.flatnonzero((self.misses == 0) & (self.ids > 0))
        state = self.mean[rows, :4]
        landmarks = None
        if self.landmarks is not None:
            landmarks = (self.landmarks[rows] * state[:, None, 2:] + state[:, None, :2]).astype(np.float32)
        return Detections(kalman.cxcywh_to_xyxy(state).astype(np.float32), self.scores[rows].copy(), landmarks,
                          self.ids[rows].copy())

    def update(self, detections: Detections) -> Detections:
        """Advance one frame and associate `detections`; the confirmed tracks matched on this frame, with ids."""
        config = self.config
        self._advance()
        self.misses += 1
        if self.landmarks is None and detections.landmarks is not None:
            self.landmarks = np.zeros((len(self.ids), 5, 2), np.float32)
        boxes, scores = np.asarray(detections.boxes, np.float64), np.asarray(detections.scores, np.float32)
        high = np.flatnonzero(scores >= config.high_score)
        low = np.flatnonzero((scores >= config.low_score) & (scores < config.high_score))
        predicted = self.boxes
        matched_tracks, matched_dets = [], []

        def associate(tracks: np.ndarray, dets: np.ndarray, min_iou: float) -> tuple[np.ndarray, np.ndarray]:
            rows, cols = match(predicted[tracks], boxes[dets], min_iou)
            matched_tracks.append(tracks[rows])
            matched_dets.append(dets[cols])
            tracks_left, dets_left = np.ones(len(tracks), bool), np.ones(len(dets), bool)
            tracks_left[rows], dets_left[cols] = False, False
            return tracks[tracks_left], dets[dets_left]

        confirmed, candidates = np.flatnonzero(self.ids > 0), np.flatnonzero(self.ids == 0)
        confirmed_left, high_left = associate(confirmed, high, config.match_iou)
        associate(confirmed_left[self.misses[confirmed_left] == 1], low, config.low_match_iou)  # seen last frame
        _, high_left = associate(candidates, high_left, config.candidate_iou)

        tracks, dets = np.concatenate(matched_tracks), np.concatenate(matched_dets)
        self._correct(tracks, detections, dets)
        self.misses[tracks] = 0
        detection_of = np.full(len(self.ids), -1)
        detection_of[tracks] = dets
        alive = (detection_of >= 0) | ((self.ids > 0) & (self.misses <= config.max_misses))
        self._keep(alive)
        self._start(detections, high_left)
        detection_of = np.concatenate([detection_of[alive], high_left])
        self._confirm(detection_of >= 0, at_once=self.first_frame)
        self.first_frame = False
        rows = np.flatnonzero((detection_of >= 0) & (self.ids > 0))
        found = detections[detection_of[rows]]
        return Detections(found.boxes, found.scores, found.landmarks, self.ids[rows].copy())

    def _advance(self) -> None:
        self.mean, self.covariance = kalman.predict(self.mean, self.covariance)

    def _correct(self, tracks: np.ndarray, detections: Detections, dets: np.ndarray) -> None:
        measured = kalman.xyxy_to_cxcywh(detections.boxes[dets])
        self.mean[tracks], self.covariance[tracks] = kalman.update(self.mean[tracks], self.covariance[tracks],
                                                                   measured)
        self.hits[tracks] += 1
        self.scores[tracks] = detections.scores[dets]
        if self.landmarks is not None and detections.landmarks is not None:
            self.landmarks[tracks] = _relative(detections.landmarks[dets], measured)

    def _confirm(self, hit: np.ndarray, at_once: bool = False) -> None:
        new = np.flatnonzero(hit & (self.ids == 0) & ((self.hits >= self.config.min_hits) | at_once))
        self.ids[new] = np.arange(self.next_id, self.next_id + len(new))
        self.next_id += len(new)

    def _keep(self, alive: np.ndarray) -> None:
        self.mean, self.covariance = self.mean[alive], self.covariance[alive]
        self.ids, self.hits, self.misses, self.scores = (a[alive] for a in (self.ids, self.hits, self.misses,
                                                                            self.scores))
        if self.landmarks is not None:
            self.landmarks = self.landmarks[alive]

    def _start(self, detections: Detections, dets: np.ndarray) -> None:
        measured = kalman.xyxy_to_cxcywh(detections.boxes[dets])
        mean, covariance = kalman.initiate(measured)
        self.mean, self.covariance = np.concatenate([self.mean, mean]), np.concatenate([self.covariance, covariance])
        self.ids = np.concatenate([self.ids, np.zeros(len(dets), np.int64)])
        self.hits = np.concatenate([self.hits, np.ones(len(dets), np.int64)])
        self.misses = np.concatenate([self.misses, np.zeros(len(dets), np.int64)])
        self.scores = np.concatenate([self.scores, detections.scores[dets].astype(np.float32)])
        if self.landmarks is not None:
            points = (_relative(detections.landmarks[dets], measured) if detections.landmarks is not None
                      else np.zeros((len(dets), 5, 2), np.float32))
            self.landmarks = np.concatenate([self.landmarks, points])


def _relative(points: np.ndarray, boxes_cxcywh: np.ndarray) -> np.ndarray:
    """Landmarks (N,5,2) in pixels → relative to their box: (point - centre) / size."""
    return ((points - boxes_cxcywh[:, None, :2]) / np.maximum(boxes_cxcywh[:, None, 2:], 1.0)).astype(np.float32)
