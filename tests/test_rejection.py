"""An artifact that fails verification never lands in its final folder."""
from __future__ import annotations

import json

import cv2
import numpy as np

from converters.verify import MATCH_SCORE, agreement
from runtimes.detection.detections import Detections


def detections(*faces: tuple[float, float]) -> Detections:
    """Square boxes at x offsets with scores, as (x, score) pairs."""
    return Detections(np.array([[x, 0, x + 20, 20] for x, _ in faces], np.float32),
                      np.array([s for _, s in faces], np.float32))


def test_agreement_counts_faces_found_or_lost_not_scores_crossing_the_threshold():
    reference = detections((0, 0.49), (100, 0.9), (200, 0.6))  # the face at 200 drops to 0.35 in the artifact
    artifact = detections((0, 0.51), (100, 0.88), (300, 0.7), (200, 0.35))  # and a new one at 300
    keep = lambda d: d[d.scores >= MATCH_SCORE]  # noqa: E731  (what the Verifier detects at)
    found = agreement([keep(reference)], [keep(artifact)])
    assert (found.reference_detections, found.artifact_detections) == (2, 3)  # at >= 0.5 on each side
    assert found.reference_matched == 1 / 2  # 0.9 matched; 0.6 lost
    assert found.artifact_matched == 2 / 3  # 0.51 (the ONNX's 0.49) and 0.88 matched; the new face not


def test_int8_calibrated_on_black_images_is_rejected_and_leaves_no_final_folder(tmp_path):
    from converters.ncnn import main

    calib = tmp_path / "black"
    calib.mkdir()
    for i in range(8):  # ranges from black frames clip every real activation
        cv2.imwrite(str(calib / f"{i}.png"), np.zeros((240, 320, 3), np.uint8))
    out = tmp_path / "out"
    code = main(["--int", "--hw", "320,320", "--calib", str(calib), "--out", str(out)])  # the default model
    assert code == 1
    assert not (out / "ncnn-int8").exists()
    verdict = json.loads((out / "ncnn-int8.rejected" / "verify.json").read_text())
    assert not verdict["passed"] and verdict["failures"]
    assert verdict["artifact"].startswith(str(out / "ncnn-int8.rejected"))
    for precision in ("fp32", "fp16"):
        assert json.loads((out / f"ncnn-{precision}" / "verify.json").read_text())["passed"]
