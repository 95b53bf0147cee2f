"""YuNet (libfacedetection; OpenCV's cv2.FaceDetectorYN): anchor-free, one prior per cell on strides 8/16/32,
BGR 0-255 input. Decoded as OpenCV does: score √(cls·obj), centre (cell + offset)·stride, size exp(·)·stride."""
from __future__ import annotations

import numpy as np

from models.families.family import Decoded, Family, grid_cells
from models.families.scrfd import anchor_centers, distance_to_points
from models.spec import ModelSpec

HEADS = ("cls", "obj", "bbox", "kps")


def yunet_spec(name: str, h: int, w: int) -> ModelSpec:
    """The spec of the published YuNet: per stride cls (N,1), obj (N,1), bbox (N,4), kps (N,10); no normalisation."""
    strides = (8, 16, 32)
    return ModelSpec(name=name, family="yunet", input_h=h, input_w=w, strides=strides,
                     output_names=tuple(f"{head}_{s}" for s in strides for head in HEADS), input_name="input",
                     channel_order="BGR", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), anchors_per_location=1,
                     has_landmarks=True)


def scores_of(cls: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """√(cls·obj), each clipped to 0..1 first. Symmetric in cls and obj, so their equal shapes need no order."""
    return np.sqrt(np.clip(cls[:, 0], 0, 1) * np.clip(obj[:, 0], 0, 1))


class YuNet(Family):
    name = "yunet"
    summary = "YuNet (libfacedetection, OpenCV's FaceDetectorYN): anchor-free, cls×obj scores, 5 landmarks"

    def default_spec(self, name, h, w):
        return yunet_spec(name, h, w)

    def output_shapes(self, spec):
        shapes = []
        for s in spec.strides:
            n = grid_cells(spec.input_h, spec.input_w, s)
            shapes += [(n, 1), (n, 1), (n, 4), (n, 10)]
        return tuple(shapes)

    def score_outputs(self, spec):
        return tuple(n for n in spec.output_names if n.startswith(("cls", "obj")))

    def face_scores(self, outputs, spec):
        return np.concatenate([scores_of(*outputs[4 * i:4 * i + 2]) for i in range(len(spec.strides))])

    def decode(self, outputs, spec, score_threshold) -> Decoded:
        boxes, scores, points = [], [], []
        for i, stride in enumerate(spec.strides):
            cls, obj, bbox, kps = outputs[4 * i:4 * i + 4]
            score = scores_of(cls, obj)
            keep = np.flatnonzero(score >= score_threshold)
            origins = anchor_centers(spec.input_h, spec.input_w, stride, 1)[keep]  # cell corners: (column, row)·stride
            centers = origins + bbox[keep, :2] * stride
            sizes = np.exp(bbox[keep, 2:]) * stride
            boxes.append(np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1))
            points.append(distance_to_points(origins, kps[keep] * stride))
            scores.append(score[keep])
        return (np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32),
                np.concatenate(points).astype(np.float32))


FAMILY = YuNet()
