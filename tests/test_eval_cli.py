"""python -m eval end to end on a small real subset: reports, resume, shards, --pred, and every bad input.

The subset is four committed sample images in the official WIDER layout, their ground truth the shipped default
model's confident detections written as the official .mat files (tests/wider_fixture.py): the protocol itself is
checked against hand-made cases in test_eval_protocol.py, the official files' reading here where ../shared has them.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval.__main__ import main as eval_main
from eval.groundtruth import load_ground_truth
from eval.predictions import read_prediction
from tests.conftest import LISTED_ONLY, SUBSET, VAL_IMAGES, WIDER, requires_shared

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def hub(default_hub):
    return default_hub


@pytest.fixture
def data(wider_subset):
    return wider_subset


def report(out):
    return json.loads((out / "report.json").read_text())


def test_subset_restricts_ground_truth_to_present_images(data):
    truth = load_ground_truth(data)
    present = sorted(p.relative_to(data / "WIDER_val" / "images").with_suffix("").as_posix()
                     for p in (data / "WIDER_val" / "images").glob("*/*.jpg"))
    assert sorted(t.key for t in truth.images) == present == sorted(SUBSET)
    assert truth.listed_images == len(SUBSET) + len(LISTED_ONLY)
    counts = truth.face_counts()
    assert 0 < counts["easy"] < counts["medium"] < counts["hard"] == sum(len(t.boxes) for t in truth.images)


@requires_shared
def test_the_official_ground_truth_is_read_for_the_images_present(tmp_path):
    root = tmp_path / "widerface"
    shutil.copytree(WIDER / "ground_truth", root / "ground_truth")
    key = "0--Parade/0_Parade_Parade_0_611"
    (root / "WIDER_val" / "images" / key).parent.mkdir(parents=True)
    shutil.copy(VAL_IMAGES / f"{key}.jpg", root / "WIDER_val" / "images" / f"{key}.jpg")
    truth = load_ground_truth(root)
    assert [t.key for t in truth.images] == [key] and truth.listed_images == 3226
    assert truth.face_counts()["hard"] < truth.listed_faces["hard"]


def test_eval_writes_reports_predictions_and_resumes(hub, data, tmp_path):
    out = tmp_path / "out"
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out), "--threads", "2"]) == 0
    result = report(out)
    assert result["dataset"]["subset"] and result["dataset"]["images_evaluated"] == len(SUBSET)
    model = result["models"][0]
    assert 0.5 < model["ap"]["easy"] <= 1.0
    assert model["protocol"]["score_threshold"] == 0.02 and model["protocol"]["resize"] == "letterbox"
    predictions = next(out.glob("*/predictions"))
    assert len(list(predictions.glob("*/*.txt"))) == len(SUBSET)
    assert len(read_prediction(predictions / f"{SUBSET[0]}.txt")) > 5
    assert "Subset" in (out / "report.md").read_text() and (out / "pr_curves.png").stat().st_size > 10_000
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out)]) == 0
    assert json.loads((predictions.parent / "run.json").read_text())["reused"] == len(SUBSET)
    assert report(out)["models"][0]["ap"] == model["ap"]
    assert report(out)["models"][0]["timing"]["images"] == len(SUBSET)  # the resumed run keeps the real timing
    # the same folder scored as existing predictions gives the same AP
    assert eval_main(["--pred", str(predictions), "--data", str(data), "--out", str(tmp_path / "pred")]) == 0
    assert report(tmp_path / "pred")["models"][0]["ap"] == model["ap"]


def test_shards_merge_to_the_unsharded_result(hub, data, tmp_path):
    whole = tmp_path / "whole"
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(whole)]) == 0
    for i in (1, 2):
        assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(tmp_path / f"s{i}"),
                          "--shard", f"{i}/2"]) == 0
    assert eval_main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--data", str(data),
                      "--out", str(tmp_path / "merged")]) == 0
    assert report(tmp_path / "merged")["models"][0]["ap"] == report(whole)["models"][0]["ap"]


def test_an_image_that_does_not_decode_is_skipped_and_listed(hub, data, tmp_path):
    (data / "WIDER_val" / "images" / f"{SUBSET[0]}.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out)]) == 0
    assert report(out)["models"][0]["unreadable_images"] == [SUBSET[0]]
    assert SUBSET[0] in (out / "report.md").read_text()


def run_eval(*args):
    return subprocess.run([sys.executable, "-m", "eval", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_missing_data_or_ground_truth_is_a_clear_error(hub, data, tmp_path):
    result = run_eval("--model", str(hub), "--data", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "missing wider_face_val.mat" in result.stderr
    (data / "ground_truth" / "wider_hard_val.mat").unlink()
    result = run_eval("--model", str(hub), "--data", str(data))
    assert result.returncode == 2 and "wider_hard_val.mat" in result.stderr and "Traceback" not in result.stderr


def test_an_artifact_without_model_json_says_how_to_make_one(hub, data, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(hub / "model.onnx", bare / "model.onnx")
    result = run_eval("--model", str(bare / "model.onnx"), "--data", str(data), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no model.json" in result.stderr and "python -m converters.onnx" in result.stderr


@pytest.mark.parametrize("line,message", [("1 2 nan 4 0.9", "NaN"), ("1 2 -3 4 0.9", "negative"),
                                          ("1 2 3 0.9", "exactly 5 numbers")])
def test_bad_predictions_are_rejected_with_the_file_name(data, tmp_path, line, message):
    pred = tmp_path / "pred" / SUBSET[0]
    pred.parent.mkdir(parents=True)
    pred.with_suffix(".txt").write_text(f"{Path(SUBSET[0]).name}\n1\n{line}\n")
    result = run_eval("--pred", str(tmp_path / "pred"), "--data", str(data), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert message in result.stderr and f"{Path(SUBSET[0]).name}.txt" in result.stderr


def test_predictions_made_with_other_settings_are_never_reused(hub, data, tmp_path):
    out = tmp_path / "out"
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out)]) == 0
    first = report(out)["models"][0]["ap"]
    with pytest.raises(ValueError, match=r"other settings \(nms_threshold\); pass --overwrite"):
        eval_main(["--model", str(hub), "--data", str(data), "--out", str(out), "--nms", "0.2"])
    assert report(out)["models"][0]["ap"] == first  # the refused run changed nothing
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out), "--nms", "0.2",
                      "--overwrite"]) == 0
    run = json.loads(next(out.glob("*/run.json")).read_text())
    assert run["reused"] == 0 and run["protocol"]["nms_threshold"] == 0.2
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out), "--nms", "0.2"]) == 0
    assert json.loads(next(out.glob("*/run.json")).read_text())["reused"] == len(SUBSET)


def test_missing_prediction_files_are_an_error_unless_allowed(hub, data, tmp_path, capsys):
    out = tmp_path / "out"
    assert eval_main(["--model", str(hub), "--data", str(data), "--out", str(out)]) == 0
    predictions = next(out.glob("*/predictions"))
    (predictions / f"{SUBSET[1]}.txt").unlink()
    with pytest.raises(ValueError, match=r"1 of 4 evaluated images have no prediction file .*--allow-missing"):
        eval_main(["--pred", str(predictions), "--data", str(data), "--out", str(tmp_path / "pred")])
    assert eval_main(["--pred", str(predictions), "--data", str(data), "--out", str(tmp_path / "pred"),
                      "--allow-missing"]) == 0
    assert "scored as images without detections" in capsys.readouterr().err
    assert report(tmp_path / "pred")["models"][0]["missing_predictions"] == [SUBSET[1]]


def test_a_bad_shard_says_what_it_expects():
    result = run_eval("--model", "x", "--shard", "3/2")
    assert result.returncode == 2 and "i must be between 1 and n" in result.stderr
