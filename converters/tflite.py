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


def quantize_int8(saved_model: Path, samples: np.ndarray, int_io: bool) -> bytes:
    """Full INT8 (per-channel weights, int8 activations) from a SavedModel; float I/O unless int_io."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    if int_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def convert(job: ConvertJob) -> dict[str, Produced]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    source = job.work / "model.onnx"
    shutil.copyfile(job.hub.path, source)
    write_sample_file(job.work, job.sample_canvases)
    out = job.work / "tflite"
    with working_directory(job.work), tool_output_to(job.work / "onnx2tf.log", job.options.verbose):
        import onnx2tf

        with Timer() as floats:  # one onnx2tf run writes both float files
            onnx2tf.convert(input_onnx_file_path=str(source), output_folder_path=str(out),
                            output_signaturedefs=True, non_verbose=True, verbosity="error")
        produced = {"fp32": Produced([out / "model_float32.tflite"], floats.seconds),
                    "fp16": Produced([out / "model_float16.tflite"], floats.seconds)}
        if job.options.int8:
            with Timer() as quantizing:
                samples = job.calibration.normalized(job.hub.spec, "NHWC")
                (out / "model_int8.tflite").write_bytes(quantize_int8(out, samples, job.options.int_io))
            precision = "int8io" if job.options.int_io else "int8"
            produced[precision] = Produced([out / "model_int8.tflite"], quantizing.seconds)
    missing = [str(made.files[0]) for made in produced.values() if not made.files[0].is_file()]
    if missing:
        raise RuntimeError(f"onnx2tf did not write {missing}; rerun with -v for its log")
    return produced


TFLITE = BackendConverter(name="tflite", suffix=".tflite", layout="NHWC", convert=convert,
                          tools=("onnx2tf", "tensorflow", "ai-edge-litert"))


def main(argv: list[str] | None = None) -> int:
    return backend_main(TFLITE, argv)


if __name__ == "__main__":
    run_cli(main)
