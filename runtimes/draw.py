"""Drawing Detections on an image (boxes, scores, landmarks)."""
from __future__ import annotations

import cv2
import numpy as np

from runtimes.detections import Detections

BOX_COLOR = (0, 255, 0)
POINT_COLORS = ((255, 0, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0))


def draw_detections(image_bgr: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of the image with every detection drawn."""
    canvas = image_bgr.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for i, (box, score) in enumerate(zip(detections.boxes, detections.scores)):
        x1, y1, x2, y2 = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOR, thickness)
        cv2.putText(canvas, f"{score:.2f}", (x1, max(0, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, BOX_COLOR, thickness)
        if detections.landmarks is not None:
            for point, color in zip(detections.landmarks[i], POINT_COLORS):
                cv2.circle(canvas, (int(round(point[0])), int(round(point[1]))), thickness + 1, color, -1)
    return canvas
