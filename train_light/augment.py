"""The published training augmentations as small functions of (image, faces, rng).

Boxes are (K,4) xyxy pixels, landmarks (K,5,2) pixels with rows of -1 for faces without landmarks (or None).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FLIP_ORDER = [1, 0, 2, 4, 3]  # left eye <-> right eye, left mouth corner <-> right mouth corner


@dataclass
class Faces:
    boxes: np.ndarray
    landmarks: np.ndarray | None = None

    def subset(self, keep: np.ndarray) -> Faces:
        return Faces(self.boxes[keep], None if self.landmarks is None else self.landmarks[keep])


def photometric_distort(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SSD's distortion, each part with p=0.5: brightness ±32, contrast and saturation ×0.5–1.5, hue ±18°."""
    out = image
    if rng.random() < 0.5:
        out = cv2.convertScaleAbs(out, alpha=1.0, beta=float(rng.uniform(-32, 32)))
    contrast_first = rng.random() < 0.5
    if contrast_first and rng.random() < 0.5:
        out = cv2.convertScaleAbs(out, alpha=float(rng.uniform(0.5, 1.5)))
    saturation, hue = rng.random() < 0.5, rng.random() < 0.5
    if saturation or hue:
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)
        if saturation:
            hsv[..., 1] = cv2.convertScaleAbs(hsv[..., 1], alpha=float(rng.uniform(0.5, 1.5)))
        if hue:  # OpenCV's 8-bit hue runs 0..179
            hsv[..., 0] = ((hsv[..., 0].astype(np.int16) + int(rng.integers(-9, 10))) % 180).astype(np.uint8)
        out = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
    if not contrast_first and rng.random() < 0.5:
        out = cv2.convertScaleAbs(out, alpha=float(rng.uniform(0.5, 1.5)))
    return out


def random_crop(image: np.ndarray, faces: Faces, out_hw: tuple[int, int], scale: tuple[float, float],
                rng: np.random.Generator, fill: float, tries: int = 50) -> tuple[np.ndarray, Faces]:
    """A crop of the output's aspect whose height is `scale` × the image's short side, resized to out_hw.

    Scales above 1 reach outside the image (zoom out; the outside is `fill`). Faces whose centre falls in the
    crop are kept (clipped); the crop is redrawn up to `tries` times until it keeps a face. This is SCRFD's
    square crop at 0.3–2.0 (its sample redistribution) and Ultra-Light's crop at 0.3–1.0, for any output size.
    """
    ih, iw = image.shape[:2]
    oh, ow = out_hw
    centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
    for attempt in range(tries + 1):
        ch = min(ih, iw) * (rng.uniform(*scale) if attempt < tries else 1.0)
        cw = ch * ow / oh
        x0 = rng.uniform(min(0.0, iw - cw), max(0.0, iw - cw))
        y0 = rng.uniform(min(0.0, ih - ch), max(0.0, ih - ch))
        inside = ((centres[:, 0] > x0) & (centres[:, 0] < x0 + cw) &
                  (centres[:, 1] > y0) & (centres[:, 1] < y0 + ch))
        if inside.any() or len(faces.boxes) == 0:
            break
    s = ow / cw
    matrix = np.array([[s, 0, -x0 * s], [0, s, -y0 * s]], np.float64)
    out = cv2.warpAffine(image, matrix, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=(fill, fill, fill))
    kept = faces.subset(inside)
    boxes = (kept.boxes - np.array([x0, y0, x0, y0], np.float32)) * s
    boxes = np.clip(boxes, 0, [ow, oh, ow, oh]).astype(np.float32)
    landmarks = None
    if kept.landmarks is not None:
        missing = kept.landmarks[:, 0, 0] < 0
        landmarks = ((kept.landmarks - np.array([x0, y0], np.float32)) * s).astype(np.float32)
        landmarks[missing] = -1
    return out, Faces(boxes, landmarks)


def horizontal_flip(image: np.ndarray, faces: Faces) -> tuple[np.ndarray, Faces]:
    """Mirror the image; boxes mirror, landmarks mirror and swap left/right."""
    w = image.shape[1]
    boxes = faces.boxes.copy()
    boxes[:, [0, 2]] = w - faces.boxes[:, [2, 0]]
    landmarks = None
    if faces.landmarks is not None:
        missing = faces.landmarks[:, 0, 0] < 0
        landmarks = faces.landmarks[:, FLIP_ORDER].copy()
        landmarks[..., 0] = w - landmarks[..., 0]
        landmarks[missing] = -1
    return np.ascontiguousarray(image[:, ::-1]), Faces(boxes, landmarks)


def robustness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera-like degradations, each with p=0.2: Gaussian blur, JPEG quality 30–90, gamma 0.6–1.6."""
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.5, 1.5)))
    if rng.random() < 0.2:
        ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 91))])
        image = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else image
    if rng.random() < 0.2:
        table = ((np.arange(256) / 255.0) ** float(rng.uniform(0.6, 1.6)) * 255).astype(np.uint8)
        image = cv2.LUT(image, table)
    return image


def drop_small(faces: Faces, min_size: float) -> Faces:
    """Faces whose box is at least min_size pixels on both sides (smaller ones become background)."""
    wh = faces.boxes[:, 2:] - faces.boxes[:, :2]
    return faces.subset((wh >= min_size).all(axis=1))
