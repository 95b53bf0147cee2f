"""INT8 helpers of issue 10: activation equalization and --keep-float, read back from the real artifacts."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from converters.equalize import channel_ranges, equalizable_pairs, equalize
from converters.keep_float import conv_weights, next_auto_layers, parse_keep_float


def unequal_net(path) -> np.ndarray:
    """conv → ReLU → depthwise → ReLU → 1x1 with output channel 0 of the first conv 50× larger than the rest,
    exported to ONNX at `path`; returns 16 inputs."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.ReLU(),
                        nn.Conv2d(8, 4, 1)).eval()
    with torch.no_grad():
        net[0].weight[0] *= 50
        net[0].bias[0] = 1.0
        net[0].bias[1:] = 0.1
        net[2].weight[0] /= 50
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), str(path), dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["out"])
    return np.random.default_rng(0).normal(size=(16, 3, 32, 32)).astype(np.float32)


def run(model: onnx.ModelProto, blobs: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {"input": b[None]})[0] for b in blobs])


def test_equalization_keeps_the_float_outputs_and_evens_the_channel_ranges(tmp_path):
    blobs = unequal_net(tmp_path / "net.onnx")
    model = onnx.load(str(tmp_path / "net.onnx"))
    pairs = equalizable_pairs(model)
    assert len(pairs) == 1 and pairs[0].producer.op_type == "Conv"  # the depthwise conv feeds a 1x1, not a dw
    equalized, names = equalize(model, blobs)
    assert names == [pairs[0].producer.name]
    np.testing.assert_allclose(run(equalized, blobs), run(model, blobs), rtol=1e-4, atol=1e-4)
    before = channel_ranges(model, [pairs[0].activation], blobs)[pairs[0].activation]
    after = channel_ranges(equalized, [pairs[0].activation], blobs)[pairs[0].activation]
    assert before.max() / before.min() > 20 and after.max() / after.min() < 1.01


def test_equalization_lowers_the_int8_error_of_onnxruntime(tmp_path):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    from converters.inspect import tensor_error
    from converters.ort import _Batches

    blobs = unequal_net(tmp_path / "net.onnx")
    model = onnx.load(str(tmp_path / "net.onnx"))
    reference = run(model, blobs)
    sqnr = {}
    for label, source in (("plain", model), ("equalized", equalize(model, blobs)[0])):
        onnx.save(source, str(tmp_path / f"{label}.onnx"))
        quantize_static(str(tmp_path / f"{label}.onnx"), str(tmp_path / f"{label}-int8.onnx"),
                        _Batches("input", blobs), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
        quantized = run(onnx.load(str(tmp_path / f"{label}-int8.onnx")), blobs)
        sqnr[label] = tensor_error("out", reference, quantized).sqnr_db
    assert sqnr["equalized"] > sqnr["plain"] + 6, sqnr  # a 50x range spread costs the other channels ~5 bits


def test_keep_float_names_parse_and_auto_grows_from_the_input():
    assert [parse_keep_float(p) for p in ("none", "auto", "stem")] == ["none", "auto", "stem"]
    assert parse_keep_float("Conv_0, Conv_3") == ("Conv_0", "Conv_3")
    model = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", f"w{i}"], [f"y{i}"], name=f"c{i}") for i in range(5)], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 1, 4, 4])], [],
        [onnx.numpy_helper.from_array(np.full((1, 1, 1, 1), i, np.float32), f"w{i}") for i in range(5)]))
    assert list(conv_weights(model)) == ["c0", "c1", "c2", "c3", "c4"]
    assert next_auto_layers(model, ()) == ("c0",)
    assert next_auto_layers(model, ("c0",)) == ("c1",)
    assert next_auto_layers(model, ("c0", "c1")) == ("c2", "c3")


@pytest.fixture(scope="module")
def slim_hub(tmp_path_factory):
    """The kit's default model (Ultra-Light slim, committed weights) as a hub ONNX at 320x320, and its convolutions
    in graph order."""
    from converters.onnx import main as onnx_main

    out = tmp_path_factory.mktemp("slim")
    assert onnx_main(["--hw", "320,320", "--out", str(out)]) == 0
    hub = out / "onnx" / "model.onnx"
    return hub, list(conv_weights(onnx.load(str(hub))))


def convert(main, hub, out, *extra) -> int:
    return main(["--int", "--hw", "320,320", "--onnx", str(hub), "--family", "ultraface", "--out", str(out),
                 "--calib-count", "24", "--keep-failed", *extra])


def kept_in(folder) -> list[str]:
    return json.loads((folder / "model.json").read_text())["provenance"]["quantization"]["float_layers"]


def test_keep_float_leaves_the_named_convolutions_float_in_ncnn_and_onnxruntime(slim_hub, tmp_path):
    from converters.ncnn import main as ncnn_main
    from converters.ort import main as ort_main
    from runtimes.backends.ncnn import read_param

    hub, convs = slim_hub
    kept = [convs[0], convs[5]]
    convert(ncnn_main, hub, tmp_path, "--keep-float", ",".join(kept))
    layers = [la for la in read_param(tmp_path / "ncnn-int8" / "model.param")
              if la.type in ("Convolution", "ConvolutionDepthWise")]
    float_layers = [la.name for la in layers if la.params.get("8") != "1"]
    assert len(layers) == len(convs) and len(float_layers) == 2, float_layers
    assert float_layers[0] == layers[0].name  # the first conv of the graph is the first in ncnn too
    assert kept_in(tmp_path / "ncnn-int8") == kept

    convert(ort_main, hub, tmp_path, "--keep-float", ",".join(kept), "--int8-tail")  # no float score convs
    graph = onnx.load(str(tmp_path / "ort-int8" / "model.onnx")).graph
    produced_by = {o: n.op_type for n in graph.node for o in n.output}
    weight_source = {n.name: produced_by.get(n.input[1], "initializer") for n in graph.node if n.op_type == "Conv"}
    assert {name for name, source in weight_source.items() if source != "DequantizeLinear"} == set(kept)
    assert kept_in(tmp_path / "ort-int8") == kept


def test_keep_float_leaves_the_named_convolutions_float_in_tflite(slim_hub, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    from converters.tflite import main as tflite_main

    hub, convs = slim_hub
    kept = [convs[1], convs[2]]
    convert(tflite_main, hub, tmp_path, "--keep-float", ",".join(kept), "--no-equalize", "--int8-tail")
    interpreter = Interpreter(str(tmp_path / "tflite-int8" / "model.tflite"))
    dtypes = {t["index"]: t["dtype"] for t in interpreter.get_tensor_details()}
    filters = [dtypes[op["inputs"][1]] for op in interpreter._get_ops_details()
               if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    assert len(filters) == len(convs) and sum(d == np.float32 for d in filters) == 2, filters
    assert kept_in(tmp_path / "tflite-int8") == kept


def test_int8_artifacts_keep_the_output_tail_in_float_unless_int8_tail_is_asked(slim_hub, tmp_path):
    """The score convolutions and the reshapes, concatenations and Softmax after them: float in TFLite and ONNX
    Runtime INT8 by default; the box convolutions stay int8."""
    from ai_edge_litert.interpreter import Interpreter

    from converters.keep_float import onnx_ops, output_tail, stem_convs
    from converters.ort import main as ort_main
    from converters.tflite import main as tflite_main

    hub, convs = slim_hub
    score_convs = [c for c in output_tail(*onnx_ops(onnx.load(str(hub)))) if c in convs]
    assert [c.split("/")[1] for c in score_convs] == [f"classification_headers.{i}" for i in range(4)]
    tails = {}
    for tail in ("float", "int8"):
        out = tmp_path / tail
        extra = ("--int8-tail",) if tail == "int8" else ()
        convert(tflite_main, hub, out, *extra)
        interpreter = Interpreter(str(out / "tflite-int8" / "model.tflite"))
        dtypes = {t["index"]: t["dtype"].__name__ for t in interpreter.get_tensor_details()}
        ops = interpreter._get_ops_details()
        tflite = {op["op_name"]: op["result_types"][0].__name__ for op in ops
                  if op["op_name"] in ("SOFTMAX", "CONCATENATION")}
        float_filters = sum(dtypes[op["inputs"][1]] == "float32" for op in ops if op["op_name"] == "CONV_2D")
        convert(ort_main, hub, out, *extra)
        graph = onnx.load(str(out / "ort-int8" / "model.onnx")).graph
        softmax = next(n for n in graph.node if n.op_type == "Softmax")
        readers = [n.op_type for n in graph.node if softmax.output[0] in n.input]
        produced_by = {o: n.op_type for n in graph.node for o in n.output}
        float_convs = {n.name for n in graph.node
                       if n.op_type == "Conv" and produced_by.get(n.input[1]) != "DequantizeLinear"}
        tails[tail] = tflite, float_filters, readers, float_convs - set(stem_convs(onnx.load(str(hub))))
        for kind in ("tflite-int8", "ort-int8"):
            quantization = json.loads((out / kind / "model.json").read_text())["provenance"]["quantization"]
            assert quantization["output_tail"] == tail
    # Softmax → the output; the four score convolutions float (besides ONNX Runtime's default float stem)
    assert tails["float"] == ({"SOFTMAX": "float32", "CONCATENATION": "float32"}, 4, [], set(score_convs))
    assert tails["int8"] == ({"SOFTMAX": "int8", "CONCATENATION": "int8"}, 0, ["QuantizeLinear"], set())


def test_keep_float_auto_grows_until_it_gives_up_and_unknown_names_or_mnn_are_clear_errors(slim_hub, tmp_path,
                                                                                          monkeypatch):
    from converters.mnn import main as mnn_main
    from converters.ncnn import main as ncnn_main
    from converters.verify import Verifier

    hub, convs = slim_hub
    # the real verification with an agreement no INT8 file reaches (the CLI refuses one above 1): auto keeps 1, 2,
    # 4, 8, then 16 layers float, and still rejects it
    check = Verifier.check
    monkeypatch.setattr(Verifier, "check", lambda self, backend, precision, min_agreement, *rest:
                        check(self, backend, precision, 1.01 if "int8" in precision else min_agreement, *rest))
    assert convert(ncnn_main, hub, tmp_path, "--keep-float", "auto") == 1
    monkeypatch.undo()
    assert kept_in(tmp_path / "ncnn-int8") == convs[:16]
    with pytest.raises(ValueError, match="not Conv nodes of the hub ONNX"):
        convert(ncnn_main, hub, tmp_path / "x", "--keep-float", "Conv_999")
    with pytest.raises(ValueError, match="int8w"):
        convert(mnn_main, hub, tmp_path / "m", "--keep-float", convs[0], "--mnn-full-int8")
    convert(mnn_main, hub, tmp_path / "stem", "--keep-float", "stem", "--mnn-full-int8")  # MNN warns, keeps none
    assert kept_in(tmp_path / "stem" / "mnn-int8") == []


def test_the_stem_is_the_convolutions_at_full_and_half_resolution(slim_hub):
    from converters.keep_float import stem_convs

    hub, convs = slim_hub
    assert stem_convs(onnx.load(str(hub))) == tuple(convs[:4])  # 3x3 s2 at 320, then dw, pw, dw s2 at 160
