"""A synthetic clip with known face paths: a photo seen through a 640×480 camera that holds still, pans
and zooms, with fresh sensor noise on every frame, encoded as a real mp4 (so the file source decodes it)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SIZE = (640, 480)
STILL = range(0, 40)  # the camera holds still
PAN = range(40, 80)  # faces move right at PAN_SPEED px per frame
ZOOM = range(80, 120)  # the camera zooms in while panning back
PAN_SPEED = 3.0


@dataclass(frozen=True)
class Clip:
    path: Path
    transforms: list[np.ndarray]  # per frame, the 2×3 matrix from photo pixels to frame pixels


def camera(t: int, centre: tuple[float, float]) -> tuple[float, float, float]:
    """(scale, photo x, photo y) that the frame centre looks at, for frame t, starting at `centre`."""
    scale, (x, y) = 0.75, centre
    if t >= PAN.start:
        x -= PAN_SPEED / scale * (min(t, PAN.stop) - PAN.start)
    if t >= ZOOM.start:
        k = min(t, ZOOM.stop) - ZOOM.start
        scale *= 1 + 0.25 * k / len(ZOOM)
        x += 2.0 * k
    return scale, x, y


def transform(t: int, centre: tuple[float, float]) -> np.ndarray:
    scale, x, y = camera(t, centre)
    return np.array([[scale, 0, SIZE[0] / 2 - scale * x], [0, scale, SIZE[1] / 2 - scale * y]])


def make_clip(photo: np.ndarray, path: Path, centre: tuple[float, float], noise: float = 3.0, seed: int = 0) -> Clip:
    """The clip of `photo` whose camera starts looking at `centre` (photo pixels), written to `path`."""
    rng = np.random.default_rng(seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, SIZE)
    transforms = []
    for t in range(ZOOM.stop):
        matrix = transform(t, centre)
        frame = cv2.warpAffine(photo, matrix, SIZE, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = np.clip(frame + rng.normal(0, noise, frame.shape), 0, 255).astype(np.uint8)
        writer.write(frame)
        transforms.append(matrix)
    writer.release()
    return Clip(path, transforms)


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(N,2) photo pixels → (N,2) frame pixels."""
    return points @ matrix[:, :2].T + matrix[:, 2]
