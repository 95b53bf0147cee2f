"""Decode and NMS against hand-computed cases."""
import numpy as np
import pytest

from models.families import family
from models.families.scrfd import anchor_centers, scrfd_spec
from models.families.ultraface import decode_ssd, ultraface_priors, ultraface_spec
from models.families.yunet import yunet_spec
from runtimes.backends.base import canonical_outputs
from runtimes.detection.detector import Detector
from runtimes.detection.nms import box_iou, nms
from runtimes.detection.preprocess import Resized


def decode(outputs, spec, score_threshold):
    return family(spec.family).decode(outputs, spec, score_threshold)


def test_anchor_centers_are_row_major_and_repeated_per_anchor():
    centers = anchor_centers(64, 64, 32, 2)
    assert centers.tolist() == [[0, 0], [0, 0], [32, 0], [32, 0], [0, 32], [0, 32], [32, 32], [32, 32]]


def scrfd_outputs(spec, stride, index, score, bbox, kps=None):
    """All-zero canonical outputs except one anchor of one stride."""
    outputs = [np.zeros(shape, np.float32) for shape in spec.output_shapes()]
    per = 3 if spec.has_landmarks else 2
    k = spec.strides.index(stride) * per
    outputs[k][index] = score
    outputs[k + 1][index] = bbox
    if kps is not None:
        outputs[k + 2][index] = kps
    return outputs


def test_scrfd_distances_are_scaled_by_stride_around_the_anchor_centre():
    spec = scrfd_spec("s", 64, 64, landmarks=True)
    # stride 32, anchor index 2 = cell (x=1, y=0), first anchor: centre (32, 0)
    kps = [0.5, 0.25, 0, 0, 0, 0, 0, 0, -1, 1]
    boxes, scores, points = decode(scrfd_outputs(spec, 32, 2, 0.9, [1, 1, 1, 1], kps), spec, 0.5)
    assert boxes.tolist() == [[0, -32, 64, 32]]
    assert scores.tolist() == pytest.approx([0.9])
    assert points[0, 0].tolist() == [48, 8]
    assert points[0, 4].tolist() == [0, 32]


def test_scrfd_decode_drops_scores_below_threshold():
    spec = scrfd_spec("s", 64, 64, landmarks=False)
    boxes, scores, points = decode(scrfd_outputs(spec, 8, 5, 0.3, [1, 1, 1, 1]), spec, 0.5)
    assert boxes.shape == (0, 4) and points is None


def test_ultraface_priors_follow_the_published_layout():
    priors = ultraface_priors(240, 320, (8, 16, 32, 64), ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256)))
    assert len(priors) == 4420
    # first prior: centre of cell (0,0) of the 40x30 grid, min box 10 px
    assert priors[0] == pytest.approx([0.5 / 40, 0.5 / 30, 10 / 320, 10 / 240])
    assert priors[1][2] == pytest.approx(16 / 320)
    # last prior: last cell of the 5x4 grid, box 256 px (clamped to 1 in height)
    assert priors[-1] == pytest.approx([4.5 / 5, 3.5 / 4, 256 / 320, 1.0])


def test_ssd_decode_applies_centre_and_size_variances():
    prior = np.array([[0.5, 0.5, 0.2, 0.2]], np.float32)
    shifted = decode_ssd(np.array([[1, 0, 0, 0]], np.float32), prior, 0.1, 0.2)
    assert shifted[0] == pytest.approx([0.42, 0.4, 0.62, 0.6])
    wider = decode_ssd(np.array([[0, 0, np.log(2) / 0.2, 0]], np.float32), prior, 0.1, 0.2)
    assert wider[0] == pytest.approx([0.3, 0.4, 0.7, 0.6])


def test_ultraface_decode_returns_input_pixels():
    spec = ultraface_spec("u", 240, 320)
    scores = np.zeros((4420, 2), np.float32)
    scores[:, 0] = 1
    scores[0] = [0.1, 0.9]
    boxes, kept, _ = decode([scores, np.zeros((4420, 4), np.float32)], spec, 0.5)
    assert kept.tolist() == pytest.approx([0.9])
    assert boxes[0] == pytest.approx([4 - 5, 4 - 5, 4 + 5, 4 + 5], abs=1e-4)


def test_box_iou_hand_computed():
    iou = box_iou(np.array([[0, 0, 2, 2]], np.float32), np.array([[1, 1, 3, 3], [5, 5, 6, 6]], np.float32))
    assert iou[0] == pytest.approx([1 / 7, 0])


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    scores = np.array([0.8, 0.9, 0.7], np.float32)  # the overlap of the first two is 81/119 = 0.68
    assert nms(boxes, scores, 0.5).tolist() == [1, 2]
    assert nms(boxes, scores, 0.7).tolist() == [1, 0, 2]
    assert nms(boxes, scores, 0.5, max_det=1).tolist() == [1]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), 0.5).tolist() == []


def test_canonical_outputs_reorders_by_shape_and_rejects_mismatches():
    spec = scrfd_spec("s", 64, 64, landmarks=False)
    outputs = [np.full((1, *shape), i, np.float32) for i, shape in enumerate(spec.output_shapes())]
    shuffled = [outputs[i] for i in (5, 2, 0, 4, 1, 3)]
    restored = canonical_outputs(shuffled, spec)
    assert [int(o[0, 0]) for o in restored] == list(range(6))
    assert all(o.ndim == 2 for o in restored)
    with pytest.raises(ValueError, match="do not match scrfd"):
        canonical_outputs(shuffled[:5], spec)


def test_yunet_decodes_as_opencv_does():
    """score √(cls·obj); centre (cell + offset)·stride; size exp(·)·stride; landmarks (cell + offset)·stride."""
    spec = yunet_spec("y", 64, 64)
    outputs = [np.zeros(shape, np.float32) for shape in spec.output_shapes()]
    cls, obj, bbox, kps = outputs[4:8]  # stride 16: a 4x4 grid; cell 6 is column 2, row 1
    cls[6], obj[6] = 0.81, 1.0
    bbox[6] = [0.5, 0.25, np.log(2), 0]
    kps[6] = [0, 0, 1, 1, 0.5, 0.5, -1, 0, 0, -1]
    boxes, scores, points = decode(outputs, spec, 0.5)
    assert scores.tolist() == pytest.approx([0.9])  # √0.81; every other prior scores 0
    assert len(boxes) == 1 and boxes[0].tolist() == pytest.approx([40 - 16, 20 - 8, 40 + 16, 20 + 8])  # 32 x 16
    assert points[0].ravel().tolist() == pytest.approx([32, 16, 48, 32, 40, 24, 16, 16, 32, 0])


def test_outputs_of_equal_shape_keep_their_file_order():
    """YuNet's cls and obj of a stride have one shape; they are assigned in file order, never both to one."""
    spec = yunet_spec("y", 64, 64)
    outputs = [np.full((1, *shape), i, np.float32) for i, shape in enumerate(spec.output_shapes())]
    restored = canonical_outputs(outputs[::-1], spec)
    assert sorted(int(o[0, 0]) for o in restored) == list(range(12))


class FixedBackend:
    """A stand-in for the network in a decode test (not a backend test): returns fixed canonical outputs."""

    def __init__(self, spec):
        self.spec = spec


def test_detector_maps_boxes_back_to_original_pixels():
    spec = scrfd_spec("s", 64, 64, landmarks=True)
    detector = Detector(FixedBackend(spec), score_threshold=0.5)
    outputs = scrfd_outputs(spec, 32, 2, 0.9, [0.5, 0.5, 0.5, 0.5], [0] * 10)
    found = detector.postprocess(outputs, Resized(np.zeros((64, 64, 3), np.uint8), 0.5, 0.25))
    assert found.boxes.tolist() == [[32, -64, 96, 64]]  # (16,-16,48,16) scaled by 1/0.5 and 1/0.25
    assert found.landmarks[0, 0].tolist() == [64, 0]


def test_pre_nms_top_k_keeps_the_best_candidates_only():
    spec = scrfd_spec("s", 64, 64, landmarks=False)
    outputs = [np.zeros(shape, np.float32) for shape in spec.output_shapes()]
    outputs[0][[0, 10, 20], 0] = [0.6, 0.9, 0.7]  # stride 8: three separate anchors
    detector = Detector(FixedBackend(spec), score_threshold=0.5, pre_nms_top_k=2)
    found = detector.postprocess(outputs, Resized(np.zeros((64, 64, 3), np.uint8), 1.0, 1.0))
    assert found.scores.tolist() == pytest.approx([0.9, 0.7])


def test_boxes_with_negative_size_are_not_detections():
    spec = scrfd_spec("s", 64, 64, landmarks=False)
    outputs = [np.zeros(shape, np.float32) for shape in spec.output_shapes()]
    outputs[0][[0, 10], 0] = [0.9, 0.8]
    outputs[1][0] = [1, 1, 1, 1]
    outputs[1][10] = [1, 1, -2, 1]  # right edge left of the left edge
    found = Detector(FixedBackend(spec)).postprocess(outputs, Resized(np.zeros((64, 64, 3), np.uint8), 1.0, 1.0))
    assert found.scores.tolist() == pytest.approx([0.9])


def test_by_default_a_model_scoring_every_prior_high_gets_bounded_candidates():
    from runtimes.detection.detector import MAX_DET, PRE_NMS_TOP_K

    spec = ultraface_spec("u", 640, 640)  # 23,500 priors
    n = spec.output_shapes()[0][0]
    scores = np.random.default_rng(0).uniform(0.2, 1.0, n).astype(np.float32)
    locations = np.zeros((n, 4), np.float32)
    locations[:, 2:] = -30  # every prior a tiny box of its own, so NMS keeps nearly all of them
    outputs = [np.stack([1 - scores, scores], axis=1), locations]
    detector = Detector(FixedBackend(spec), score_threshold=0.02)
    assert (detector.pre_nms_top_k, detector.max_det) == (PRE_NMS_TOP_K, MAX_DET) and PRE_NMS_TOP_K < n
    found = detector.postprocess(outputs, Resized(np.zeros((640, 640, 3), np.uint8), 1.0, 1.0))
    assert len(found) == MAX_DET  # NMS kept more of the candidates than the cap lets out
    assert found.scores.min() >= np.sort(scores)[-PRE_NMS_TOP_K]  # only the best k ever reached NMS
