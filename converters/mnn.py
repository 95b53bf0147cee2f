"""ONNX → MNN: fp32, fp16, 8-bit weights and (with --int --mnn-full-int8) full INT8, through MNN's compiled tools.

The tools run through the `_tools` extension the MNN wheel ships, in a child interpreter (converters.mnn_tools),
never through `MNN.tools`: importing that package pip-installs aliyun-log-python-sdk (which broke protobuf here)
and sends usage telemetry, and its `mnnquant` console wrapper passes wrong arguments. Full INT8 reads
calibration images from a folder, so our calibration canvases (already at the model's size, letterboxed) are
written there as PNG.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2

from converters.keep_float import NONE, Fingerprint
from converters.mnn_tools import run_tool
from converters.pipeline import BackendConverter, ConvertJob, Produced, Timer, backend_main
from runtimes.cli import run_cli

QUANT_METHODS = ("EMA", "KL", "ADMM")
DEFAULT_QUANT_METHOD = "EMA"
VARIANTS = {"fp32": [], "fp16": ["--fp16"], "int8w": ["--weightQuantBits", "8"]}  # int8w: 8-bit weights only


def mnnconvert(onnx_path: Path, out: Path, extra: list[str], log: Path) -> None:
    run_tool("mnnconvert", ["-f", "ONNX", "--modelFile", str(onnx_path), "--MNNModel", str(out),
                            "--bizCode", "facekit", *extra], log)
    if not out.is_file():
        raise RuntimeError(f"MNNConvert wrote no {out.name}; see {log}")


def write_calibration_images(job: ConvertJob, folder: Path) -> None:
    folder.mkdir()
    for i, canvas in enumerate(job.calibration.canvases):
        bgr = cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR) if job.hub.spec.channel_order == "RGB" else canvas
        cv2.imwrite(str(folder / f"{i:05d}.png"), bgr)


def quantization_config(job: ConvertJob, folder: Path) -> dict:
    """mnnquant's JSON: the model's own channel order and normalisation, images already at the input size."""
    spec = job.hub.spec
    return {"format": spec.channel_order, "mean": list(spec.mean), "normal": [1.0 / s for s in spec.std],
            "width": spec.input_w, "height": spec.input_h, "path": f"{folder}/",
            "used_image_num": len(job.calibration.canvases),
            "feature_quantize_method": feature_method(job), "weight_quantize_method": "MAX_ABS"}


def feature_method(job: ConvertJob) -> str:
    return job.options.mnn_quant_method or DEFAULT_QUANT_METHOD


def convert(job: ConvertJob) -> dict[str, Produced]:
    produced = {}
    for precision, extra in VARIANTS.items():
        with Timer() as timer:
            mnnconvert(job.hub.path, job.work / f"{precision}.mnn", extra, job.work / "mnn.log")
        produced[precision] = Produced([job.work / f"{precision}.mnn"], timer.seconds)
    return produced


def quantize(job: ConvertJob, kept: dict[str, Fingerprint]) -> Produced:
    """mnnquant's full INT8 of the INT8 source. MNN 3.6.1 offers no float layers that work (its config's
    skip_quant_op_names was measured to change nothing), so --keep-float is refused here."""
    if kept:
        raise ValueError(f"MNN cannot keep convolutions in float in a full INT8 model (mnnquant 3.6.1 ignores "
                         f"skip_quant_op_names); asked for {', '.join(kept)}. Use mnn-int8w (8-bit weights, "
                         "float compute) where MNN's INT8 loses accuracy")
    log = job.work / "mnn.log"
    with Timer() as timer:
        mnnconvert(job.int8_source, job.work / "int8-source.mnn", [], log)
        write_calibration_images(job, job.work / "calibration")
        config = job.work / "quant.json"
        config.write_text(json.dumps(quantization_config(job, job.work / "calibration")))
        run_tool("mnnquant", [str(job.work / "int8-source.mnn"), str(job.work / "int8.mnn"), str(config)], log)
    if not (job.work / "int8.mnn").is_file():
        raise RuntimeError(f"mnnquant wrote no model; see {log}")
    return Produced([job.work / "int8.mnn"], timer.seconds, {"calibration": feature_method(job)})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mnn-full-int8", action="store_true",
                        help="with --int: also make mnnquant's full INT8 mnn-int8 (verified, and rejected when it "
                             "fails, as it does for SCRFD and Ultra-Light here: their score heads lose range). "
                             "Without it MNN's 8-bit artifact is mnn-int8w (8-bit weights, float compute)")
    parser.add_argument("--mnn-quant-method", choices=QUANT_METHODS, default=DEFAULT_QUANT_METHOD,
                        help=f"with --mnn-full-int8: MNN INT8 feature quantization (default {DEFAULT_QUANT_METHOD}; "
                             "ADMM crashed here)")


MNN = BackendConverter(
    name="mnn", suffix=".mnn", layout="NCHW", convert=convert, quantize=quantize, keeps_float=False,
    default_keep_float=NONE, tools=("MNN",), add_arguments=add_arguments,
    int8_opt_in="--mnn-full-int8",
    rejection_hints={"int8": "mnnquant's full INT8 moves the face scores of SCRFD and Ultra-Light (their score heads "
                             "lose range); use mnn-int8w (8-bit weights, float compute), which keeps the accuracy"})


def main(argv: list[str] | None = None) -> int:
    return backend_main(MNN, argv)


if __name__ == "__main__":
    run_cli(main)
