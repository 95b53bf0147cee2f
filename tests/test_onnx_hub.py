"""The ONNX hub and the converters' handling of bad input (real files, real onnx/onnxruntime)."""
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from converters.onnx import main as onnx_main
from runtimes.files import sha256_file
from tests.conftest import SCRFD_ONNX, ULTRAFACE, requires_shared

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


@requires_shared
def test_official_scrfd_onnx_is_fixed_to_canonical_hub_model(tmp_path):
    before = sha256_file(SCRFD_ONNX)
    assert onnx_main(["--onnx", str(SCRFD_ONNX), "--family", "scrfd", "--hw", "480,640", "--out", str(tmp_path)]) == 0
    model = onnx.load(str(tmp_path / "onnx" / "model.onnx"))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 480, 640]
    assert [o.name for o in model.graph.output] == [f"{h}_{s}" for s in (8, 16, 32) for h in ("score", "bbox", "kps")]
    assert next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) == 13
    report = json.loads((tmp_path / "onnx" / "report.json").read_text())
    assert report["opset_in"] == 11
    assert max(report["source_comparison"]["max_abs_diff"].values()) < 1e-4
    spec = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert spec["has_landmarks"] and spec["anchors_per_location"] == 2
    assert spec["provenance"]["source_sha256"] == before == sha256_file(SCRFD_ONNX)


@requires_shared
def test_pytorch_ultraface_exports_and_matches_torch(tmp_path):
    weights = ULTRAFACE / "version-slim-320.pth"
    assert onnx_main(["--model", "ultraface_slim", "--weights", str(weights), "--hw", "256,320",
                      "--opset", "11", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "onnx" / "report.json").read_text())
    assert max(report["source_comparison"]["max_abs_diff"].values()) < 1e-4
    assert [o.name for o in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.output] == ["scores", "boxes"]


@requires_shared
def test_wrong_family_is_an_error_not_a_guess(tmp_path):
    with pytest.raises(ValueError, match="do not match ultraface"):
        onnx_main(["--onnx", str(SCRFD_ONNX), "--family", "ultraface", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


@requires_shared
def test_weights_of_another_model_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="do not fit ultraface_rfb"):
        onnx_main(["--model", "ultraface_rfb", "--weights", str(ULTRAFACE / "version-slim-320.pth"),
                   "--out", str(tmp_path)])


@requires_shared
@pytest.mark.parametrize("hw,message", [("481,640", "H=481 must be divisible by 32 (try 480 or 512)"),
                                        ("480,650", "W=650 must be divisible by 32 (try 640 or 672)")])
def test_size_not_divisible_by_32_fails_and_writes_nothing(tmp_path, hw, message):
    out = tmp_path / "out"
    result = run_module("converters.tflite", "--int", "--hw", hw, "--onnx", str(SCRFD_ONNX), "--family", "scrfd",
                        "--out", str(out))
    assert result.returncode != 0
    assert message in result.stderr
    assert not out.exists()


def test_no_model_says_exactly_what_to_pass(tmp_path):
    result = run_module("converters.tflite", "--int", "--hw", "480,640", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "--onnx" in result.stderr and "--family scrfd" in result.stderr and "--weights" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content,message", [(None, "no such ONNX file"), (b"garbage" * 100, "not a readable ONNX")])
def test_missing_or_corrupt_onnx_is_a_clear_error(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    result = run_module("converters.onnx", "--onnx", str(path), "--family", "scrfd", "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_every_converter_flag_is_explained_in_help():
    result = run_module("converters.tflite", "--help")
    assert result.returncode == 0
    for flag in ("--int", "--int-io", "--hw", "--onnx", "--family", "--model", "--weights", "--calib", "--out",
                 "--min-agreement", "--verify-images"):
        assert flag in result.stdout


@requires_shared
def test_pytorch_scrfd_with_official_weights_gives_the_official_outputs(tmp_path):
    import numpy as np

    from calibration_data import read_image
    from runtimes import load_backend
    from runtimes.preprocess import prepare
    from tests.conftest import VAL_IMAGES

    assert onnx_main(["--model", "scrfd_500m_kps", "--weights", str(SCRFD_ONNX), "--hw", "480,640",
                      "--out", str(tmp_path / "torch")]) == 0
    assert onnx_main(["--onnx", str(SCRFD_ONNX), "--family", "scrfd", "--hw", "480,640",
                      "--out", str(tmp_path / "official")]) == 0
    ours, theirs = load_backend(tmp_path / "torch" / "onnx"), load_backend(tmp_path / "official" / "onnx")
    blob, _ = prepare(read_image(next(VAL_IMAGES.glob("*/*.jpg"))), ours.spec)
    for a, b in zip(ours(blob), theirs(blob), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
