"""Compression in train_light: fake quantization as the backends round, structured pruning, distillation, QAT."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from models import build
from models.default import DEFAULT_MODEL
from models.registry import entry
from tests.conftest import SCRFD_ONNX, ULTRAFACE, requires_shared
from train_light.distill import SCORE_WEIGHT, Teacher, scrfd_distill, ultraface_distill
from train_light.pruning import channel_groups, importance, kept_count, prune
from train_light.qat import SCHEMES, fake_quantize, fake_quantize_weight, prepare_qat

SLIM = DEFAULT_MODEL.weights
DEFAULT_MODEL_SPEC = entry(DEFAULT_MODEL.model).spec(480, 640)


def grid_probe(scale: float, zero_point: int) -> np.ndarray:
    """Every int8 level, the ties halfway between them, values beyond both ends and random ones."""
    k = np.arange(-140, 141, dtype=np.float64) - zero_point
    ties = np.concatenate([k * scale, (k + 0.5) * scale, (k - 0.5) * scale])
    return np.concatenate([ties, np.random.default_rng(0).uniform(-1.3, 1.3, 999)]).astype(np.float32)


def levels(x: np.ndarray, scale: float, zero_point: int, scheme: str) -> np.ndarray:
    """The int8 codes our fake quantization gives x on this grid."""
    y = fake_quantize(torch.from_numpy(x), torch.tensor(scale), torch.tensor(float(zero_point)), -128, 127,
                      SCHEMES[scheme])
    return np.round(y.numpy() / scale + zero_point)


def test_fake_quantization_rounds_as_tflite_quantize_op():
    """The int8 tensor LiteRT's QUANTIZE writes for the shipped INT8 model's input, against ours on its grid."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(str(DEFAULT_MODEL.artifact("tflite-int8") / "model.tflite"),
                              experimental_preserve_all_tensors=True,
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    quantize = interpreter._get_ops_details()[0]
    assert quantize["op_name"] == "QUANTIZE"
    code = next(t for t in interpreter.get_tensor_details() if t["index"] == quantize["outputs"][0])
    scale, zero_point = code["quantization"]
    given = interpreter.get_input_details()[0]
    x = np.resize(grid_probe(scale, zero_point), given["shape"]).astype(np.float32)
    interpreter.set_tensor(given["index"], x)
    interpreter.invoke()
    np.testing.assert_array_equal(levels(x, scale, zero_point, "tflite"), interpreter.get_tensor(code["index"]))


def test_fake_quantization_rounds_as_onnxruntime_quantize_linear():
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    low, high = torch.tensor(-0.7), torch.tensor(1.9)
    scale, zero_point, _, _ = SCHEMES["onnxruntime"].activation_grid(low, high)
    scale, zero_point = float(scale), int(zero_point)
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
        [helper.make_tensor_value_info("q", TensorProto.INT8, [None])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [scale]), helper.make_tensor("z", TensorProto.INT8, [],
                                                                                     [zero_point])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = grid_probe(scale, zero_point)
    np.testing.assert_array_equal(levels(x, scale, zero_point, "onnxruntime"), session.run(None, {"x": x})[0])
    onnx.checker.check_model(model)


def test_asymmetric_grid_spans_the_observed_range_and_holds_zero_exactly():
    scale, zero_point, qmin, qmax = SCHEMES["tflite"].activation_grid(torch.tensor(0.5), torch.tensor(6.0))
    assert math.isclose(float(scale), 6.0 / 255, rel_tol=1e-6) and int(zero_point) == -128  # ReLU output: [0, 6]
    x = torch.tensor([0.0, 6.0, 7.0, -1.0])
    assert fake_quantize(x, scale, zero_point, qmin, qmax, SCHEMES["tflite"]).tolist() == pytest.approx(
        [0.0, 6.0, 6.0, 0.0], abs=1e-6)


def test_ncnn_scheme_uses_the_scales_the_ncnn_calibration_writes():
    """ncnn stores 127 / max|x| per tensor (activations) and per output channel (weights): our steps' inverse."""
    scale, zero_point, qmin, qmax = SCHEMES["ncnn"].activation_grid(torch.tensor(-3.0), torch.tensor(1.27))
    assert math.isclose(1 / float(scale), 127 / 3.0, rel_tol=1e-6) and (int(zero_point), qmin, qmax) == (0, -127,
                                                                                                          127)
    weight = torch.tensor([[[[0.5]], [[-1.0]]], [[[0.02]], [[0.004]]]])
    quantized = fake_quantize_weight(weight, SCHEMES["ncnn"])
    assert quantized[0].flatten().tolist() == pytest.approx([64 / 127, -1.0])  # 0.5 · 127 = 63.5 → 64 (away)
    assert quantized[1].flatten().tolist() == pytest.approx([0.02, 25 * 0.02 / 127])  # its own scale: 25.4 → 25


def test_fake_quantization_passes_gradients_only_inside_the_range():
    x = torch.tensor([-2.0, -0.3, 0.4, 2.0], requires_grad=True)
    fake_quantize(x, torch.tensor(1 / 127), torch.zeros(()), -127, 127, SCHEMES["ncnn"]).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_qat_folds_batchnorm_without_changing_the_function_or_the_checkpoint_layout():
    model = build("ultraface_slim", SLIM)
    x = torch.randn(1, 3, 240, 320)
    with torch.no_grad():
        before = model(x)
    keys = model.state_dict().keys()
    prepare_qat(model, "tflite")
    model.eval()
    with torch.no_grad():
        after = model(x)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(before, after))
    assert model.state_dict().keys() == keys  # a QAT checkpoint is an ordinary one: the converters take it
    model.train()
    with torch.no_grad():
        simulated = model(x)
    assert 1e-4 < (simulated[0] - before[0]).abs().max() < 0.5  # int8 noise, not garbage


def zero_pruned_inputs(model: torch.nn.Module, ratio: float) -> None:
    """What `prune` removes, silenced instead: the consumers' weights on the channels it would drop, in place."""
    modules = dict(model.named_modules())
    for group in channel_groups(model):
        dropped = torch.ones(group.channels, dtype=torch.bool)
        dropped[torch.topk(importance(model, group), kept_count(group.channels, ratio)).indices] = False
        with torch.no_grad():
            for name in group.consumers:
                modules[name].weight[:, dropped] = 0


@pytest.mark.parametrize("name, weights", [("ultraface_slim", SLIM), ("scrfd_500m_kps", SCRFD_ONNX)])
def test_pruned_model_computes_what_the_unpruned_one_does_with_the_pruned_channels_silenced(name, weights):
    if not weights.is_file():
        pytest.skip(f"{weights} not found")
    model = build(name, weights)
    pruned, silenced = copy.deepcopy(model), copy.deepcopy(model)
    plan = prune(pruned, 0.25)
    zero_pruned_inputs(silenced, 0.25)
    x = torch.randn(1, 3, 320, 320)
    with torch.no_grad():
        assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(pruned(x), silenced(x)))
        assert not all(torch.allclose(a, b, atol=1e-4) for a, b in zip(pruned(x), model(x)))
    assert plan and all(kept % 8 == 0 and kept < before for before, kept in plan.values())
    assert sum(p.numel() for p in pruned.parameters()) < 0.7 * sum(p.numel() for p in model.parameters())


def test_pruning_leaves_channels_that_meet_in_an_add_or_reach_an_output_whole():
    groups = {g.producer for g in channel_groups(build("scrfd_500m_kps"))}
    assert not any(name.startswith("neck.lateral_convs") for name in groups)  # summed in the top-down path
    assert not any(name.endswith((".cls", ".reg", ".kps")) for name in groups)  # the outputs
    assert "heads.0.convs.1.3" in groups  # read by all three predictors at once: pruned for all of them


def test_pruned_weights_load_by_name_and_convert_with_every_converter(tmp_path):
    from converters import convert

    model = build("ultraface_slim", SLIM)
    prune(model, 0.25)
    weights = tmp_path / "pruned.pth"
    torch.save({"model": model.state_dict()}, weights)
    rebuilt = build("ultraface_slim", weights)
    x = torch.randn(1, 3, 160, 160)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(model.eval()(x), rebuilt(x)))
    results = convert("ultraface_slim", weights=weights, hw=(320, 320), backends=("tflite", "ncnn", "mnn", "ort"),
                      int8=True, out=tmp_path / "out", calib_count=20, verify_count=4)
    kinds = {r.folder.name.removesuffix(".rejected"): r.report for r in results}
    assert set(kinds) >= {"tflite-fp32", "tflite-int8", "ncnn-fp32", "ncnn-int8", "mnn-fp32", "ort-int8"}
    assert all(report.passed for kind, report in kinds.items() if "int8" not in kind), kinds
    # un-tuned, the pruned model finds no face for INT8's detection agreement to be measured on: its outputs
    # must still follow the ONNX's
    assert all(min(o.cosine for o in report.outputs) > 0.98 for kind, report in kinds.items() if "int8" in kind)


def test_distillation_losses_on_a_hand_made_case():
    spec = DEFAULT_MODEL_SPEC
    teacher = [torch.tensor([[[0.2, 0.8], [0.9, 0.1]]]), torch.tensor([[[1.0, 0.0, 0.0, 0.0], [5.0, 5.0, 5.0, 5.0]]])]
    student = (torch.zeros(1, 2, 2), torch.zeros(1, 2, 4))  # probabilities 0.5 / 0.5 on both priors
    losses = ultraface_distill(student, teacher, spec)
    kl = [0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5), 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)]
    assert float(losses["kd_cls"]) == pytest.approx(SCORE_WEIGHT * sum(kl) / 2, rel=1e-5)
    assert float(losses["kd_box"]) == pytest.approx(1.0 / 2)  # only the confident prior's box, |1 − 0|, over 1 + 1
    same = ultraface_distill((torch.log(teacher[0]), teacher[1]), teacher, spec)
    assert float(same["kd_cls"]) == pytest.approx(0, abs=1e-6) and float(same["kd_box"]) == 0


def test_scrfd_distillation_treats_the_sigmoid_score_as_two_class_soft_targets():
    from models.families.scrfd import scrfd_spec

    spec = scrfd_spec("scrfd_500m", 32, 32, landmarks=False)
    assert [shape[0] for shape in spec.output_shapes()] == [32, 32, 8, 8, 2, 2]  # the order the teacher returns
    logits = [torch.full((1, n, 1), 0.3) for n in (32, 8, 2)]
    distances = [torch.zeros(1, n, 4) for n in (32, 8, 2)]
    scores = [torch.sigmoid(t) for t in logits]
    teacher = [t for pair in zip(scores, distances) for t in pair]  # canonical: stride after stride
    losses = scrfd_distill([[c, d] for c, d in zip(logits, distances)], teacher, spec)
    assert float(losses["kd_cls"]) == pytest.approx(0, abs=1e-6) and float(losses["kd_box"]) == 0
    teacher = [t for s, d in zip(scores, distances) for t in (torch.full_like(s, 0.9), d + 1)]
    losses = scrfd_distill([[c, d] for c, d in zip(logits, distances)], teacher, spec)
    p = 1 / (1 + math.exp(-0.3))
    kl = 0.9 * math.log(0.9 / p) + 0.1 * math.log(0.1 / (1 - p))
    assert float(losses["kd_cls"]) == pytest.approx(SCORE_WEIGHT * kl, rel=1e-4)
    assert float(losses["kd_box"]) == pytest.approx(4 * 42 / 43)  # every prior confident: 4 distances each, /(42+1)


def test_a_teacher_with_other_priors_is_refused_with_the_command_that_makes_one():
    student = DEFAULT_MODEL_SPEC.with_changes(input_h=256, input_w=320)
    with pytest.raises(ValueError, match=r"needs the student's family and priors.*--hw 256,320"):
        Teacher(DEFAULT_MODEL.artifact("onnx"), student)
    recipe_size = DEFAULT_MODEL_SPEC.with_changes(input_h=240, input_w=320)  # Ultra-Light's crops: not convertible
    with pytest.raises(ValueError, match=r"train with --size 256,320 .* convert the teacher with --hw 256,320"):
        Teacher(DEFAULT_MODEL.artifact("onnx"), recipe_size)


@requires_shared
def test_teacher_outputs_are_the_artifacts_own_on_the_training_batch(tmp_path):
    from converters.onnx import main as onnx_main

    assert onnx_main(["--model", "ultraface_rfb", "--weights", str(ULTRAFACE / "version-RFB-640.pth"), "--hw",
                      "160,160", "--out", str(tmp_path)]) == 0
    spec = entry("ultraface_slim").spec(160, 160)
    teacher = Teacher(tmp_path / "onnx", spec)
    images = torch.randn(2, 3, 160, 160)
    scores, boxes = teacher(images)
    with torch.no_grad():
        expected = build("ultraface_rfb", ULTRAFACE / "version-RFB-640.pth")(images)
    assert scores.shape == (2, spec.output_shapes()[0][0], 2)
    assert torch.allclose(scores, expected[0], atol=1e-4) and torch.allclose(boxes, expected[1], atol=1e-3)




@requires_shared
def test_a_model_distilled_from_its_own_artifact_has_no_distillation_loss(tmp_path):
    """SCRFD's raw outputs (per stride) against its hub's canonical outputs through the real Teacher path."""
    from converters.onnx import main as onnx_main
    from train_light.distill import distill_loss

    assert onnx_main(["--onnx", str(SCRFD_ONNX), "--family", "scrfd", "--hw", "160,160", "--out", str(tmp_path)]) == 0
    spec = entry("scrfd_500m_kps").spec(160, 160)
    images = torch.rand(2, 3, 160, 160) * 2 - 1
    with torch.no_grad():
        losses = distill_loss(build("scrfd_500m_kps", SCRFD_ONNX).raw_outputs(images), Teacher(tmp_path / "onnx",
                                                                                             spec)(images), spec)
    assert float(losses["kd_cls"]) < 1e-4 and float(losses["kd_box"]) < 1e-3, losses


def test_prune_refuses_an_earlier_runs_folder_before_writing_anything(tmp_path):
    from train_light.prune import main as prune_main

    (tmp_path / "last.pth").write_bytes(b"an earlier run")
    (tmp_path / "pruned.pth").write_bytes(b"its pruned model")
    with pytest.raises(ValueError, match="an earlier run's checkpoint is there"):
        prune_main(["--model", "ultraface_slim", "--weights", str(SLIM), "--ratio", "0.25", "--data", str(tmp_path),
                    "--epochs", "1", "--out", str(tmp_path)])
    assert (tmp_path / "pruned.pth").read_bytes() == b"its pruned model"


@pytest.mark.parametrize("extra, message", [(["--ratio", "1"], "argument --ratio: expected a fraction from 0 to 0.95"),
                                            (["--ratio", "0.25", "--init", "x.pth"], "prune starts from --weights")])
def test_prune_rejects_a_whole_ratio_and_init_in_the_parser(tmp_path, extra, message, capsys):
    from train_light.prune import main as prune_main

    with pytest.raises(SystemExit) as stop:
        prune_main(["--model", "ultraface_slim", "--weights", str(SLIM), "--data", str(tmp_path), "--epochs", "1",
                    "--out", str(tmp_path / "run"), *extra])
    assert stop.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
