"""Tracker, Kalman filter, smoother, scene cuts and the fast preprocessing, on hand-made cases and real clips."""
import cv2
import numpy as np
import pytest

from models.spec import ModelSpec
from runtimes.detection.detections import Detections
from runtimes.detection.preprocess import prepare
from runtimes.video import kalman
from runtimes.video.scenecut import SceneCutDetector
from runtimes.video.smooth import Smoother
from runtimes.video.track import Tracker, TrackerConfig
from tests.conftest import SHARED, VAL_IMAGES

VIDEO = SHARED / "data" / "video"


def faces(*boxes, scores=None) -> Detections:
    boxes = np.array(boxes, np.float32).reshape(-1, 4)
    scores = np.full(len(boxes), 0.9, np.float32) if scores is None else np.array(scores, np.float32)
    return Detections(boxes, scores)


def test_kalman_learns_a_constant_velocity_and_predicts_it():
    mean, cov = kalman.initiate(np.array([[100.0, 100.0, 40.0, 40.0]]))
    for t in range(1, 15):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, np.array([[100.0 + 5 * t, 100.0, 40.0, 40.0]]))
    mean, _ = kalman.predict(mean, cov)
    assert mean[0, 0] == pytest.approx(100 + 5 * 15, abs=0.5)
    assert mean[0, 4] == pytest.approx(5, abs=0.2)


def test_ids_are_given_after_min_hits_and_stay_with_their_face():
    tracker = Tracker(TrackerConfig(min_hits=2))
    first = tracker.update(faces([10, 10, 50, 50]))  # the first frame shows its faces at once (ByteTrack)
    assert first.track_ids.tolist() == [1]
    assert tracker.update(faces([11, 10, 51, 50], [200, 10, 240, 50])).track_ids.tolist() == [1]  # a candidate
    third = tracker.update(faces([212, 10, 252, 50], [12, 10, 52, 50]))  # order swapped, both moved
    assert dict(zip(third.track_ids.tolist(), third.boxes[:, 0].tolist())) == {1: 12, 2: 212}
    fourth = tracker.update(faces([14, 10, 54, 50], [224, 10, 264, 50]))
    assert dict(zip(fourth.track_ids.tolist(), fourth.boxes[:, 0].tolist())) == {1: 14, 2: 224}


def test_a_one_frame_false_positive_burns_no_id():
    tracker = Tracker()
    for x in range(3):
        tracker.update(faces([10 + x, 10, 50 + x, 50]))
    tracker.update(faces([13, 10, 53, 50], [300, 300, 340, 340]))  # a ghost for one frame
    later = tracker.update(faces([14, 10, 54, 50]))
    assert later.track_ids.tolist() == [1] and tracker.tracks_started == 1


def test_a_weak_detection_keeps_a_half_hidden_face_alive_but_starts_nothing():
    config = TrackerConfig(high_score=0.5, low_score=0.1, max_misses=0)
    tracker = Tracker(config)
    for x in range(3):
        tracker.update(faces([10 + x, 10, 50 + x, 50]))
    kept = tracker.update(faces([13, 10, 53, 50], [300, 300, 340, 340], scores=[0.2, 0.3]))
    assert kept.track_ids.tolist() == [1]  # matched in the second stage at score 0.2
    assert len(tracker.ids) == 1  # the weak unmatched box started no track


def test_a_track_dies_after_max_misses_and_a_reset_forgets_everything():
    tracker = Tracker(TrackerConfig(max_misses=2))
    for x in range(3):
        tracker.update(faces([10 + x, 10, 50 + x, 50]))
    for _ in range(2):
        tracker.update(faces())
    assert len(tracker.ids) == 1  # lost, still kept for a re-appearance
    tracker.update(faces())
    assert len(tracker.ids) == 0
    for x in range(3):
        tracker.update(faces([10 + x, 10, 50 + x, 50]))
    tracker.reset()
    assert tracker.update(faces([10, 10, 50, 50])).track_ids.tolist() == [3]  # a new shot: new id at once


def test_predict_moves_boxes_and_landmarks_with_the_track():
    tracker = Tracker(TrackerConfig(min_hits=1))
    for t in range(10):
        box = np.array([[10 + 4 * t, 10, 50 + 4 * t, 50]], np.float32)
        points = np.tile(np.array([[30 + 4 * t, 30]], np.float32), (1, 5, 1))
        tracker.update(Detections(box, np.array([0.9], np.float32), points))
    predicted = tracker.predict()
    assert predicted.boxes[0, 0] == pytest.approx(10 + 4 * 10, abs=1.0)
    assert predicted.landmarks[0, 0, 0] == pytest.approx(30 + 4 * 10, abs=1.0)


def test_smoothing_steadies_a_still_face_and_follows_a_moving_one():
    rng = np.random.default_rng(0)
    smoother = Smoother()
    still = [faces([100, 100, 180, 180]) for _ in range(60)]
    noisy = [Detections(f.boxes + rng.normal(0, 1.0, 4).astype(np.float32), f.scores, None, np.array([1]))
             for f in still]
    out = np.array([smoother(f).boxes[0] for f in noisy])
    raw = np.array([f.boxes[0] for f in noisy])
    assert np.abs(np.diff(out[20:], axis=0)).mean() < 0.5 * np.abs(np.diff(raw[20:], axis=0)).mean()
    moving = [Detections(np.array([[100 + 3 * t, 100, 180 + 3 * t, 180]], np.float32), np.array([0.9]), None,
                         np.array([2])) for t in range(60)]
    followed = np.array([smoother(f).boxes[0] for f in moving])
    assert (np.array([f.boxes[0, 0] for f in moving])[20:] - followed[20:, 0]).mean() < 2.0


@pytest.mark.skipif(not VIDEO.is_dir(), reason=f"shared clips not found at {VIDEO}")
@pytest.mark.parametrize("clip,frames,cuts", [("interview_854x480.mp4", 120, [31, 61, 85, 110]),
                                              ("webcam_1280x720.mp4", 132, [])])
def test_scene_cuts_are_found_on_the_real_clips_and_head_motion_is_not_one(clip, frames, cuts):
    capture, detector, found = cv2.VideoCapture(str(VIDEO / clip)), SceneCutDetector(), []
    for index in range(frames):
        ok, frame = capture.read()
        assert ok
        if detector.is_cut(frame):
            found.append(index)
    assert found == cuts


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", [(480, 640), (480, 854), (500, 300)])
@pytest.mark.parametrize("mode", ["letterbox", "stretch"])
def test_fast_preprocessing_equals_the_plain_recipe(layout, shape, mode):
    spec = ModelSpec(name="t", family="scrfd", input_h=480, input_w=640, strides=(8, 16, 32),
                     output_names=("a",), layout=layout, mean=(127.5, 120.0, 110.0), std=(128.0, 64.0, 100.0))
    photo = cv2.imread(str(next(VAL_IMAGES.rglob("*.jpg")))) if VAL_IMAGES.is_dir() else None
    image = (cv2.resize(photo, shape[::-1]) if photo is not None
             else np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8))
    blob, resized = prepare(image, spec, mode)
    if mode == "stretch":
        canvas = cv2.resize(image, (640, 480))
    else:
        scale = min(480 / shape[0], 640 / shape[1])
        h, w = round(shape[0] * scale), round(shape[1] * scale)
        canvas = np.zeros((480, 640, 3), np.uint8)
        canvas[:h, :w] = cv2.resize(image, (w, h)) if (h, w) != shape else image
    canvas = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB)
    expected = (canvas.astype(np.float32) - np.float32(spec.mean)) / np.float32(spec.std)
    assert np.array_equal(resized.canvas, canvas)
    np.testing.assert_allclose(blob[0], expected.transpose(2, 0, 1) if layout == "NCHW" else expected, atol=1e-5)
