"""SCRFD (insightface): anchor centres on stride 8/16/32 grids, distances × stride → boxes and landmarks."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from models.families.family import Decoded, Family, grid_cells
from models.spec import ModelSpec


@lru_cache(maxsize=32)
def anchor_centers(h: int, w: int, stride: int, anchors: int) -> np.ndarray:
    """(H/s·W/s·anchors, 2) float32 x,y anchor centres in input pixels, row-major, each repeated per anchor."""
    ys, xs = np.mgrid[: math.ceil(h / stride), : math.ceil(w / stride)]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    return np.repeat(centers, anchors, axis=0)


def distance_to_boxes(centers: np.ndarray, distances: np.ndarray) -> np.ndarray:
    """centres (N,2) and distances (N,4) left,top,right,bottom → (N,4) xyxy."""
    return np.concatenate([centers - distances[:, :2], centers + distances[:, 2:]], axis=1)


def distance_to_points(centers: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """centres (N,2) and offsets (N,2K) → (N,K,2) points."""
    return centers[:, None, :] + offsets.reshape(len(offsets), offsets.shape[1] // 2, 2)


def scrfd_spec(name: str, h: int, w: int, *, landmarks: bool, anchors: int = 2) -> ModelSpec:
    """The spec of an insightface SCRFD model: strides 8/16/32, (x-127.5)/128 RGB."""
    strides = (8, 16, 32)
    heads = ("score", "bbox", "kps") if landmarks else ("score", "bbox")
    names = tuple(f"{head}_{s}" for s in strides for head in heads)
    return ModelSpec(name=name, family="scrfd", input_h=h, input_w=w, strides=strides, output_names=names,
                     input_name="input", anchors_per_location=anchors, has_landmarks=landmarks)


def head_map_grids(spec: ModelSpec) -> set[tuple[int, int]]:
    """The (H/s, W/s) grid of every stride."""
    return {(math.ceil(spec.input_h / s), math.ceil(spec.input_w / s)) for s in spec.strides}


class Scrfd(Family):
    name = "scrfd"
    summary = "SCRFD (insightface): scrfd_500m(_kps) and other SCRFD ONNX files, 2 anchors per cell"

    def default_spec(self, name, h, w):
        return scrfd_spec(name, h, w, landmarks=False)

    def output_shapes(self, spec):
        shapes = []
        for s in spec.strides:
            n = grid_cells(spec.input_h, spec.input_w, s) * spec.anchors_per_location
            shapes += [(n, 1), (n, 4)] + ([(n, 10)] if spec.has_landmarks else [])
        return tuple(shapes)

    def spec_from_outputs(self, name, h, w, shapes):
        """Landmarks from a 10-wide output, anchors per cell from the largest output's rows."""
        cells = grid_cells(h, w, 8)
        largest = max((int(np.prod(s[:-1])) for s in shapes), default=0)
        if largest == 0 or largest % cells:
            raise ValueError(f"outputs {shapes} are not SCRFD stride-8/16/32 outputs at {h}x{w}")
        return self.checked(scrfd_spec(name, h, w, landmarks=any(s[-1] == 10 for s in shapes),
                                       anchors=largest // cells), shapes)

    def spec_from_raw(self, name, h, w, raw):
        """Some published conversions (ncnn) emit raw (A·C, H/s, W/s) head maps: their score maps have A
        channels, the fewest."""
        probe = self.default_spec(name, h, w)
        maps = [np.shape(o)[-3] for o in raw if np.shape(o)[-2:] in head_map_grids(probe)]
        if maps:
            probe = probe.with_changes(anchors_per_location=min(maps))
        return self.spec_from_outputs(name, h, w, [np.shape(o) for o in self.rows(raw, probe)])

    def rows(self, outputs, spec):
        """(A·C, H/s, W/s) head maps → the (H/s·W/s·A, C) rows every other artifact gives (row-major cells,
        anchors within a cell, as the head's permute + reshape does); other outputs pass unchanged."""
        grids, anchors = head_map_grids(spec), spec.anchors_per_location
        rows = []
        for output in outputs:
            shape = np.shape(output)
            if len(shape) == 4 and shape[0] == 1:
                output, shape = output[0], shape[1:]
            if len(shape) == 3 and shape[1:] in grids and shape[0] % anchors == 0:
                output = np.asarray(output).transpose(1, 2, 0).reshape(-1, shape[0] // anchors)
            rows.append(output)
        return rows

    def face_scores(self, outputs, spec):
        return np.concatenate([o[:, 0] for name, o in zip(spec.output_names, outputs) if name.startswith("score")])

    def decode(self, outputs, spec, score_threshold) -> Decoded:
        per_stride = 3 if spec.has_landmarks else 2
        boxes, scores, points = [], [], []
        for i, stride in enumerate(spec.strides):
            group = outputs[i * per_stride:(i + 1) * per_stride]
            keep = np.flatnonzero(group[0][:, 0] >= score_threshold)
            centers = anchor_centers(spec.input_h, spec.input_w, stride, spec.anchors_per_location)[keep]
            scores.append(group[0][keep, 0])
            boxes.append(distance_to_boxes(centers, group[1][keep] * stride))
            if spec.has_landmarks:
                points.append(distance_to_points(centers, group[2][keep] * stride))
        landmarks = np.concatenate(points).astype(np.float32) if spec.has_landmarks else None
        return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32), landmarks


FAMILY = Scrfd()
