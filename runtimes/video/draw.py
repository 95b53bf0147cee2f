"""Drawing Detections on an image (boxes, scores, landmarks, track ids) and a status line."""
from __future__ import annotations

import cv2
import numpy as np

from runtimes.detection.detections import Detections

BOX_COLOR = (0, 255, 0)
POINT_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0))


def track_color(track_id: int) -> tuple[int, int, int]:
    """A bright BGR colour that stays the same for an id and differs between neighbouring ids."""
    hue = (int(track_id) * 47) % 180  # golden-ratio-like stride around OpenCV's 0..179 hue circle
    b, g, r = cv2.cvtColor(np.uint8([[[hue, 220, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_detections(image_bgr: np.ndarray, detections: Detections, in_place: bool = False) -> np.ndarray:
    """The image (a copy unless in_place) with every detection drawn; tracked faces get '#id' and their colour."""
    canvas = image_bgr if in_place else image_bgr.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for i, (box, score) in enumerate(zip(detections.boxes, detections.scores)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        tracked = detections.track_ids is not None
        color = track_color(detections.track_ids[i]) if tracked else BOX_COLOR
        label = f"#{detections.track_ids[i]} {score:.2f}" if tracked else f"{score:.2f}"
        cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness)
        cv2.putText(canvas, label, (x1, max(10, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, color,
                    thickness, cv2.LINE_AA)
        if detections.landmarks is not None:
            for point, point_color in zip(detections.landmarks[i], POINT_COLORS):
                cv2.circle(canvas, (int(round(point[0])), int(round(point[1]))), thickness + 1, point_color, -1)
    return canvas


def draw_status(image_bgr: np.ndarray, text: str) -> None:
    """A status line (e.g. '31.2 FPS') in the top-left corner, readable on any background, drawn in place."""
    scale = max(0.5, max(image_bgr.shape[:2]) / 1000)
    thickness = max(1, round(scale * 2))
    origin = (8, int(24 * scale) + 4)
    cv2.putText(image_bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image_bgr, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
