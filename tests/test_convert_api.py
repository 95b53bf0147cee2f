"""converters.convert from Python, and the pipeline's orchestration (commit, .rejected, --keep-float auto) through a
backend step of the test's own that copies or breaks the hub: real verification, no converter tool, no ../shared."""
from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from calibration_data.calibration import SAMPLES
from converters import ConvertOptions, convert
from converters.keep_float import AUTO, AUTO_MAX_LAYERS
from converters.pipeline import BackendConverter, Produced, prepare_shared, run_backend

SMALL = dict(hw=(160, 160), calib=SAMPLES / "calibration", verify_images=SAMPLES / "verification")


def test_convert_makes_the_default_models_verified_tflite_int8(tmp_path):
    results = convert(backends=("tflite",), int8=True, out=tmp_path, **SMALL)
    by_name = {r.folder.name: r for r in results}
    assert set(by_name) == {"tflite-fp32", "tflite-fp16", "tflite-int8"}
    assert all(r.report.passed for r in results), [r.report.failures for r in results]
    assert (tmp_path / "tflite-int8" / "model.tflite").is_file() and (tmp_path / "onnx" / "model.onnx").is_file()
    assert by_name["tflite-int8"].report.agreement.reference_matched >= 0.9


def test_convert_refuses_bad_input_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown backends"):
        convert(backends=("tensorrt",), out=tmp_path)
    with pytest.raises(ValueError, match="writes only INT8"):
        convert(backends=("ort",), out=tmp_path)
    with pytest.raises(ValueError, match="needs --family"):
        convert(tmp_path / "x.onnx", out=tmp_path)
    assert not any(tmp_path.iterdir())


def zeroed_convolutions(hub: onnx.ModelProto, path):
    """The hub with every convolution kernel zeroed: it loads and runs, and detects nothing the hub does."""
    broken = onnx.ModelProto.FromString(hub.SerializeToString())
    for tensor in broken.graph.initializer:
        weights = numpy_helper.to_array(tensor)
        if weights.ndim == 4:
            tensor.CopyFrom(numpy_helper.from_array(np.zeros_like(weights), tensor.name))
    onnx.save(broken, str(path))
    return path


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    options = ConvertOptions(int8=True, calib_count=8, out=tmp_path_factory.mktemp("fake"), **SMALL)
    return options, prepare_shared(options)


def fake_backend(calls: list) -> BackendConverter:
    def copy_hub(job):
        shutil.copy(job.hub.path, job.work / "fp32.onnx")
        return {"fp32": Produced([job.work / "fp32.onnx"], 0.0)}

    def break_hub(job, kept):
        calls.append(tuple(kept))
        return Produced([zeroed_convolutions(onnx.load(str(job.hub.path)), job.work / "int8.onnx")], 0.0)

    return BackendConverter("fake", ".onnx", "NCHW", copy_hub, break_hub, tools=())


def test_a_good_artifact_lands_and_a_failing_one_goes_to_rejected(shared_run):
    options, shared = shared_run
    calls = []
    results = {r.precision: r for r in run_backend(fake_backend(calls), options, shared)}
    assert results["fp32"].report.passed and results["fp32"].folder == options.out_dir / "fake-fp32"
    assert (options.out_dir / "fake-fp32" / "verify.json").is_file()
    failed = results["int8"]
    assert not failed.report.passed and failed.folder.name == "fake-int8.rejected"
    assert not (options.out_dir / "fake-int8").exists() and (failed.folder / "verify.json").is_file()


def test_keep_float_auto_doubles_the_float_layers_until_its_limit(shared_run):
    options, shared = shared_run
    from dataclasses import replace

    calls = []
    results = run_backend(fake_backend(calls), replace(options, keep_float=AUTO), shared)
    assert [len(kept) for kept in calls] == [0, 1, 2, 4, 8, 16][:len(calls)]
    assert sum(len(kept) > 0 for kept in calls) >= 1 and len(calls[-1]) <= AUTO_MAX_LAYERS
    assert not results[-1].report.passed and results[-1].folder.name == "fake-int8.rejected"
