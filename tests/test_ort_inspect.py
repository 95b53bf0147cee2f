"""ONNX Runtime static INT8 (QDQ) and the per-output inspection of a quantized artifact against its float source."""
from __future__ import annotations

import json

import onnx

from tests.conftest import SAMPLE_VERIFICATION


def test_ort_int8_is_qdq_with_per_channel_weights_and_inspection_ranks_its_outputs(tmp_path):
    from converters.inspect import inspect
    from converters.inspect import main as inspect_main
    from converters.ort import main as ort_main
    out = tmp_path / "out"
    # the default model; without ../shared it is verified on the 16 committed samples, ~30 faces at 320x320, where
    # one face near the 0.5 cut moves agreement by 3%: the gate's own tests are elsewhere, this one reads the file
    assert ort_main(["--int", "--hw", "320,320", "--min-agreement", "0.9", "--out", str(out)]) == 0
    verdict = json.loads((out / "ort-int8" / "verify.json").read_text())
    assert verdict["passed"] and verdict["agreement"]["reference_detections"] > 0
    graph = onnx.load(str(out / "ort-int8" / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weight_scales = [t for t in graph.initializer if t.name.endswith("_scale") and len(t.dims) == 1 and t.dims[0] > 1]
    assert weight_scales, "per-channel weights have one scale per output channel"

    images = sorted(SAMPLE_VERIFICATION.glob("*.jpg"))[:6]
    errors = inspect(out / "ort-int8", out / "onnx", images)
    assert [e.name for e in errors] == ["scores", "boxes"]  # score outputs first
    assert all(5 < e.sqnr_db < 80 and e.cosine > 0.9 for e in errors), [(e.name, e.sqnr_db, e.cosine) for e in errors]
    assert all(e.sqnr_db == float("inf") for e in inspect(out / "onnx", out / "onnx", images[:2]))
    assert inspect_main([str(out / "ort-int8"), "--against", str(out / "onnx"), "--images", str(SAMPLE_VERIFICATION),
                         "--count", "3", "--json", str(tmp_path / "e.json")]) == 0
    assert len(json.loads((tmp_path / "e.json").read_text())) == 2
