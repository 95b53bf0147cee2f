"""Third-party artifacts get a checked model.json in a copy, never beside the original in ../shared."""
import pytest

from converters.describe import main as describe_main
from models.spec import ModelSpec
from runtimes import load_backend
from tests.conftest import SHARED, requires_shared

REFERENCE = SHARED / "reference"


@requires_shared
@pytest.mark.parametrize("artifact,args,shape", [
    ("ultraface_mnn/RFB-320.mnn", ["--family", "ultraface", "--hw", "240,320"], (1, 3, 240, 320)),
    ("ultraface_ncnn/slim_320.param", ["--family", "ultraface", "--hw", "240,320"], (1, 3, 240, 320)),
    ("scrfd_tflite_seed/scrfd500m_480x640_float32.tflite",
     ["--family", "scrfd", "--hw", "480,640", "--layout", "NHWC"], (1, 480, 640, 3)),
])
def test_reference_artifacts_are_described_in_a_copy(tmp_path, artifact, args, shape):
    import numpy as np

    before = sorted(p.name for p in (REFERENCE / artifact).parent.iterdir())
    assert describe_main([str(REFERENCE / artifact), *args, "--out", str(tmp_path / "copy")]) == 0
    assert sorted(p.name for p in (REFERENCE / artifact).parent.iterdir()) == before  # nothing written there
    spec = ModelSpec.load(tmp_path / "copy" / "model.json")
    assert spec.provenance.source_sha256
    outputs = load_backend(tmp_path / "copy")(np.zeros(shape, np.float32))
    assert [o.shape for o in outputs] == list(spec.output_shapes())


@requires_shared
def test_a_wrong_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="do not match scrfd|not SCRFD"):
        describe_main([str(REFERENCE / "ultraface_mnn" / "RFB-320.mnn"), "--family", "scrfd", "--hw", "240,320",
                       "--out", str(tmp_path / "copy")])
    assert not (tmp_path / "copy").exists()


@requires_shared
def test_a_model_the_runtime_cannot_run_is_refused_clearly(tmp_path):
    # the Ultra-Light project's old MNN INT8 file uses EltwiseInt8, which MNN 3.x no longer has
    with pytest.raises(ValueError, match="MNN could not run this model"):
        describe_main([str(REFERENCE / "ultraface_mnn" / "RFB-320-quant-KL-5792.mnn"), "--family", "ultraface",
                       "--hw", "240,320", "--out", str(tmp_path / "copy")])


@requires_shared
def test_published_ncnn_scrfd_with_raw_head_maps_maps_onto_the_official_onnx_outputs(tmp_path):
    import cv2
    import numpy as np
    import onnxruntime as ort

    from runtimes.detection.preprocess import prepare
    from tests.conftest import SCRFD_ONNX, VAL_IMAGES

    param = REFERENCE / "scrfd_ncnn" / "ncnn_scrfd_500m_kps-opt2.param"
    assert describe_main([str(param), "--family", "scrfd", "--hw", "640,640", "--out", str(tmp_path / "copy")]) == 0
    backend = load_backend(tmp_path / "copy")
    assert backend.spec.has_landmarks and backend.spec.anchors_per_location == 2
    blob, _ = prepare(cv2.imread(str(VAL_IMAGES / "0--Parade" / "0_Parade_Parade_0_611.jpg")), backend.spec)
    ours = backend(blob)
    theirs = ort.InferenceSession(str(SCRFD_ONNX)).run(None, {"input.1": blob})
    theirs = [theirs[kind * 3 + stride] for stride in range(3) for kind in range(3)]  # by kind → by stride
    for name, a, b in zip(backend.spec.output_names, ours, theirs):
        b = np.asarray(b).reshape(a.shape)
        # the published file stores fp16 weights: distances differ by < 0.1 stride, scores by < 0.01
        assert np.abs(a - b).max() < (0.01 if name.startswith("score") else 0.1), name
        assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.999, name
