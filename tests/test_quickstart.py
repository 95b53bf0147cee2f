"""The README's first command on a machine without ../shared: the default model from the repo, verified TFLite."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from models.default import DEFAULT_MODEL
from models.spec import ModelSpec
from tests.conftest import REPO


def test_main_command_converts_the_default_model_without_shared(tmp_path):
    env = {**os.environ, "FACEKIT_SHARED": str(tmp_path / "no_shared_here")}
    out = tmp_path / "artifacts"
    done = subprocess.run([sys.executable, "-m", "converters.tflite", "--int", "--hw", "480,640", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "converting the kit's default" in done.stderr
    assert "calibration_data/samples/calibration" in done.stderr
    for precision in ("fp32", "fp16", "int8"):
        verdict = json.loads((out / f"tflite-{precision}" / "verify.json").read_text())
        assert verdict["passed"], verdict
        assert verdict["agreement"]["reference_detections"] > 0, "verification must see faces to mean anything"
        spec = ModelSpec.load(out / f"tflite-{precision}" / "model.json")
        assert spec.name == DEFAULT_MODEL.name and spec.provenance.source.endswith(DEFAULT_MODEL.weights.name)
