"""The README's Quickstart as a newcomer meets it: a copy of the repository with no ../shared beside it, the
shipped model detecting and tracking with no --model, then the first conversion."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np

from models.default import DEFAULT_MODEL
from models.spec import ModelSpec
from tests.conftest import REPO, SAMPLE_VERIFICATION


def fresh_copy(destination):
    """The files a clone of this working tree has (tracked, and new ones git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, destination / name)
    return destination


def test_quickstart_commands_work_in_a_fresh_copy_without_shared(tmp_path):
    clone = fresh_copy(tmp_path / "facekit")
    env = {**os.environ, "FACEKIT_SHARED": str(tmp_path / "no_shared_here")}

    def run(*args, timeout=300):
        return subprocess.run([sys.executable, "-m", *args], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=timeout)

    where = subprocess.run([sys.executable, "-c", "import runtimes; print(runtimes.__file__)"], cwd=clone, env=env,
                           capture_output=True, text=True)
    assert where.stdout.startswith(str(clone)), where  # the copy's code runs, not this checkout's

    photo = clone / "calibration_data" / "samples" / "verification" / "4_Dancing_Dancing_4_905.jpg"
    detected = run("runtimes.detect", str(photo), "--out", str(tmp_path / "faces.jpg"))
    assert detected.returncode == 0, detected.stderr[-3000:]
    assert len(detected.stdout.splitlines()) >= 2 and (tmp_path / "faces.jpg").is_file()

    clip = tmp_path / "clip.mp4"
    frame = cv2.imread(str(SAMPLE_VERIFICATION / "4_Dancing_Dancing_4_905.jpg"))
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 25, frame.shape[1::-1])
    for i in range(30):
        writer.write(np.roll(frame, i, axis=0))
    writer.release()
    tracked = run("runtimes.run", str(clip), "--json", str(tmp_path / "faces.jsonl"))
    assert tracked.returncode == 0, tracked.stderr[-3000:]
    summary = json.loads((tmp_path / "faces.summary.json").read_text())
    assert summary["frames"] == 30 and summary["tracks"] >= 1
    assert summary["model"] == str(clone / DEFAULT_MODEL.shipped_label)

    out = tmp_path / "artifacts"
    converted = run("converters.tflite", "--int", "--hw", "480,640", "--out", str(out), timeout=900)
    assert converted.returncode == 0, converted.stderr[-3000:]
    assert "converting the kit's default" in converted.stderr
    assert "calibration_data/samples/calibration" in converted.stderr
    for precision in ("fp32", "fp16", "int8"):
        verdict = json.loads((out / f"tflite-{precision}" / "verify.json").read_text())
        assert verdict["passed"], verdict
        assert verdict["agreement"]["reference_detections"] > 0, "verification must see faces to mean anything"
        spec = ModelSpec.load(out / f"tflite-{precision}" / "model.json")
        assert spec.name == DEFAULT_MODEL.name and spec.provenance.source == DEFAULT_MODEL.weights_label
