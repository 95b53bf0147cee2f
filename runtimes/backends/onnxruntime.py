"""onnxruntime adapter (CPU)."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

from runtimes.backends.base import Backend, fixed_hw


class OnnxBackend(Backend):
    def __init__(self, path, spec, threads=None):
        super().__init__(path, spec, threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Idle workers would otherwise spin after each run and starve the pre/post-processing that follows
        # on small CPUs (measured: NMS 6 ms alone, 25 ms right after a 2-thread run on 2 cores).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises several unrelated types for bad files
            raise ValueError(f"{path}: onnxruntime cannot load this model ({err})") from err
        self.input_name = self.session.get_inputs()[0].name

    def recorded_hw(self):
        shape = self.session.get_inputs()[0].shape  # NCHW, as the hub exports it
        return fixed_hw(shape[2:4]) if len(shape) == 4 else None

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: blob})
