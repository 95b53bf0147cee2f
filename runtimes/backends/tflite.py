"""TFLite adapter: ai_edge_litert, else tflite_runtime, else tensorflow.lite (only as a last resort: 600 MB RSS)."""
from __future__ import annotations

import numpy as np

from runtimes.backends.base import Backend, fixed_hw


def interpreter_class():
    """The lightest TFLite interpreter installed."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            import tensorflow as tf

            Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteBackend(Backend):
    def __init__(self, path, spec, threads=None):
        super().__init__(path, spec, threads)
        try:
            self.interpreter = interpreter_class()(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ValueError(f"{path}: the TFLite interpreter cannot load this model ({err})") from err
        self.input = self.interpreter.get_input_details()[0]
        self.outputs = self.interpreter.get_output_details()

    def recorded_hw(self):
        shape = [int(d) for d in self.input["shape"]]  # NHWC, as onnx2tf writes it
        return fixed_hw(shape[1:3]) if len(shape) == 4 else None

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        self.interpreter.set_tensor(self.input["index"], _quantize(blob, self.input))
        self.interpreter.invoke()
        return [_dequantize(self.interpreter.get_tensor(d["index"]), d) for d in self.outputs]


def _quantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])


def _dequantize(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] == np.float32:
        return x
    scale, zero = detail["quantization"]
    return (x.astype(np.float32) - zero) * scale
