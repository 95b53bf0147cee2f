"""MNN adapter. Threads go through a runtime manager: load_module_from_file ignores its own thread_num."""
from __future__ import annotations

import numpy as np

from runtimes.backends.base import Backend, fixed_hw


class MnnBackend(Backend):
    def __init__(self, path, spec, threads=None):
        import MNN

        super().__init__(path, spec, threads)
        runtime = MNN.nn.create_runtime_manager(({"numThread": threads or 1},))
        try:
            self.module = MNN.nn.load_module_from_file(str(path), [], [], runtime_manager=runtime)
        except Exception as err:  # MNN raises bare Exception types for unreadable files
            raise ValueError(f"{path}: MNN cannot load this model ({err})") from err
        if self.module is None:
            raise ValueError(f"{path}: MNN cannot load this model")
        self._expr = MNN.expr

    def recorded_hw(self):
        inputs = self.module.get_info().get("inputs") or []
        shape = list(inputs[0].shape) if inputs else []
        return fixed_hw(shape[2:4]) if len(shape) == 4 else None  # NCHW, as MNNConvert keeps the ONNX's

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        expr = self._expr
        outputs = self.module.forward([expr.const(blob, list(blob.shape), expr.NCHW, expr.float)])
        if not outputs:
            raise ValueError(f"{self.path}: MNN could not run this model (an operator this MNN build lacks? "
                             "its log above names it)")
        return [np.array(expr.convert(o, expr.NCHW).read()) for o in outputs]
