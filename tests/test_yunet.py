"""YuNet, the third family: the kit's decode against OpenCV's own cv2.FaceDetectorYN on the same letterboxed
inputs, and the family registry's errors."""
import cv2
import numpy as np
import pytest

from models.families import FAMILIES, family
from models.spec import ModelSpec
from runtimes.detection.detector import Detector
from runtimes.detection.nms import box_iou
from runtimes.detection.preprocess import resize_to_canvas
from tests.conftest import SAMPLE_VERIFICATION, WIDER, YUNET_ONNX


def test_the_kits_yunet_decode_equals_opencvs_face_detector(yunet_hub):
    ours = Detector.from_artifact(yunet_hub, score_threshold=0.3, nms_threshold=0.3)
    theirs = cv2.FaceDetectorYN.create(str(YUNET_ONNX), "", (640, 480), 0.3, 0.3, 5000)
    compared = 0
    for path in sorted(SAMPLE_VERIFICATION.glob("*.jpg")):
        canvas = resize_to_canvas(cv2.imread(str(path)), 480, 640, "letterbox", rgb=False).canvas
        found, (_, faces) = ours(canvas), theirs.detect(canvas)
        faces = np.zeros((0, 15), np.float32) if faces is None else faces
        assert len(found) == len(faces), path.name
        if not len(faces):
            continue
        boxes = np.c_[faces[:, :2], faces[:, :2] + faces[:, 2:4]]
        match = box_iou(found.boxes, boxes).argmax(axis=1)
        assert sorted(match) == list(range(len(faces)))
        np.testing.assert_allclose(found.boxes, boxes[match], atol=0.5)
        np.testing.assert_allclose(found.scores, faces[match, 14], atol=1e-4)
        np.testing.assert_allclose(found.landmarks.reshape(-1, 10), faces[match, 4:14], atol=0.5)
        compared += len(faces)
    assert compared >= 30


def test_eval_of_the_yunet_hub_gives_opencvs_ap(yunet_hub, tmp_path):
    """The whole chain against what a user would run instead: `python -m eval` on the kit's YuNet hub and on
    cv2.FaceDetectorYN's predictions (eval.opencv_yunet, the same letterboxed inputs), the 578 shared val images."""
    import json

    from eval.__main__ import main as eval_main
    from eval.opencv_yunet import main as opencv_main

    assert opencv_main(["--onnx", str(YUNET_ONNX), "--data", str(WIDER), "--out", str(tmp_path / "opencv")]) == 0
    assert eval_main(["--model", str(yunet_hub), "--data", str(WIDER), "--out", str(tmp_path / "kit")]) == 0
    assert eval_main(["--pred", str(tmp_path / "opencv"), "--data", str(WIDER), "--out", str(tmp_path / "cv")]) == 0
    kit, cv = (json.loads((tmp_path / run / "report.json").read_text())["models"][0]["ap"] for run in ("kit", "cv"))
    assert kit["hard"] > 0.5
    for setting in ("easy", "medium", "hard"):
        assert abs(kit[setting] - cv[setting]) <= 0.002, (setting, kit, cv)


def test_an_unknown_family_is_an_error_listing_the_known_ones():
    spec = family("yunet").default_spec("y", 480, 640)
    with pytest.raises(ValueError, match="unknown family 'retinaface'; known: scrfd, ultraface, yunet"):
        ModelSpec.from_dict({**spec.to_dict(), "family": "retinaface"})
    assert list(FAMILIES) == ["scrfd", "ultraface", "yunet"]


def test_every_family_builds_a_spec_from_its_own_output_shapes():
    for name, known in FAMILIES.items():
        spec = known.default_spec(name, 480, 640)
        shapes = [(1, *shape) for shape in reversed(spec.output_shapes())]
        assert known.spec_from_outputs(name, 480, 640, shapes).output_shapes() == spec.output_shapes()
        with pytest.raises(ValueError, match="outputs"):
            known.spec_from_outputs(name, 480, 640, shapes[1:])
