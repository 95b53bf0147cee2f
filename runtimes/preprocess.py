"""Preprocessing, once for every backend: resize into the fixed H×W canvas, normalise, lay out."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from models.spec import ModelSpec


@dataclass(frozen=True)
class Resized:
    """A canvas of the model's size (H,W,3 uint8, model channel order) and the x/y scales that map it back."""

    canvas: np.ndarray
    scale_x: float
    scale_y: float


def resize_to_canvas(image_bgr: np.ndarray, h: int, w: int, mode: str = "letterbox", rgb: bool = True) -> Resized:
    """Letterbox (keep ratio, zero padding bottom/right) or stretch a BGR image into an h×w canvas."""
    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError("expected a decoded H×W×3 BGR image")
    ih, iw = image_bgr.shape[:2]
    if mode == "stretch":
        canvas = cv2.resize(image_bgr, (w, h), interpolation=cv2.INTER_LINEAR)
        sx, sy = w / iw, h / ih
    elif mode == "letterbox":
        scale = min(h / ih, w / iw)
        nh, nw = max(1, round(ih * scale)), max(1, round(iw * scale))
        canvas = np.zeros((h, w, 3), np.uint8)
        canvas[:nh, :nw] = cv2.resize(image_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR)
        sx, sy = nw / iw, nh / ih
    else:
        raise ValueError(f"resize mode {mode!r} must be 'letterbox' or 'stretch'")
    if rgb:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    return Resized(canvas, sx, sy)


def normalize(canvases: np.ndarray, spec: ModelSpec, layout: str | None = None) -> np.ndarray:
    """(N,H,W,3) uint8 canvases → float32 (x-mean)/std in `layout` (default the spec's).

    NCHW goes through OpenCV's blobFromImages (mean subtraction and the transpose in one C++ pass: 4× faster
    than numpy at 640×640), NHWC through in-place float32 numpy; both give the same values.
    """
    std = np.float32(spec.std)
    if (layout or spec.layout) == "NCHW":
        blob = cv2.dnn.blobFromImages(list(canvases), 1.0, mean=spec.mean, swapRB=False)
        blob /= std.reshape(1, 3, 1, 1)
        return blob
    x = canvases.astype(np.float32)
    x -= np.float32(spec.mean)
    x /= std
    return x


def prepare(image_bgr: np.ndarray, spec: ModelSpec, resize: str | None = None) -> tuple[np.ndarray, Resized]:
    """One image → a (1,…) float32 input blob for `spec` plus the Resized that maps detections back."""
    resized = resize_to_canvas(image_bgr, spec.input_h, spec.input_w, resize or spec.resize,
                               rgb=spec.channel_order == "RGB")
    return normalize(resized.canvas[None], spec), resized
