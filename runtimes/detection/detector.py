"""Detector: preprocess → backend → decode → NMS → Detections in original-image pixels.

Candidates are bounded on both sides of NMS by default, so no model (however many of its priors it scores above
the threshold) can make postprocessing slow: the k best go into NMS, at most MAX_DET come out.
"""
from __future__ import annotations

import numpy as np

from models.families import family
from runtimes.backends.base import Backend, load_backend
from runtimes.detection.detections import Detections
from runtimes.detection.nms import nms
from runtimes.detection.preprocess import Resized, prepare

# Measured on the 578 shared WIDER val images at score 0.02 (eval's default), against no caps: top-5000 changed no
# AP; at most 750 out (RetinaFace's) cost SCRFD-500M 0.10 AP Hard (it keeps up to 4,156 boxes on an image), 1500
# cost 0.01. The README's "No model can make postprocessing slow" has the times.
PRE_NMS_TOP_K = 5000
MAX_DET = 1500


class Detector:
    """Runs one artifact on BGR images. Thresholds are per detector; the spec comes with the backend.

    pre_nms_top_k and max_det bound the candidates into and out of NMS (None: unbounded, the exact protocol).
    """

    def __init__(self, backend: Backend, score_threshold: float = 0.5, nms_threshold: float = 0.4,
                 max_det: int | None = MAX_DET, resize: str | None = None,
                 pre_nms_top_k: int | None = PRE_NMS_TOP_K):
        self.backend, self.spec = backend, backend.spec
        self.score_threshold, self.nms_threshold, self.max_det = score_threshold, nms_threshold, max_det
        self.resize = resize or self.spec.resize
        self.pre_nms_top_k = pre_nms_top_k
        self.decode = family(self.spec.family).decode  # looked up once, not per image

    @classmethod
    def from_artifact(cls, path, threads: int | None = None, runtime: str | None = None, **options) -> Detector:
        """The artifact at `path` run by `runtime` (default: its file type's own, e.g. onnxruntime for .onnx)."""
        return cls(load_backend(path, threads, runtime=runtime), **options)

    @classmethod
    def default(cls, threads: int | None = None, **options) -> Detector:
        """The kit's own model as it ships (models/shipped/, TFLite INT8): nothing to convert first."""
        from models.default import DEFAULT_MODEL

        return cls.from_artifact(DEFAULT_MODEL.artifact(), threads, **options)

    def __call__(self, image_bgr: np.ndarray) -> Detections:
        blob, resized = prepare(image_bgr, self.spec, self.resize)
        return self.postprocess(self.backend(blob), resized)

    def postprocess(self, outputs: list[np.ndarray], resized: Resized) -> Detections:
        """Canonical raw outputs of one image → NMS-filtered Detections in that image's pixels."""
        boxes, scores, landmarks = self.decode(outputs, self.spec, self.score_threshold)
        valid = (boxes[:, 2] >= boxes[:, 0]) & (boxes[:, 3] >= boxes[:, 1])  # quantized heads can invert a box
        if not valid.all():
            boxes, scores = boxes[valid], scores[valid]
            landmarks = None if landmarks is None else landmarks[valid]
        if self.pre_nms_top_k is not None and len(scores) > self.pre_nms_top_k:
            # the best k candidates, in their original order so NMS breaks ties as without the cap
            top = np.sort(np.argpartition(-scores, self.pre_nms_top_k - 1)[:self.pre_nms_top_k])
            boxes, scores = boxes[top], scores[top]
            landmarks = None if landmarks is None else landmarks[top]
        keep = nms(boxes, scores, self.nms_threshold, self.max_det)
        scale = np.array([resized.scale_x, resized.scale_y], np.float32)
        return Detections(
            boxes[keep] / np.tile(scale, 2),
            scores[keep],
            None if landmarks is None else landmarks[keep] / scale,
        )
