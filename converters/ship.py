"""python -m converters.ship: remake the default model's shipped artifacts (models/shipped/) from its committed
weights, so `python -m runtimes.run` and `runtimes.detect` work on a base install with no --model.

The hub ONNX and the TFLite INT8 file at the default size, calibrated and verified on the committed sample
images (never ../shared), so any machine remakes the same files and a test can check that they still agree.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from calibration_data.calibration import SAMPLES
from converters.options import ConvertOptions
from converters.pipeline import backend_parser, prepare_shared, run_backend, summary_table
from converters.tflite import TFLITE
from models.default import DEFAULT_MODEL, SHIPPED_KINDS
from runtimes.cli import run_cli
from runtimes.files import atomic_write_text, replace_dir, staging_dir


def conversion_arguments(out: Path) -> list[str]:
    """The converter arguments that make the shipped files (also what the drift test converts with)."""
    h, w = DEFAULT_MODEL.shipped_hw
    return ["--int", "--hw", f"{h},{w}", "--calib", str(SAMPLES / "calibration"),
            "--verify-images", str(SAMPLES / "verification"), "--out", str(out)]


def convert_default(out: Path) -> list:
    """Convert the committed default weights into `out` as the shipped files are made; returns the results."""
    options = ConvertOptions.from_args(backend_parser(TFLITE).parse_args(conversion_arguments(out)))
    return run_backend(TFLITE, options, prepare_shared(options))


def ship(destination: Path = DEFAULT_MODEL.shipped_dir) -> str:
    """Convert, check every artifact passed, then replace `destination` with the shipped kinds in one rename."""
    with tempfile.TemporaryDirectory(prefix="facekit-ship-") as work:
        results = convert_default(Path(work) / "out")
        table = summary_table(results)
        failed = [r.folder.name for r in results if not r.report.passed]
        if failed:
            raise ValueError(f"{', '.join(failed)} failed verification; nothing shipped\n{table}")
        with staging_dir(destination) as tmp:
            for kind in SHIPPED_KINDS:
                shutil.copytree(Path(work) / "out" / kind, tmp / kind)
                verdict = tmp / kind / "verify.json"
                if verdict.is_file():  # name the shipped file, not the scratch folder it was verified in
                    report = json.loads(verdict.read_text())
                    report["artifact"] = f"{DEFAULT_MODEL.shipped_dir.name}/{kind}/{Path(report['artifact']).name}"
                    atomic_write_text(verdict, json.dumps(report, indent=2) + "\n")
            replace_dir(tmp, destination)
    return table


def parser() -> argparse.ArgumentParser:
    h, w = DEFAULT_MODEL.shipped_hw
    return argparse.ArgumentParser(prog="python -m converters.ship", description=(
        f"Remake models/shipped/{DEFAULT_MODEL.shipped_dir.name}/ from "
        f"{DEFAULT_MODEL.weights_label}: {', '.join(SHIPPED_KINDS)} of {DEFAULT_MODEL.name} at {h}x{w}, calibrated "
        "and verified on calibration_data/samples/. Run it after retraining the default model, and commit the "
        "result: the test suite checks that the shipped files match a fresh conversion."))


def main(argv: list[str] | None = None) -> int:
    parser().parse_args(argv)
    print(ship())
    print(f"shipped: {', '.join(str(DEFAULT_MODEL.shipped_dir / k) for k in SHIPPED_KINDS)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
