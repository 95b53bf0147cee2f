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
    """Letterbox (keep ratio, zero padding bottom/right) or stretch a BGR image into an h×w canvas.

    The resized pixels are written straight into the canvas (no intermediate image), and an image that already
    has the model's size is only colour-converted or copied.
    """
    if image_bgr is None or image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError("expected a decoded H×W×3 BGR image")
    ih, iw = image_bgr.shape[:2]
    if mode == "stretch":
        nh, nw = h, w
    elif mode == "letterbox":
        scale = min(h / ih, w / iw)
        nh, nw = max(1, round(ih * scale)), max(1, round(iw * scale))
    else:
        raise ValueError(f"resize mode {mode!r} must be 'letterbox' or 'stretch'")
    if (nh, nw) == (ih, iw) == (h, w):
        canvas = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB) if rgb else image_bgr.copy()
    else:
        canvas = np.zeros((h, w, 3), np.uint8)
        region = canvas[:nh, :nw]
        if (nh, nw) == (ih, iw):
            region[:] = image_bgr
        else:
            cv2.resize(image_bgr, (nw, nh), dst=region, interpolation=cv2.INTER_LINEAR)
        if rgb:
            cv2.cvtColor(region, cv2.COLOR_BGR2RGB, dst=region)
    return Resized(canvas, nw / iw, nh / ih)


def normalize(canvases: np.ndarray, spec: ModelSpec, layout: str | None = None) -> np.ndarray:
    """(N,H,W,3) uint8 canvases → float32 (x-mean)/std in `layout` (default the spec's).

    NCHW: each uint8 plane is converted straight into its slot of the blob, then mean and std are applied per
    plane in place (0.25 ms at 480×640; OpenCV's blobFromImage took 3.5 ms here). NHWC: in-place float32 numpy,
    with scalars when every channel shares its mean and std (10× faster than broadcasting over 3 channels).
    """
    mean, std = np.float32(spec.mean), np.float32(spec.std)
    if (layout or spec.layout) == "NCHW":
        n, h, w = canvases.shape[:3]
        blob = np.empty((n, 3, h, w), np.float32)
        for i, canvas in enumerate(canvases):
            for c, plane in enumerate(cv2.split(canvas)):
                blob[i, c] = plane
        blob -= mean.reshape(1, 3, 1, 1)
        blob /= std.reshape(1, 3, 1, 1)
        return blob
    x = canvases.astype(np.float32)
    uniform = bool(np.all(mean == mean[0]) and np.all(std == std[0]))
    x -= mean[0] if uniform else mean
    x /= std[0] if uniform else std
    return x


def prepare(image_bgr: np.ndarray, spec: ModelSpec, resize: str | None = None) -> tuple[np.ndarray, Resized]:
    """One image → a (1,…) float32 input blob for `spec` plus the Resized that maps detections back."""
    resized = resize_to_canvas(image_bgr, spec.input_h, spec.input_w, resize or spec.resize,
                               rgb=spec.channel_order == "RGB")
    return normalize(resized.canvas[None], spec), resized
