"""Real conversions to TFLite (onnx2tf + TF quantizer) checked with the real LiteRT interpreter on real images."""
import json
import subprocess
import sys

import numpy as np
import pytest

from calibration_data import read_image
from converters.verify import FLOAT_MIN_SCORE_COSINE, INT8_MIN_AGREEMENT
from models.spec import ModelSpec
from runtimes import Detector, load_backend
from runtimes.backends.tflite import interpreter_class
from runtimes.detection.nms import box_iou
from tests.conftest import SAMPLE_VERIFICATION, SCRFD_ONNX, VAL_IMAGES, wider_val_faces

PRECISIONS = ("fp32", "fp16", "int8")


def verify_report(out, precision):
    return json.loads((out / f"tflite-{precision}" / "verify.json").read_text())


@pytest.mark.parametrize("fixture", ["scrfd_tflite", "ultraface_tflite"])
def test_conversion_writes_every_precision_with_spec_and_verification(request, fixture):
    out, network_attempts = request.getfixturevalue(fixture)
    assert network_attempts == []
    for precision in PRECISIONS:
        folder = out / f"tflite-{precision}"
        assert sorted(p.name for p in folder.iterdir()) == ["model.json", "model.tflite", "verify.json"]
        spec = ModelSpec.load(folder / "model.json")
        assert spec.layout == "NHWC" and spec.provenance.precision == precision
        assert spec.provenance.tool_versions["onnx2tf"].startswith("1.28.")
        assert verify_report(out, precision)["passed"]


@pytest.mark.parametrize("fixture", ["scrfd_tflite", "ultraface_tflite"])
def test_float_tflite_keeps_scores_within_tolerance(request, fixture):
    out, _ = request.getfixturevalue(fixture)
    for precision in ("fp32", "fp16"):
        report = verify_report(out, precision)
        assert report["score_cosine"] >= FLOAT_MIN_SCORE_COSINE
        assert len(report["images"]) == 16


@pytest.mark.parametrize("fixture", ["scrfd_tflite", "ultraface_tflite"])
def test_int8_tflite_agrees_with_onnx_detections_both_ways(request, fixture):
    out, _ = request.getfixturevalue(fixture)
    agreement = verify_report(out, "int8")["agreement"]
    assert agreement["reference_detections"] > 20  # the held-out images really contain faces
    assert agreement["reference_matched"] >= INT8_MIN_AGREEMENT
    assert agreement["artifact_matched"] >= INT8_MIN_AGREEMENT


def test_int8_tflite_is_really_int8_with_float_io(scrfd_tflite):
    out, _ = scrfd_tflite
    interpreter = interpreter_class()(model_path=str(out / "tflite-int8" / "model.tflite"))
    dtypes = [d["dtype"] for d in interpreter.get_tensor_details()]
    assert sum(d == np.int8 for d in dtypes) > 100
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    float_interpreter = interpreter_class()(model_path=str(out / "tflite-fp32" / "model.tflite"))
    assert not any(d["dtype"] == np.int8 for d in float_interpreter.get_tensor_details())


def test_the_source_onnx_is_never_modified(scrfd_tflite):
    out, _ = scrfd_tflite
    from runtimes.files import sha256_file

    spec = ModelSpec.load(out / "tflite-int8" / "model.json")
    assert spec.provenance.source_sha256 == sha256_file(SCRFD_ONNX)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_tflite_detector_finds_ground_truth_faces(scrfd_tflite, precision):
    out, _ = scrfd_tflite
    image_path = VAL_IMAGES / "0--Parade" / "0_Parade_Parade_0_611.jpg"
    detector = Detector.from_artifact(out / f"tflite-{precision}", threads=2)
    found = detector(read_image(image_path))
    truth = np.array(wider_val_faces(image_path), np.float32)
    big = truth[(truth[:, 2] - truth[:, 0]) >= 24]
    hits = (box_iou(big, found.boxes).max(axis=1) >= 0.5).sum()
    assert len(big) >= 5 and hits >= 0.8 * len(big)
    assert found.landmarks.shape == (len(found), 5, 2)


def test_tflite_backend_returns_canonical_outputs(ultraface_tflite):
    out, _ = ultraface_tflite
    backend = load_backend(out / "tflite-int8")
    blob = np.zeros((1, 480, 640, 3), np.float32)
    assert [o.shape for o in backend(blob)] == list(backend.spec.output_shapes())


def test_detect_cli_runs_the_shipped_model_when_given_none(tmp_path):
    image = SAMPLE_VERIFICATION / "4_Dancing_Dancing_4_905.jpg"  # four faces
    annotated = tmp_path / "faces.png"
    result = subprocess.run([sys.executable, "-m", "runtimes.detect", str(image), "--out", str(annotated)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) >= 3 and all(r["score"] >= 0.5 for r in records)
    drawn, original = read_image(annotated), read_image(image)
    assert drawn.shape == original.shape and (drawn != original).any()


def test_int_io_tflite_takes_and_returns_int8(tmp_path):
    from tests.conftest import convert_tflite

    out, attempts = convert_tflite(tmp_path, "--int-io")
    assert attempts == []
    interpreter = interpreter_class()(model_path=str(out / "tflite-int8io" / "model.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert all(d["dtype"] == np.int8 for d in interpreter.get_output_details())
    assert verify_report(out, "int8io")["passed"]
