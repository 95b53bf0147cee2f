import pytest

from models.families.scrfd import scrfd_spec
from models.families.ultraface import ultraface_spec
from models.spec import ModelSpec, Provenance, check_input_size, parse_hw


def test_model_spec_survives_a_json_round_trip():
    spec = scrfd_spec("scrfd_500m_kps", 480, 640, landmarks=True).with_changes(
        layout="NHWC", provenance=Provenance(source="x.onnx", precision="int8", tool_versions={"onnx": "1.0"}))
    assert ModelSpec.from_json(spec.to_json()) == spec
    ultra = ultraface_spec("ultraface_rfb", 480, 640)
    assert ModelSpec.from_json(ultra.to_json()) == ultra


def test_model_spec_is_frozen():
    spec = scrfd_spec("s", 480, 640, landmarks=False)
    with pytest.raises(AttributeError):
        spec.input_h = 32


def test_model_spec_rejects_unknown_fields_and_values(tmp_path):
    data = scrfd_spec("s", 480, 640, landmarks=False).to_dict()
    with pytest.raises(ValueError, match="unknown ModelSpec fields"):
        ModelSpec.from_dict({**data, "colour": "red"})
    with pytest.raises(ValueError, match="layout"):
        ModelSpec.from_dict({**data, "layout": "NCWH"})
    bad = tmp_path / "model.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not a valid model.json"):
        ModelSpec.load(bad)
    with pytest.raises(FileNotFoundError, match="no model.json"):
        ModelSpec.load(tmp_path / "missing.json")


@pytest.mark.parametrize("h,w,message", [
    (481, 640, "H=481 must be divisible by 32 (try 480 or 512)"),
    (480, 650, "W=650 must be divisible by 32 (try 640 or 672)"),
    (16, 640, "H=16 must be divisible by 32 (try 32)"),
])
def test_input_size_not_divisible_by_32_names_value_and_fix(h, w, message):
    with pytest.raises(ValueError) as err:
        check_input_size(h, w)
    assert str(err.value) == message


def test_parse_hw():
    assert parse_hw("480,640") == (480, 640)
    with pytest.raises(ValueError, match="expects H,W"):
        parse_hw("480")


def test_output_shapes_follow_the_input_size():
    assert scrfd_spec("s", 480, 640, landmarks=True).output_shapes()[:3] == ((9600, 1), (9600, 4), (9600, 10))
    # Ultra-Light at 320x240 has the published 4420 priors (40x30x3 + 20x15x2 + 10x8x2 + 5x4x3)
    assert ultraface_spec("u", 240, 320).output_shapes() == ((4420, 2), (4420, 4))
