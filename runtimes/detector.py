"""Detector: preprocess → backend → decode → NMS → Detections in original-image pixels."""
from __future__ import annotations

import numpy as np

from runtimes.backend import Backend, load_backend
from runtimes.decode import decode
from runtimes.detections import Detections
from runtimes.nms import nms
from runtimes.preprocess import Resized, prepare


class Detector:
    """Runs one artifact on BGR images. Thresholds are per detector; the spec comes with the backend."""

    def __init__(self, backend: Backend, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 max_det: int | None = None, resize: str | None = None, pre_nms_top_k: int | None = None):
        self.backend, self.spec = backend, backend.spec
        self.score_threshold, self.nms_threshold, self.max_det = score_threshold, nms_threshold, max_det
        self.resize = resize or self.spec.resize
        self.pre_nms_top_k = pre_nms_top_k

    @classmethod
    def from_artifact(cls, path, threads: int | None = None, **options) -> Detector:
        return cls(load_backend(path, threads), **options)

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        blob, resized = prepare(image_bgr, self.spec, self.resize)
        return self.postprocess(self.backend(blob), resized)

    def postprocess(self, outputs: list[np.ndarray], resized: Resized) -> Detections:
        """Canonical raw outputs of one image → NMS-filtered Detections in that image's pixels."""
        boxes, scores, landmarks = decode(outputs, self.spec, self.score_threshold)
        valid = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])  # quantized heads can invert a box
        if not valid.all():
            boxes, scores = boxes[valid], scores[valid]
            landmarks = None if landmarks is None else landmarks[valid]
        if self.pre_nms_top_k is not None and len(scores) > self.pre_nms_top_k:
            # the best k candidates, in their original order so NMS breaks ties as without the cap
            top = np.sort(np.argsort(-scores, kind="stable")[:self.pre_nms_top_k])
            boxes, scores = boxes[top], scores[top]
            landmarks = None if landmarks is None else landmarks[top]
        keep = nms(boxes, scores, self.nms_threshold, self.max_det)
        scale = np.array([resized.scale_x, resized.scale_y], np.float32)
        return Detections(
            boxes[keep] / np.tile(scale, 2),
            scores[keep],
            None if landmarks is None else landmarks[keep] / scale,
        )
