"""ONNX → ONNX Runtime static INT8 (QDQ): per-channel int8 weights, int8 activations, calibrated on our set.

Only an INT8 artifact: onnxruntime's float model is the hub (`onnx/`). The calibration set goes through the
runtime's own normalisation, as for every other backend. `--ort-calib` picks ORT's calibrator.
"""
from __future__ import annotations

import argparse

import numpy as np

from converters.pipeline import BackendConverter, ConvertJob, Produced, Timer, backend_main
from runtimes.cli import run_cli

CALIBRATORS = ("minmax", "percentile", "entropy")
DEFAULT_CALIBRATOR = "minmax"


class _Batches:
    """ORT's CalibrationDataReader protocol over our (N,3,H,W) calibration blobs, one image per batch."""

    def __init__(self, name: str, blobs: np.ndarray):
        self.name, self.blobs, self.index = name, blobs, 0

    def get_next(self):
        if self.index >= len(self.blobs):
            return None
        self.index += 1
        return {self.name: self.blobs[self.index - 1][None]}

    def rewind(self):
        self.index = 0


def convert(job: ConvertJob) -> dict[str, Produced]:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    method = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
              "entropy": CalibrationMethod.Entropy}[job.options.ort_calib]
    out = job.work / "int8.onnx"
    with Timer() as timer:
        quantize_static(str(job.hub.path), str(out),
                        _Batches(job.hub.spec.input_name, job.calibration.normalized(job.hub.spec, "NCHW")),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                        weight_type=QuantType.QInt8, calibrate_method=method,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
    return {"int8": Produced([out], timer.seconds)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ort-calib", choices=CALIBRATORS, default=DEFAULT_CALIBRATOR,
                        help=f"onnxruntime INT8 activation calibration (default {DEFAULT_CALIBRATOR})")


ORT = BackendConverter(name="ort", suffix=".onnx", layout="NCHW", convert=convert, tools=("onnxruntime",),
                       add_arguments=add_arguments, int8_only=True)


def main(argv: list[str] | None = None) -> int:
    return backend_main(ORT, argv)


if __name__ == "__main__":
    run_cli(main)
