"""PyTorch definitions: the published Ultra-Light weights load strictly and reproduce the published ONNX."""
import numpy as np
import onnxruntime as ort
import pytest
import torch

import models
from models.registry import MODELS, entry
from tests.conftest import ULTRAFACE, requires_shared


@requires_shared
@pytest.mark.parametrize("name,published", [("ultraface_slim", "version-slim-320"),
                                            ("ultraface_rfb", "version-RFB-320")])
def test_ultraface_published_weights_reproduce_published_onnx(name, published):
    model = models.build(name, ULTRAFACE / f"{published}.pth")
    x = torch.randn(1, 3, 240, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = [t.numpy() for t in model(x)]
    session = ort.InferenceSession(str(ULTRAFACE / f"{published}_without_postprocessing.onnx"))
    theirs = session.run(None, {"input": x.numpy()})
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, atol=1e-4)


@requires_shared
def test_640_weights_load_strictly_into_the_same_definition():
    for name, published in (("ultraface_slim", "version-slim-640"), ("ultraface_rfb", "version-RFB-640")):
        models.build(name, ULTRAFACE / f"{published}.pth")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model_matches_its_spec_outputs(name):
    model = models.build(name)
    spec = entry(name).spec(160, 224)
    with torch.no_grad():
        outputs = model(torch.zeros(1, 3, 160, 224))
    assert [tuple(o.shape[1:]) for o in outputs] == list(spec.output_shapes())


def test_unknown_model_lists_the_registered_ones():
    with pytest.raises(ValueError, match="ultraface_rfb"):
        models.build("yolo")


@requires_shared
def test_scrfd_kps_takes_the_official_onnx_weights_and_reproduces_it():
    onnx_path = ULTRAFACE.parent / "scrfd" / "scrfd_500m_kps.onnx"
    model = models.build("scrfd_500m_kps", onnx_path)
    x = torch.randn(1, 3, 480, 640, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = [t.numpy()[0] for t in model(x)]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    theirs = ort.InferenceSession(str(onnx_path), options).run(None, {"input.1": x.numpy()})
    theirs = [theirs[kind * 3 + stride] for stride in range(3) for kind in range(3)]  # by kind → by stride
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@requires_shared
def test_onnx_weights_do_not_fit_groupnorm_or_ultraface_models():
    onnx_path = ULTRAFACE.parent / "scrfd" / "scrfd_500m_kps.onnx"
    with pytest.raises(ValueError, match="GroupNorm"):
        models.build("scrfd_500m", onnx_path)
    with pytest.raises(ValueError, match="only into SCRFD"):
        models.build("ultraface_rfb", onnx_path)


@requires_shared
def test_import_weights_writes_a_pth_that_builds_the_same_model(tmp_path):
    from models.import_weights import main

    onnx_path = ULTRAFACE.parent / "scrfd" / "scrfd_500m_kps.onnx"
    assert main([str(onnx_path), "--out", str(tmp_path / "scrfd.pth")]) == 0
    x = torch.randn(1, 3, 320, 320, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        direct = models.build("scrfd_500m_kps", onnx_path)(x)
        saved = models.build("scrfd_500m_kps", tmp_path / "scrfd.pth")(x)
    for a, b in zip(direct, saved, strict=True):
        assert torch.equal(a, b)
