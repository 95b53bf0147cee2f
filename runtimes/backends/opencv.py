"""OpenCV DNN adapter for ONNX artifacts: nothing beyond the OpenCV the kit already installs (what many Pi users
run). Its thread count is OpenCV's process-wide one."""
from __future__ import annotations

import cv2
import numpy as np

from runtimes.backends.base import Backend


class OpenCVBackend(Backend):
    def __init__(self, path, spec, threads=None):
        super().__init__(path, spec, threads)
        try:
            self.net = cv2.dnn.readNetFromONNX(str(path))
        except cv2.error as err:
            raise ValueError(f"{path}: OpenCV's DNN module cannot load this model ({str(err).strip()})") from err
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        if threads:
            cv2.setNumThreads(threads)
        self.output_names = list(self.net.getUnconnectedOutLayersNames())

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(blob)
        return list(self.net.forward(self.output_names))
