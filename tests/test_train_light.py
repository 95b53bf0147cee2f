"""train_light: hand-computed target assignment and losses, the data reader, and short real training runs."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import REPO, TRAIN_IMAGES, WIDER, requires_shared
from train_light.atss import atss_assign, diou_loss, quality_focal_loss
from train_light.data import load_faces, read_wider_gt
from train_light.engine import TrainConfig, load_checkpoint, train
from train_light.ssd import hard_negatives, match_priors


def test_atss_takes_the_candidates_above_mean_plus_std_with_centre_inside():
    # level 0: three 10x10 anchors in a row; level 1: two 20x20 anchors; a 14x12 face centred at (15, 6).
    anchors = np.array([[0, 0, 10, 10], [10, 0, 20, 10], [20, 0, 30, 10],
                        [0, 0, 20, 20], [10, 0, 30, 20]], np.float32)
    face = np.array([[8, 0, 22, 12]], np.float32)
    # top-2 by centre distance: anchors 1 and 0 (0 and 2 tie; the first wins), 3 and 4.
    # IoUs 0.595, 0.081, 0.340, 0.340 → mean 0.349 + std 0.210 = 0.559: only anchor 1 passes.
    assigned = atss_assign(anchors, ((0, 3), (3, 5)), face, topk=2)
    assert assigned.tolist() == [-1, 0, -1, -1, -1]


def test_atss_gives_an_anchor_positive_for_two_faces_to_the_one_it_overlaps_most():
    anchors = np.array([[0, 0, 10, 10], [40, 40, 50, 50]], np.float32)
    faces = np.array([[0, 0, 10, 12], [1, 1, 9, 9], [40, 40, 50, 50]], np.float32)
    assigned = atss_assign(anchors, ((0, 2),), faces, topk=1)
    # anchor 0 is positive for faces 0 (IoU 100/120) and 1 (IoU 64/100): it takes face 0
    assert assigned.tolist() == [0, 2]


def test_quality_focal_loss_matches_hand_computed_values():
    logits = torch.zeros(2)
    quality = torch.tensor([0.8, 0.0])
    # BCE(σ=0.5) = ln 2 for both; scaled by |0.8-0.5|² = 0.09 and |0-0.5|² = 0.25
    expected = torch.tensor([0.09, 0.25]) * np.log(2)
    assert torch.allclose(quality_focal_loss(logits, quality), expected, atol=1e-6)


def test_diou_loss_matches_hand_computed_value():
    pred, target = torch.tensor([[0.0, 0, 2, 2]]), torch.tensor([[1.0, 1, 3, 3]])
    # IoU 1/7; centre distance² 2; enclosing diagonal² 18
    assert diou_loss(pred, target).item() == pytest.approx(1 - 1 / 7 + 2 / 18, abs=1e-6)
    assert diou_loss(target, target).item() == pytest.approx(0.0, abs=1e-6)


def test_ssd_matching_gives_every_face_its_best_prior_even_below_the_threshold():
    priors = np.array([[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5], [0.75, 0.25, 0.1, 0.1]], np.float32)
    faces = np.array([[0.0, 0.0, 0.5, 0.5],       # IoU 1 with prior 0
                      [0.68, 0.18, 0.95, 0.45]], np.float32)  # IoU 0.137 with prior 2, below 0.35
    labels, matched = match_priors(faces, priors)
    assert labels.tolist() == [1, 0, 1]
    assert np.allclose(matched[2], faces[1]) and np.allclose(matched[0], faces[0])


def test_hard_negative_mining_keeps_three_negatives_per_positive_with_the_largest_loss():
    loss = torch.tensor([[0.1, 0.9, 0.2, 0.8, 0.7, 0.3, 0.05, 0.6]])
    labels = torch.tensor([[1, 0, 0, 0, 0, 0, 0, 0]])
    mask = hard_negatives(loss, labels, ratio=3)
    assert mask[0].nonzero().flatten().tolist() == [0, 1, 3, 4]


def test_wider_reader_names_the_malformed_line(tmp_path):
    gt = tmp_path / "gt.txt"
    gt.write_text("0--Parade/a.jpg\n2\n10 10 20 20 0 0 0 0 0 0\n10 x 20 20 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"gt.txt:4: expected numbers"):
        read_wider_gt(gt, tmp_path)
    gt.write_text("0--Parade/a.jpg\nthree\n")
    with pytest.raises(ValueError, match=r"gt.txt:2: expected the face count"):
        read_wider_gt(gt, tmp_path)
    gt.write_text("0--Parade/a.jpg\n3\n10 10 20 20 0 0 0 0 0 0\n")
    with pytest.raises(ValueError, match=r"ends inside the 3 faces"):
        read_wider_gt(gt, tmp_path)


def test_wider_reader_skips_absent_images_and_drops_invalid_faces(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "here.jpg").write_bytes(b"x")
    gt = tmp_path / "gt.txt"
    gt.write_text("e/here.jpg\n3\n10 10 20 20 0 0 0 0 0 0\n5 5 0 9 0 0 0 0 0 0\n1 1 8 8 0 0 0 1 0 0\n"
                  "e/gone.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    faces = read_wider_gt(gt, tmp_path)
    assert [s.path.name for s in faces.samples] == ["here.jpg"]
    assert faces.samples[0].boxes.tolist() == [[10, 10, 30, 30]]
    assert faces.absent_images == ["e/gone.jpg"] and faces.dropped_boxes == 2


def test_boxes_wholly_outside_their_image_are_dropped_and_counted(tmp_path):
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "small.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((80, 100, 3), np.uint8))[1].tobytes())
    gt = tmp_path / "gt.txt"
    gt.write_text("e/small.jpg\n3\n10 10 20 20 0 0 0 0 0 0\n5000 4000 30 30 0 0 0 0 0 0\n90 70 30 30 0 0 0 0 0 0\n")
    faces = read_wider_gt(gt, tmp_path)
    assert faces.samples[0].boxes.tolist() == [[10, 10, 30, 30], [90, 70, 120, 100]]  # partly inside: kept
    assert faces.dropped_boxes == 1 and "1 invalid boxes dropped" in faces.summary()


def tiny_wider(root: Path, count: int) -> Path:
    """A WIDER-layout training set of `count` shared training images (linked, not copied)."""
    faces = load_faces(WIDER)
    lines = []
    for sample in [s for s in faces.samples if 1 <= len(s.boxes) <= 12][:count]:
        name = sample.path.relative_to(TRAIN_IMAGES).as_posix()
        target = root / "WIDER_train" / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(sample.path)
        lines += [name, str(len(sample.boxes))]
        lines += [f"{x0:.0f} {y0:.0f} {x1 - x0:.0f} {y1 - y0:.0f} 0 0 0 0 0 0" for x0, y0, x1, y1 in sample.boxes]
    (root / "wider_face_split").mkdir(parents=True)
    (root / "wider_face_split" / "wider_face_train_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return root


def losses(out: Path) -> list[float]:
    with open(out / "log.csv") as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


@requires_shared
def test_short_ultraface_training_run_lowers_the_loss_and_its_checkpoint_builds(tmp_path):
    from models import build

    data = tiny_wider(tmp_path / "data", 16)
    out = tmp_path / "run"
    train(TrainConfig("ultraface_slim", data, epochs=10, out=out, hw=(160, 160), batch=4, workers=0, lr=0.05))
    history = losses(out)
    assert np.mean(history[-3:]) < 0.9 * history[0], history  # (the face prior init starts it lower than it was)
    assert (out / "training.png").stat().st_size > 1000
    scores, _ = build("ultraface_slim", out / "last.pth")(torch.zeros(1, 3, 160, 160))
    assert scores.shape[-1] == 2
    from converters.onnx import main as convert_onnx  # the checkpoint is a converter source as it is

    assert convert_onnx(["--model", "ultraface_slim", "--weights", str(out / "last.pth"), "--hw", "160,160",
                         "--out", str(tmp_path / "converted")]) == 0
    assert (tmp_path / "converted" / "onnx" / "model.onnx").is_file()


@requires_shared
def test_resumed_training_ends_in_the_state_of_an_uninterrupted_run(tmp_path, monkeypatch):
    import train_light.engine as engine

    data = tiny_wider(tmp_path / "data", 8)
    common = dict(hw=(128, 128), batch=4, workers=0)
    train(TrainConfig("scrfd_500m", data, epochs=2, out=tmp_path / "straight", **common))
    saved = engine.save_checkpoint

    def save_then_die(path, state):  # the run is killed as soon as its first epoch is on disk
        saved(path, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(engine, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig("scrfd_500m", data, epochs=2, out=tmp_path / "split", **common))
    monkeypatch.setattr(engine, "save_checkpoint", saved)
    with pytest.raises(ValueError, match="started for 2 epochs; resume with --epochs 2"):
        train(TrainConfig("scrfd_500m", data, epochs=3, out=tmp_path / "split", resume=True, **common))
    train(TrainConfig("scrfd_500m", data, epochs=2, out=tmp_path / "split", resume=True, **common))
    a, b = (load_checkpoint(tmp_path / run / "last.pth") for run in ("straight", "split"))
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert losses(tmp_path / "straight") == losses(tmp_path / "split")


@requires_shared
def test_ddp_training_with_two_gloo_processes_writes_one_checkpoint(tmp_path):
    data = tiny_wider(tmp_path / "data", 8)
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
               "-m", "train_light", "--model", "ultraface_slim", "--data", str(data), "--epochs", "1",
               "--size", "96,128", "--batch", "2", "--workers", "0", "--out", str(out)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    state = load_checkpoint(out / "last.pth")
    assert state["epoch"] == 1 and len(losses(out)) == 1
    # 8 images, 2 processes, 2 per step: 2 steps each, the same weights on both ranks (rank 0 saved them)
    assert np.isfinite(losses(out)[0])


def test_retinaface_labels_keep_landmarks_and_flip_swaps_left_and_right(tmp_path):
    from train_light.augment import Faces, horizontal_flip
    from train_light.data import read_retinaface_labels

    (tmp_path / "images" / "e").mkdir(parents=True)
    (tmp_path / "images" / "e" / "a.jpg").write_bytes(b"x")
    label = tmp_path / "label.txt"
    label.write_text("# e/a.jpg\n"
                     "10 20 40 50 20 30 0.0 40 30 0.0 30 40 0.0 22 55 0.0 38 55 0.0 0.9\n"
                     "60 20 10 10 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n")
    faces = read_retinaface_labels(label, tmp_path / "images")
    sample = faces.samples[0]
    assert sample.boxes.tolist() == [[10, 20, 50, 70], [60, 20, 70, 30]]
    assert sample.landmarks[0, 0].tolist() == [20, 30] and (sample.landmarks[1] == -1).all()
    image = np.zeros((100, 100, 3), np.uint8)
    _, flipped = horizontal_flip(image, Faces(sample.boxes, sample.landmarks))
    assert flipped.boxes[0].tolist() == [50, 20, 90, 70]
    # the left eye (x 20) becomes the right eye at 100 - 20 = 80, and the right eye (x 40) the left at 60
    assert flipped.landmarks[0, :2, 0].tolist() == [60, 80] and flipped.landmarks[0, 2].tolist() == [70, 40]
    assert (flipped.landmarks[1] == -1).all()


@requires_shared
def test_evaluation_hook_scores_published_weights_through_eval(tmp_path):
    from models import build
    from models.registry import entry
    from tests.conftest import ULTRAFACE
    from train_light.evaluation import evaluate_model

    model = build("ultraface_rfb", ULTRAFACE / "version-RFB-640.pth")
    ap = evaluate_model(model, entry("ultraface_rfb").spec(480, 640), WIDER, tmp_path, limit=24)
    assert ap["easy"] > 0.75 and ap["easy"] >= ap["medium"] >= ap["hard"] > 0.3, ap


@requires_shared
def test_loader_workers_survive_an_evaluation_between_epochs(tmp_path):
    # workers forked after an evaluation had run threads in the parent deadlocked (training stopped silently)
    data = tiny_wider(tmp_path / "data", 8)
    code = ("from pathlib import Path; from train_light.engine import TrainConfig, train; "
            f"train(TrainConfig('ultraface_slim', Path({str(data)!r}), epochs=2, out=Path({str(tmp_path / 'run')!r}), "
            "hw=(160, 160), batch=4, workers=2, eval_every=1, eval_images=4))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [row["epoch"] for row in csv.DictReader(open(tmp_path / "run" / "log.csv"))] == ["1", "2"]


@requires_shared
def test_init_starts_from_published_ultraface_pth_or_official_scrfd_onnx(tmp_path):
    from models import build
    from tests.conftest import SCRFD_ONNX, ULTRAFACE
    from train_light.engine import initial_model
    from train_light.recipes import RECIPES

    for name, weights in (("ultraface_slim", ULTRAFACE / "version-slim-640.pth"), ("scrfd_500m_kps", SCRFD_ONNX)):
        family = "scrfd" if name.startswith("scrfd") else "ultraface"
        model = initial_model(TrainConfig(name, tmp_path, epochs=1, out=tmp_path, init=weights), RECIPES[family])
        published = build(name, weights).state_dict()
        assert all(torch.equal(v, published[k]) for k, v in model.state_dict().items()), name


def test_folded_batchnorms_of_imported_weights_get_statistics_that_keep_their_function():
    """SCRFD's ONNX weights leave identity BatchNorms: in training mode they would renormalise every layer."""
    from models import build
    from tests.conftest import SCRFD_ONNX
    from train_light.batchnorm import unfold_batchnorms

    if not SCRFD_ONNX.is_file():
        pytest.skip("shared data not found")
    model, untouched = build("scrfd_500m_kps", SCRFD_ONNX), build("scrfd_500m_kps", SCRFD_ONNX)
    images = [torch.rand(2, 3, 160, 160) * 4 - 2 for _ in range(3)]
    with torch.no_grad():
        before = model(images[0])
        assert unfold_batchnorms(model, lambda: images, model.raw_outputs) == 41
        after = model.eval()(images[0])
        errors = [max(float((a - b).abs().max()) for a, b in zip(before, m.train()(images[0])))
                  for m in (model, untouched)]
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(before, after))  # eval: the same function
    assert errors[0] < 0.2 * errors[1], errors  # training mode: near it, where the identity BatchNorms were not
    assert unfold_batchnorms(build("ultraface_slim"), lambda: images, lambda x: None) == 0  # real statistics: untouched
