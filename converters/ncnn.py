"""ONNX → NCNN with pnnx (fp32 and fp16 weights), and INT8 by calibration + .param/.bin rewrite (ncnn_int8).

`python -m converters.ncnn --int --hw 480,640 ...` takes the same arguments as converters.tflite, plus
--ncnn-calib. The INT8 folder also holds calibration.table in ncnn2table's format.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from converters.common import tool_output_to
from converters.keep_float import Fingerprint
from converters.ncnn_int8 import METHODS, calibrate, float_layers, rewrite_int8
from converters.pipeline import BackendConverter, ConvertJob, Produced, Timer, backend_main
from runtimes.cli import run_cli

# Measured best once the depthwise inputs are equalized (Δ AP Hard, SCRFD-500M-KPS 640x640 / RFB-640 480x640):
# min-max -0.38 / -0.41, percentile -0.56 / -1.14, KL worse; without equalization min-max lost 1.7 Easy on RFB.
DEFAULT_CALIBRATION = "minmax"


def pnnx_executable() -> str:
    found = shutil.which("pnnx") or shutil.which("pnnx", path=str(Path(sys.executable).parent))
    if not found:
        raise FileNotFoundError("pnnx is not installed: pip install pnnx (it ships the converter binary)")
    return found


def run_pnnx(onnx_path: Path, folder: Path, shape: list[int], fp16: bool, log: Path) -> tuple[Path, Path]:
    """pnnx on a copy of the ONNX in `folder`; returns the ncnn .param and .bin it wrote."""
    folder.mkdir(parents=True)
    source = folder / "model.onnx"
    shutil.copyfile(onnx_path, source)
    command = [pnnx_executable(), str(source), f"inputshape=[{','.join(map(str, shape))}]", f"fp16={int(fp16)}"]
    with open(log, "ab") as out:
        result = subprocess.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
    param, weights = folder / "model.ncnn.param", folder / "model.ncnn.bin"
    if result.returncode != 0 or not param.is_file() or not weights.is_file():
        raise RuntimeError(f"pnnx failed (exit {result.returncode}); see {log}")
    return param, weights


def convert(job: ConvertJob) -> dict[str, Produced]:
    shape = [1, 3, job.hub.spec.input_h, job.hub.spec.input_w]
    produced = {}
    for precision, fp16 in (("fp32", False), ("fp16", True)):
        with Timer() as timer:
            files = run_pnnx(job.hub.path, job.work / precision, shape, fp16, job.work / "pnnx.log")
        produced[precision] = Produced(list(files), timer.seconds)
    return produced


def quantize(job: ConvertJob, kept: dict[str, Fingerprint]) -> Produced:
    """Calibrate the fp32 ncnn model of the INT8 source, then rewrite it with int8 scales on every convolution
    except the kept ones (those stay float: no int8_scale_term)."""
    spec, method = job.hub.spec, job.options.ncnn_calib or DEFAULT_CALIBRATION
    out = job.work / f"int8-{len(list(job.work.glob('int8-*')))}"  # auto converts more than once in one job
    with Timer() as timer, tool_output_to(job.work / "calibrate.log", job.options.verbose):
        param, weights = run_pnnx(job.int8_source, out / "fp32", [1, 3, spec.input_h, spec.input_w], False,
                                  job.work / "pnnx.log")
        table = calibrate(param, weights, job.calibration.normalized(spec, "NCHW"), method)
        table = table.without(float_layers(param, weights, kept))
        rewrite_int8(param, weights, table, out / "model.param", out / "model.bin")
        (out / "model.table").write_text(table.ncnn2table_text())
    return Produced([out / "model.param", out / "model.bin", out / "model.table"], timer.seconds,
                    {"calibration": method})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ncnn-calib", choices=METHODS, default=DEFAULT_CALIBRATION,
                        help=f"NCNN INT8 activation calibration: minmax, percentile (99.99%%) or kl "
                             f"(default {DEFAULT_CALIBRATION})")


NCNN = BackendConverter(name="ncnn", suffix=".param", layout="NCHW", convert=convert, quantize=quantize,
                        tools=("pnnx", "ncnn"), add_arguments=add_arguments)


def main(argv: list[str] | None = None) -> int:
    return backend_main(NCNN, argv)


if __name__ == "__main__":
    run_cli(main)
