"""The ONNX hub and the converters' handling of bad input (real files, real onnx/onnxruntime)."""
import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from converters.onnx import main as onnx_main
from models.default import DEFAULT_MODEL
from runtimes.files import sha256_file
from tests.conftest import SCRFD_ONNX, requires_shared

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


def test_pytorch_ultraface_exports_and_matches_torch(tmp_path):
    assert onnx_main(["--model", "ultraface_slim", "--weights", str(DEFAULT_MODEL.weights), "--hw", "256,320",
                      "--opset", "11", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "onnx" / "report.json").read_text())
    assert max(report["source_comparison"]["max_abs_diff"].values()) < 1e-4
    assert [o.name for o in onnx.load(str(tmp_path / "onnx" / "model.onnx")).graph.output] == ["scores", "boxes"]


def test_wrong_family_is_an_error_not_a_guess(tmp_path, default_hub):
    with pytest.raises(ValueError, match="are not SCRFD stride-8/16/32 outputs"):
        onnx_main(["--onnx", str(default_hub / "model.onnx"), "--family", "scrfd", "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_weights_of_another_model_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="do not fit ultraface_rfb"):
        onnx_main(["--model", "ultraface_rfb", "--weights", str(DEFAULT_MODEL.weights), "--out", str(tmp_path)])


def test_weights_without_a_model_are_refused_not_ignored(tmp_path):
    with pytest.raises(ValueError, match="--weights .* needs --model NAME"):
        onnx_main(["--weights", str(DEFAULT_MODEL.weights), "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_a_misspelt_model_name_lists_the_registered_ones(tmp_path):
    result = run_module("converters.tflite", "--model", "ultrafac_slim", "--weights", str(DEFAULT_MODEL.weights),
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "unknown model 'ultrafac_slim'; registered: scrfd_500m, scrfd_500m_kps, ultraface_slim" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("hw,message", [("481,640", "H=481 must be divisible by 32 (try 480 or 512)"),
                                        ("480,650", "W=650 must be divisible by 32 (try 640 or 672)")])
def test_size_not_divisible_by_32_fails_and_writes_nothing(tmp_path, hw, message):
    out = tmp_path / "out"
    result = run_module("converters.tflite", "--int", "--hw", hw, "--out", str(out))
    assert result.returncode != 0
    assert message in result.stderr
    assert not out.exists()


def test_an_incomplete_source_says_exactly_what_to_pass(tmp_path):
    result = run_module("converters.tflite", "--int", "--hw", "480,640", "--model", "ultraface_slim",
                        "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "--onnx" in result.stderr and "--family scrfd" in result.stderr and "--weights" in result.stderr
    assert not (tmp_path / "out").exists()


def test_no_source_and_no_default_weights_says_what_to_pass(tmp_path, monkeypatch):
    import converters.options as options
    from models.default import DefaultModel

    monkeypatch.setattr(options, "DEFAULT_MODEL", DefaultModel("x", "ultraface_slim", tmp_path / "gone.pth",
                                                               (480, 640)))
    with pytest.raises(options.UsageError, match=r"(?s)gone.pth are missing.*--onnx"):
        options.Source().resolved()


def test_no_source_means_the_default_model():
    from converters.options import Source
    from models.default import DEFAULT_MODEL

    source = Source().resolved()
    assert (source.model, source.weights, source.name) == (DEFAULT_MODEL.model, DEFAULT_MODEL.weights,
                                                           DEFAULT_MODEL.name)
    assert DEFAULT_MODEL.weights.stat().st_size < 5e6  # committed in the repository


def test_groupnorm_scrfd_hub_holds_no_constant_nodes(tmp_path):
    import torch

    from models import build

    torch.save(build("scrfd_500m").state_dict(), tmp_path / "gn.pth")  # GroupNorm heads
    assert onnx_main(["--model", "scrfd_500m", "--weights", str(tmp_path / "gn.pth"), "--hw", "320,320",
                      "--out", str(tmp_path / "out")]) == 0
    model = onnx.load(str(tmp_path / "out" / "onnx" / "model.onnx"))
    initializers = {t.name for t in model.graph.initializer}
    assert not [n for n in model.graph.node if n.op_type == "Constant"]  # onnx2tf fails on them
    norms = [n for n in model.graph.node if n.op_type == "InstanceNormalization"]
    assert norms and all(set(n.input[1:]) <= initializers for n in norms)


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
    from runtimes.detection.preprocess import prepare
    from tests.conftest import VAL_IMAGES

    assert onnx_main(["--model", "scrfd_500m_kps", "--weights", str(SCRFD_ONNX), "--hw", "480,640",
                      "--out", str(tmp_path / "torch")]) == 0
    assert onnx_main(["--onnx", str(SCRFD_ONNX), "--family", "scrfd", "--hw", "480,640",
                      "--out", str(tmp_path / "official")]) == 0
    ours, theirs = load_backend(tmp_path / "torch" / "onnx"), load_backend(tmp_path / "official" / "onnx")
    blob, _ = prepare(read_image(next(VAL_IMAGES.glob("*/*.jpg"))), ours.spec)
    for a, b in zip(ours(blob), theirs(blob), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
