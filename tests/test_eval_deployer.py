"""What a deployer reads beside AP: the operating point, degradations, face sizes, the rough IoU and the gallery."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval.__main__ import main as eval_main
from eval.breakdown import SIZE_BUCKETS, by_size, in_bucket, operating_point
from eval.degrade import DARK_NOISE, DEGRADATIONS, KINDS, motion_kernel, parse_degradations
from eval.gallery import COLUMN_WIDTH, classify, write_gallery
from eval.groundtruth import ImageTruth, load_ground_truth
from eval.inference import predict_images
from runtimes.detection.detector import Detector
from tests.conftest import SAMPLE_VERIFICATION, SUBSET, VAL_IMAGES, WIDER, requires_shared


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


A, B, C, D = [10, 10, 20, 20], [100, 10, 20, 20], [200, 10, 20, 20], [300, 10, 20, 20]


def truth(faces, counted=None, name="img"):
    boxes = np.array(faces, np.float64).reshape(-1, 4)
    mask = np.ones(len(boxes), bool) if counted is None else np.array(counted)
    return ImageTruth("0--Event", name, boxes, {s: mask for s in ("easy", "medium", "hard")})


def test_operating_point_counts_as_the_protocol_on_a_hand_made_set():
    # faces A, B, D count, C does not; detections: A 0.9 (hit), A again 0.8 (duplicate: FP), C 0.7 (ignored),
    # nowhere 0.6 (FP), D 0.35 (hit), B 0.3 (hit)
    image = truth([A, B, C, D], counted=[True, True, False, True])
    nowhere = [500, 500, 20, 20]
    pred = np.array([[*A, 0.9], [*A, 0.8], [*C, 0.7], [*nowhere, 0.6], [*D, 0.35], [*B, 0.3]])
    point = operating_point({image.key: pred}, [image], 0.5, 0.5)["easy"]
    at = point["at_score"]
    assert (at["true_positives"], at["false_positives"], at["faces"]) == (1, 2, 3)
    assert at["precision"] == pytest.approx(1 / 3) and at["recall"] == pytest.approx(1 / 3)
    assert at["f1"] == pytest.approx(1 / 3)
    best = point["best_f1"]  # at 0.3: 3 hits, 2 false positives: P 3/5, R 1, F1 0.75
    assert best["score"] == pytest.approx(0.3) and best["f1"] == pytest.approx(0.75)
    assert (best["true_positives"], best["false_positives"]) == (3, 2)


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_each_degradation_is_deterministic_per_image_and_keeps_the_shape(name):
    image = cv2.imread(str(next(iter(sorted(SAMPLE_VERIFICATION.glob("*.jpg"))))))
    degrade = DEGRADATIONS[name]
    first, again = degrade(image, "0--Parade/a"), degrade(image, "0--Parade/a")
    assert first.shape == image.shape and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, image)


def grey(value=128, shape=(200, 200, 3)):
    return np.full(shape, value, np.uint8)


@pytest.mark.parametrize("name", ["noise-sigma10", "noise-sigma25"])
def test_noise_has_the_stated_sigma_and_differs_between_images(name):
    degrade = DEGRADATIONS[name]
    noisy = degrade(grey(), "x/1").astype(np.float64) - 128
    assert noisy.std() == pytest.approx(degrade.level, rel=0.03) and abs(noisy.mean()) < 0.3
    assert not np.array_equal(degrade(grey(), "x/1"), degrade(grey(), "x/2"))


@pytest.mark.parametrize("name", ["dark-gamma2", "dark-gamma3"])
def test_low_light_applies_the_gamma_then_sensor_noise(name):
    degrade = DEGRADATIONS[name]
    out = degrade(grey(200), "x/1").astype(np.float64)
    assert out.mean() == pytest.approx(255 * (200 / 255) ** degrade.level, abs=0.3)
    assert out.std() == pytest.approx(DARK_NOISE[degrade.level], rel=0.05)


def test_blur_jpeg_and_downscale_are_the_stated_operations():
    image = cv2.imread(str(sorted(SAMPLE_VERIFICATION.glob("*.jpg"))[0]))
    assert np.array_equal(DEGRADATIONS["blur-sigma3"](image, "k"), cv2.GaussianBlur(image, (0, 0), 3))
    for quality in (30, 10):
        expected = cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], 1)
        assert np.array_equal(DEGRADATIONS[f"jpeg-q{quality}"](image, "k"), expected)
    error = {q: np.abs(DEGRADATIONS[f"jpeg-q{q}"](image, "k").astype(int) - image).mean() for q in (30, 10)}
    assert error[10] > error[30] > 0
    half = DEGRADATIONS["downscale-x0.5"](image, "k")
    h, w = image.shape[:2]
    small = cv2.resize(image, (round(w / 2), round(h / 2)), interpolation=cv2.INTER_AREA)
    assert np.array_equal(half, cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize("length", [9, 15])
def test_motion_blur_spreads_a_point_along_a_line_of_the_stated_length(length):
    kernel = motion_kernel(length, 0)
    assert kernel.sum() == pytest.approx(1) and np.count_nonzero(kernel.sum(axis=0)) == length
    dot = np.zeros((61, 61, 3), np.uint8)
    dot[30, 30] = 255
    spread = DEGRADATIONS[f"motion-{length}px"](dot, "k")[..., 0] > 0
    ys, xs = np.nonzero(spread)
    assert np.hypot(xs.max() - xs.min(), ys.max() - ys.min()) == pytest.approx(length - 1, abs=2.5)


def test_degradations_parse_kinds_names_and_all():
    assert len(parse_degradations("all")) == len(DEGRADATIONS) and len(KINDS) == 6
    assert [d.name for d in parse_degradations("blur,jpeg-q10,blur-sigma3")] == ["blur-sigma1.5", "blur-sigma3",
                                                                                 "jpeg-q10"]
    with pytest.raises(ValueError, match="unknown 'fog'"):
        parse_degradations("fog")


def test_size_buckets_partition_the_faces():
    heights = np.array([0, 5, 15.99, 16, 31, 32, 64, 127.5, 128, 900])
    membership = np.stack([in_bucket(heights, b) for b in SIZE_BUCKETS])
    assert (membership.sum(axis=0) == 1).all()
    image = truth([[0, 0, 10, h] for h in heights])
    sizes = by_size({image.key: np.array([[0, 0, 10, 5, 0.9]])}, [image], 0.5, 0.5)
    assert sum(b["faces"] for b in sizes.values()) == len(heights)
    assert sizes["<16"]["recall"] == pytest.approx(1 / 3) and sizes[">=128"]["recall"] == 0


def test_a_detection_of_one_size_is_no_false_positive_in_another_bucket():
    image = truth([[0, 0, 10, 10]])
    pred = np.array([[0, 0, 10, 10, 0.9], [500, 500, 200, 200, 0.8]])  # the unmatched box is ≥ 128 px
    sizes = by_size({image.key: pred}, [image], 0.5, 0.5)
    assert sizes["<16"]["ap"] == pytest.approx(1.0)


def test_clean_images_give_exactly_the_plain_runs_ap_and_the_report_has_every_part(default_hub, wider_subset,
                                                                                    tmp_path):
    plain, degraded = tmp_path / "plain", tmp_path / "degraded"
    assert eval_main(["--model", str(default_hub), "--data", str(wider_subset), "--out", str(plain)]) == 0
    assert eval_main(["--model", str(default_hub), "--data", str(wider_subset), "--out", str(degraded), "--degrade",
                      "jpeg-q10,dark-gamma3", "--gallery", "2"]) == 0
    base, model = report(plain)["models"][0], report(degraded)["models"][0]
    assert model["ap"] == base["ap"] and base["degradations"] == {}
    assert sorted(model["degradations"]) == ["dark-gamma3", "jpeg-q10"]
    assert model["degradations"]["dark-gamma3"]["hard"] < model["ap"]["hard"]
    assert set(model["operating_point"]) == {"easy", "medium", "hard"} and len(model["by_size"]) == 5
    assert report(degraded)["scoring"] == {"iou_threshold": 0.5, "operating_score": 0.5}
    text = (degraded / "report.md").read_text()
    assert all(h in text for h in ("## Operating point", "## Face sizes", "## Hard conditions", "jpeg-q10"))
    assert (degraded / "degradations.png").stat().st_size > 10_000
    assert len(list((degraded / "gallery").glob("*.png"))) == 2
    # a degradation that changes nothing predicts exactly the plain files
    detector = Detector.from_artifact(default_hub, score_threshold=0.02)
    images = wider_subset / "WIDER_val" / "images"
    predict_images(detector, images, SUBSET, tmp_path / "identity", transform=lambda image, key: image)
    for key in SUBSET:
        assert (tmp_path / "identity" / f"{key}.txt").read_bytes() == \
            (next(plain.glob("*/predictions")) / f"{key}.txt").read_bytes()


def test_degrade_needs_a_model_and_the_operating_score_must_be_kept(default_hub, wider_subset, tmp_path):
    with pytest.raises(ValueError, match="--degrade needs --model"):
        eval_main(["--pred", str(tmp_path), "--data", str(wider_subset), "--degrade", "all", "--out",
                   str(tmp_path / "o")])
    with pytest.raises(ValueError, match="below --score-thr"):
        eval_main(["--model", str(default_hub), "--data", str(wider_subset), "--operating-score", "0.01",
                   "--out", str(tmp_path / "o")])


def test_the_gallery_classifies_and_draws_one_column_per_model(default_hub, wider_subset, tmp_path):
    image = truth([A, B, C], counted=[True, True, False])
    pred = np.array([[*A, 0.9], [*A, 0.8], [*C, 0.7], [500, 500, 20, 20, 0.6], [*B, 0.3]])
    outcome = classify(pred, image, 0.5, 0.5)
    assert (outcome.tp.sum(), outcome.fp.sum(), outcome.missed.tolist()) == (1, 2, [False, True, False])
    out = tmp_path / "out"
    assert eval_main(["--model", str(default_hub), "--data", str(wider_subset), "--out", str(out)]) == 0
    models = [type("M", (), {"label": name, "predictions_dir": next(out.glob("*/predictions"))}) for name in "ab"]
    written = write_gallery(models, load_ground_truth(wider_subset).images, wider_subset / "WIDER_val" / "images",
                            tmp_path / "gallery", 3, 0.5, 0.5)
    assert len(written) == 3
    picture = cv2.imread(str(written[0]))
    assert picture.shape[1] == 2 * COLUMN_WIDTH + 6


@requires_shared
def test_rough_iou_never_lowers_ap_on_real_predictions(default_hub, tmp_path):
    root = tmp_path / "widerface"
    shutil.copytree(WIDER / "ground_truth", root / "ground_truth")
    for path in sorted(VAL_IMAGES.glob("*/*.jpg"))[:40:2]:
        target = root / "WIDER_val" / "images" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    aps = {}
    for iou in ("0.5", "0.3"):
        out = tmp_path / iou
        assert eval_main(["--model", str(default_hub), "--data", str(root), "--out", str(out), "--iou", iou]) == 0
        aps[iou] = json.loads((out / "report.json").read_text())["models"][0]["ap"]
    assert all(aps["0.3"][s] >= aps["0.5"][s] for s in aps["0.5"])
    assert aps["0.3"]["hard"] > aps["0.5"]["hard"]


def test_degraded_shards_merge_to_the_unsharded_result(default_hub, wider_subset, tmp_path):
    common = ["--model", str(default_hub), "--data", str(wider_subset), "--degrade", "noise-sigma25"]
    assert eval_main([*common, "--out", str(tmp_path / "whole")]) == 0
    for i in (1, 2):
        assert eval_main([*common, "--out", str(tmp_path / f"s{i}"), "--shard", f"{i}/2"]) == 0
    assert eval_main(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "--data", str(wider_subset),
                      "--out", str(tmp_path / "merged")]) == 0
    merged, whole = report(tmp_path / "merged")["models"][0], report(tmp_path / "whole")["models"][0]
    assert merged["degradations"] == whole["degradations"] and list(merged["degradations"]) == ["noise-sigma25"]
