"""OpenCV's DNN module as a fifth runtime for ONNX artifacts: the same detections as onnxruntime."""
import cv2
import numpy as np
import pytest

from runtimes import load_backend
from runtimes.backends.opencv import OpenCVBackend
from runtimes.detection.detector import Detector
from tests.conftest import SAMPLE_VERIFICATION


def assert_same_detections(artifact, score_threshold=0.3):
    options = dict(score_threshold=score_threshold, nms_threshold=0.4)
    reference, opencv = Detector.from_artifact(artifact, **options), Detector.from_artifact(artifact, runtime="opencv",
                                                                                           **options)
    assert isinstance(opencv.backend, OpenCVBackend)
    faces = 0
    for path in sorted(SAMPLE_VERIFICATION.glob("*.jpg")):
        image = cv2.imread(str(path))
        a, b = reference(image), opencv(image)
        assert len(a) == len(b), path.name
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
        faces += len(a)
    assert faces >= 20


def test_opencv_runs_the_default_hub_as_onnxruntime_does(default_hub):
    assert_same_detections(default_hub)


def test_opencv_runs_scrfd_as_onnxruntime_does(scrfd_hub):
    assert_same_detections(scrfd_hub)


def test_opencv_runs_yunet_as_onnxruntime_does(yunet_hub):
    assert_same_detections(yunet_hub)


def test_opencv_runs_only_onnx_files(tmp_path):
    from models.default import DEFAULT_MODEL

    with pytest.raises(ValueError, match="opencv runs .onnx files, not .tflite"):
        load_backend(DEFAULT_MODEL.artifact("tflite-int8"), runtime="opencv")
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'"):
        load_backend(DEFAULT_MODEL.artifact("onnx"), runtime="tensorrt")
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    (tmp_path / "model.json").write_text(DEFAULT_MODEL.artifact("onnx").joinpath("model.json").read_text())
    with pytest.raises(ValueError, match="OpenCV's DNN module cannot load"):
        load_backend(tmp_path, runtime="opencv")
