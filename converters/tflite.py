"""ONNX → TFLite: onnx2tf (1.28.x) for float32, float16 and the SavedModel; one INT8 calibration pass of our own.

onnx2tf's -oiqt calibrates four times (int8, full int8, two int16-activation files) with mean/std it re-derives;
we quantize its SavedModel once, exactly as it does (TFLiteConverter, per-channel, builtins int8), feeding the
calibration set through the runtime's own normalisation, so calibration and inference cannot disagree.
Offline: onnx2tf downloads a sample-image file unless one of that name sits in its working folder, so it runs
in a scratch folder holding one made from our held-out images. It rewrites its input in place: it gets a copy.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from converters.common import tool_output_to
from converters.keep_float import NONE, Fingerprint, matching_name, output_tail
from converters.pipeline import BackendConverter, ConvertJob, Produced, Timer, backend_main
from runtimes.cli import run_cli

SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"  # the name onnx2tf would download


def write_sample_file(folder: Path, canvases: np.ndarray) -> None:
    """onnx2tf's 20×128×128×3 float32 sample file (0..1), made from real images so it never downloads its own."""
    small = np.stack([cv2.resize(c, (128, 128), interpolation=cv2.INTER_AREA) for c in canvases])
    small = np.resize(small, (20, 128, 128, 3)).astype(np.float32) / 255.0
    np.save(folder / SAMPLE_FILE, small)


@contextmanager
def working_directory(folder: Path):
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def int8_converter(saved_model: Path, samples: np.ndarray, int_io: bool):
    """Full INT8 (per-channel weights, int8 activations) from a SavedModel; float I/O unless int_io."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    if int_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter


def float_nodes(calibrated: bytes, kept: dict[str, Fingerprint], tail: bool) -> list[str]:
    """Output tensor names (what TF's quantizer denylists) of the calibrated model's convolutions in `kept` and,
    when `tail`, of its output tail."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=calibrated)
    interpreter.allocate_tensors()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001 (the op list has no public API)
    convs = [names[op["outputs"][0]] for op in ops if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
             and matching_name(kept, interpreter.get_tensor(op["inputs"][1]))]
    if len(convs) != len(kept):
        raise RuntimeError(f"--keep-float: found {len(convs)} of the {len(kept)} convolutions in the TFLite model")
    if not tail:
        return convs
    graph = [(names[op["outputs"][0]], op["op_name"], [names[i] for i in op["inputs"] if i >= 0],
              [names[o] for o in op["outputs"]]) for op in ops]
    return convs + output_tail(graph, {names[o["index"]] for o in interpreter.get_output_details()})


def quantize_int8(saved_model: Path, samples: np.ndarray, int_io: bool, kept: dict[str, Fingerprint],
                  int8_tail: bool = False) -> bytes:
    """INT8 TFLite; the convolutions in `kept` and, unless `int8_tail`, the output tail stay float
    through TF's quantization debugger (denylisted nodes)."""
    converter = int8_converter(saved_model, samples, int_io)
    if not kept and int8_tail:
        return converter.convert()
    import tensorflow as tf

    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=lambda: ([sample[None]] for sample in samples[:1]))
    debugger.options = tf.lite.experimental.QuantizationDebugOptions(
        denylisted_nodes=float_nodes(debugger.calibrated_model, kept, not int8_tail), fully_quantize=int_io)
    return debugger.get_nondebug_quantized_model()


def saved_model_of(job: ConvertJob, onnx_path: Path, out: Path) -> Path:
    """onnx2tf's SavedModel (and float .tflite files) of `onnx_path` in `out`, run offline in the job's folder."""
    source = job.work / f"{out.name}-source" / "model.onnx"  # onnx2tf names its files after the input's stem
    source.parent.mkdir()
    shutil.copyfile(onnx_path, source)
    with working_directory(job.work), tool_output_to(job.work / "onnx2tf.log", job.options.verbose):
        import onnx2tf

        onnx2tf.convert(input_onnx_file_path=str(source), output_folder_path=str(out),
                        output_signaturedefs=True, non_verbose=True, verbosity="error")
    return out


def convert(job: ConvertJob) -> dict[str, Produced]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    write_sample_file(job.work, job.sample_canvases)
    with Timer() as floats:  # one onnx2tf run writes both float files
        out = saved_model_of(job, job.hub.path, job.work / "tflite")
    produced = {"fp32": Produced([out / "model_float32.tflite"], floats.seconds),
                "fp16": Produced([out / "model_float16.tflite"], floats.seconds)}
    missing = [str(made.files[0]) for made in produced.values() if not made.files[0].is_file()]
    if missing:
        raise RuntimeError(f"onnx2tf did not write {missing}; rerun with -v for its log")
    return produced


def quantize(job: ConvertJob, kept: dict[str, Fingerprint]) -> Produced:
    """INT8 from the SavedModel of the INT8 source (the equalized hub: onnx2tf once more, else the float run's)."""
    with Timer() as timer:
        saved = job.work / "tflite"
        if job.int8_source != job.hub.path:
            saved = job.work / "tflite-int8-source"
            if not saved.is_dir():
                saved_model_of(job, job.int8_source, saved)
        samples = job.calibration.normalized(job.hub.spec, "NHWC")
        with tool_output_to(job.work / "quantize.log", job.options.verbose):
            model = quantize_int8(saved, samples, job.options.int_io, kept, job.options.int8_tail)
        (job.work / "model_int8.tflite").write_bytes(model)
    tail = "int8" if job.options.int8_tail else "float"
    return Produced([job.work / "model_int8.tflite"], timer.seconds, {"calibration": "minmax", "output_tail": tail})


TFLITE = BackendConverter(name="tflite", suffix=".tflite", layout="NHWC", convert=convert, quantize=quantize,
                          tools=("onnx2tf", "tensorflow", "ai-edge-litert"), int_io=True,
                          default_keep_float=NONE)  # a float stem: +63% latency for 0.03 AP Hard (x86, SCRFD 640)


def main(argv: list[str] | None = None) -> int:
    return backend_main(TFLITE, argv)


if __name__ == "__main__":
    run_cli(main)
