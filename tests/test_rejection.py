"""An artifact that fails verification never lands in its final folder."""
from __future__ import annotations

import json

import cv2
import numpy as np


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
