"""Ultra-Light-Fast-Generic-Face-Detector-1MB (slim, RFB): SSD priors on 4 levels, centre/size variances."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from models.families.family import Decoded, Family, grid_cells
from models.spec import ModelSpec

ULTRAFACE_MIN_BOXES = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))


def ultraface_spec(name: str, h: int, w: int) -> ModelSpec:
    """The spec of an Ultra-Light-Fast-Generic-Face-Detector model: 4 prior levels, (x-127)/128 RGB."""
    return ModelSpec(name=name, family="ultraface", input_h=h, input_w=w, strides=(8, 16, 32, 64),
                     output_names=("scores", "boxes"), input_name="input", mean=(127.0, 127.0, 127.0),
                     anchors_per_location=0, min_boxes=ULTRAFACE_MIN_BOXES)


@lru_cache(maxsize=32)
def ultraface_priors(h: int, w: int, strides: tuple[int, ...], min_boxes: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(N,4) float32 cx,cy,w,h priors in 0..1, in the Ultra-Light project's order (level, row, column, box), clamped."""
    priors = []
    for stride, boxes in zip(strides, min_boxes):
        fh, fw = math.ceil(h / stride), math.ceil(w / stride)
        ys, xs = np.mgrid[:fh, :fw]
        cx = ((xs + 0.5) / fw).reshape(-1, 1).repeat(len(boxes), 1)
        cy = ((ys + 0.5) / fh).reshape(-1, 1).repeat(len(boxes), 1)
        bw = np.broadcast_to(np.array(boxes, np.float64) / w, cx.shape)
        bh = np.broadcast_to(np.array(boxes, np.float64) / h, cx.shape)
        priors.append(np.stack([cx, cy, bw, bh], axis=-1).reshape(-1, 4))
    return np.clip(np.concatenate(priors), 0.0, 1.0).astype(np.float32)


def decode_ssd(locations: np.ndarray, priors: np.ndarray, center_variance: float, size_variance: float) -> np.ndarray:
    """SSD regression (N,4) against priors (N,4) cx,cy,w,h → (N,4) xyxy in the priors' units."""
    centers = priors[:, :2] + locations[:, :2] * center_variance * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(locations[:, 2:] * size_variance)
    return np.concatenate([centers - sizes / 2, centers + sizes / 2], axis=1)


class UltraFace(Family):
    name = "ultraface"
    summary = "Ultra-Light-Fast-Generic-Face-Detector-1MB: slim and RFB (and the kit's facekit_slim), softmax scores"

    def default_spec(self, name, h, w):
        return ultraface_spec(name, h, w)

    def output_shapes(self, spec):
        n = sum(grid_cells(spec.input_h, spec.input_w, s) * len(boxes) for s, boxes in zip(spec.strides,
                                                                                        spec.min_boxes))
        return ((n, 2), (n, 4))

    def face_scores(self, outputs, spec):
        return outputs[0][:, 1]

    def score_outputs(self, spec):
        return ("scores",)

    def decode(self, outputs, spec, score_threshold) -> Decoded:
        scores, locations = outputs
        keep = np.flatnonzero(scores[:, 1] >= score_threshold)
        priors = ultraface_priors(spec.input_h, spec.input_w, spec.strides, spec.min_boxes)[keep]
        boxes = decode_ssd(locations[keep], priors, spec.center_variance, spec.size_variance)
        boxes *= np.array([spec.input_w, spec.input_h] * 2, np.float32)
        return boxes.astype(np.float32), scores[keep, 1].astype(np.float32), None


FAMILY = UltraFace()
