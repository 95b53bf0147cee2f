"""The ONNX hub: every backend converts from one fixed, simplified, checked ONNX and its model.json.

Two entries: a registered PyTorch model + weights (exported), or an existing ONNX (fixed to 1×3×H×W).
Either way the result has canonical output names in canonical order and is compared with its source on real images.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import shape_inference, version_converter

from converters.common import add_source_arguments, held_out_images, source_label, step
from converters.options import ConvertOptions
from models.families import family
from models.spec import ModelSpec, Provenance, check_input_size, installed_versions
from runtimes.backends.base import canonical_order
from runtimes.cli import run_cli
from runtimes.detection.preprocess import prepare
from runtimes.files import atomic_output_dir, prepare_output_dir, sha256_file

ONNX_TOOLS = ("onnx", "onnxsim", "onnxruntime", "torch", "facekit")


@dataclass(frozen=True)
class HubModel:
    """The hub artifact: <out>/onnx/model.onnx with its model.json and fix report."""

    path: Path
    spec: ModelSpec


def load_onnx(path: Path) -> onnx.ModelProto:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        return onnx.load(str(path))
    except Exception as err:  # protobuf raises DecodeError, RuntimeError, ...
        raise ValueError(f"{path}: not a readable ONNX model ({err})") from err


def graph_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1 or len(inputs[0].type.tensor_type.shape.dim) != 4:
        raise ValueError(f"expected one 4-D image input, found {[i.name for i in inputs]}")
    return inputs[0]


def opset_of(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def set_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    current = opset_of(model)
    if current == opset:
        return model
    try:
        return version_converter.convert_version(model, opset)
    except Exception as err:
        raise ValueError(f"cannot convert opset {current} to {opset} ({err}); try --opset {current}") from err


def fix_input(model: onnx.ModelProto, h: int, w: int) -> onnx.ModelProto:
    """Fix the input to 1×3×H×W and make stale shapes symbolic so inference and onnxsim recompute them."""
    dims = graph_input(model).type.tensor_type.shape.dim
    if dims[1].HasField("dim_value") and dims[1].dim_value != 3:
        raise ValueError(f"input has {dims[1].dim_value} channels, expected 3")
    for dim, value in zip(dims, (1, 3, h, w)):
        dim.Clear()
        dim.dim_value = value
    for output in model.graph.output:
        for i, dim in enumerate(output.type.tensor_type.shape.dim):
            dim.Clear()
            dim.dim_param = f"{output.name}_{i}"
    del model.graph.value_info[:]
    return model


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise ValueError("onnxsim could not validate the simplified model")
    return simplified


def output_shapes(model: onnx.ModelProto) -> list[tuple[int, ...]]:
    shapes = []
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        if not dims or not all(d.HasField("dim_value") for d in dims):
            raise ValueError(f"output {output.name} has no static shape after fixing the input")
        shapes.append(tuple(d.dim_value for d in dims))
    return shapes


def rename_outputs(model: onnx.ModelProto, spec: ModelSpec) -> onnx.ModelProto:
    """Give the outputs the spec's canonical names, in canonical order (mapping checked by shape)."""
    order = canonical_order(output_shapes(model), spec)
    old = [o.name for o in model.graph.output]
    renames = {old[i]: new for i, new in zip(order, spec.output_names)}
    for node in model.graph.node:
        node.output[:] = [renames.get(n, n) for n in node.output]
        node.input[:] = [renames.get(n, n) for n in node.input]
    outputs = [model.graph.output[i] for i in order]
    for output, new in zip(outputs, spec.output_names):
        output.name = new
    copies = [onnx.ValueInfoProto.FromString(o.SerializeToString()) for o in outputs]
    del model.graph.output[:]
    model.graph.output.extend(copies)
    return model


def fix_onnx(model: onnx.ModelProto, family_name: str, h: int, w: int, opset: int,
             name: str) -> tuple[onnx.ModelProto, ModelSpec]:
    """Fixed 1×3×H×W input, requested opset, inferred shapes, simplified, canonical outputs, checked."""
    check_input_size(h, w)
    input_name = graph_input(model).name
    model = set_opset(fix_input(model, h, w), opset)
    try:
        model = simplify(shape_inference.infer_shapes(model, strict_mode=True))
    except Exception as err:  # onnx raises InferenceError, onnxsim RuntimeError; both mean the same to a user
        raise ValueError(f"the model does not take a fixed 1x3x{h}x{w} input ({str(err).splitlines()[0]}); "
                         "is --hw a size this model supports?") from err
    spec = family(family_name).spec_from_outputs(name, h, w, output_shapes(model)).with_changes(input_name=input_name)
    model = rename_outputs(constants_to_initializers(model), spec)
    onnx.checker.check_model(model, full_check=True)
    return model, spec


def constants_to_initializers(model: onnx.ModelProto) -> onnx.ModelProto:
    """Tensor-valued Constant nodes become initializers. The simplifier keeps some (the scale and bias that
    PyTorch's GroupNorm export feeds InstanceNormalization), and onnx2tf fails on a Constant there."""
    constants = [n for n in model.graph.node
                 if n.op_type == "Constant" and len(n.attribute) == 1 and n.attribute[0].name == "value"]
    for node in constants:
        tensor = onnx.TensorProto()
        tensor.CopyFrom(node.attribute[0].t)
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
        model.graph.node.remove(node)
    return model


def export_pytorch(name: str, weights: Path, h: int, w: int, opset: int):
    """Export a registered model with its weights at 1×3×H×W → (ONNX model, the torch module it came from).

    Uses the TorchScript exporter: the dynamo one ignores opsets below 18.
    """
    import io
    import warnings

    import torch

    from models.registry import build, entry

    model = build(name, weights)
    spec = entry(name).spec(h, w)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter is chosen on purpose, see above
        torch.onnx.export(model, torch.zeros(1, 3, h, w), buffer, dynamo=False, opset_version=opset,
                          input_names=[spec.input_name], output_names=list(spec.output_names))
    return onnx.load_from_string(buffer.getvalue()), model


def source_runner(options: ConvertOptions, torch_model=None):
    """A function image-blob → raw outputs that runs the unconverted source, for the comparison in the report."""
    if torch_model is not None:
        import torch

        def run_torch(blob):
            with torch.no_grad():
                return [t.numpy() for t in torch_model(torch.from_numpy(blob))]
        return run_torch
    import onnxruntime as ort

    quiet = ort.SessionOptions()
    quiet.log_severity_level = 3  # sources often carry stale output shapes; onnxruntime warns on each run
    session = ort.InferenceSession(str(options.source.onnx), quiet, providers=["CPUExecutionProvider"])
    dims = session.get_inputs()[0].shape
    if any(isinstance(d, int) and d != v for d, v in zip(dims[2:], options.hw)):
        return None  # the source only runs at its own fixed size
    return lambda blob: session.run(None, {session.get_inputs()[0].name: blob})


def compare_with_source(fixed: onnx.ModelProto, spec: ModelSpec, runner, images: list[Path]) -> dict:
    """Max abs diff per canonical output between the source and the fixed ONNX, on real images."""
    import onnxruntime as ort

    from calibration_data.images import read_images
    from runtimes.backends.base import canonical_outputs

    session = ort.InferenceSession(fixed.SerializeToString(), providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(spec.output_names, 0.0)
    for image in read_images(images):
        blob, _ = prepare(image, spec)
        ours = canonical_outputs(session.run(None, {spec.input_name: blob}), spec)
        theirs = canonical_outputs(runner(blob), spec)
        for name, a, b in zip(spec.output_names, ours, theirs):
            worst[name] = max(worst[name], float(np.abs(a - b).max()))
    return {"images": [p.name for p in images], "max_abs_diff": worst}


def build_hub(options: ConvertOptions, held_out: list[Path] | None = None) -> HubModel:
    """Make <out>/onnx/{model.onnx, model.json, report.json} from the options' (resolved) source, compared with it
    on `held_out` images (default: the options' verification images); the output folder is checked first."""
    source = options.source.resolved()
    prepare_output_dir(options.out_dir)
    images = held_out if held_out is not None else held_out_images(options.verify_images, options.verify_count)
    h, w = options.hw
    torch_model = None
    if source.model:
        with step(f"export {source.model} from PyTorch at 1x3x{h}x{w}, opset {options.opset}"):
            model, torch_model = export_pytorch(source.model, source.weights, h, w, options.opset)
        from models.registry import entry  # torch: only on this path

        family_name, origin = entry(source.model).family, source.weights
    else:
        model, family_name, origin = load_onnx(source.onnx), source.family, source.onnx
    opset_in = opset_of(model)
    with step(f"fix input to 1x3x{h}x{w}, opset {options.opset}, simplify, check"):
        model, spec = fix_onnx(model, family_name, h, w, options.opset, source.label)
    spec = spec.with_changes(provenance=Provenance(
        source=source_label(origin), source_sha256=sha256_file(origin), converter="converters.onnx",
        precision="fp32", tool_versions=installed_versions(*ONNX_TOOLS)))
    runner = source_runner(replace(options, source=source), torch_model)
    with step(f"compare with the source on {len(images)} real images"):
        comparison = (compare_with_source(model, spec, runner, images) if runner else
                      {"skipped": f"the source ONNX has a fixed input size other than {h}x{w}, so it cannot run at it"})
    final = options.out_dir / "onnx"
    with atomic_output_dir(final) as tmp:
        onnx.save(model, str(tmp / "model.onnx"))
        spec.save(tmp / "model.json")
        report = {"source": source_label(origin), "opset_in": opset_in,
                  "opset": options.opset, "input": [1, 3, h, w], "outputs": list(spec.output_names),
                  "source_comparison": comparison}
        (tmp / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return HubModel(final / "model.onnx", spec)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m converters.onnx", description=(
        "Make the ONNX hub model every backend converts from: fixed 1x3xHxW input, chosen opset, simplified, "
        "checked, outputs in canonical order, compared with its source on real images. "
        "Writes <out>/onnx/model.onnx, model.json and report.json."))
    add_source_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    hub = build_hub(ConvertOptions.from_args(parser().parse_args(argv)))
    report = json.loads((hub.path.parent / "report.json").read_text())
    print(f"wrote {hub.path} ({hub.path.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps(report["source_comparison"].get("max_abs_diff", report["source_comparison"]), indent=2))
    return 0


if __name__ == "__main__":
    run_cli(main)
