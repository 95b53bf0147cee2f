"""The WIDER protocol on small hand-made cases whose AP is worked out by hand from the official rules."""
import numpy as np
import pytest

from eval.groundtruth import ImageTruth
from eval.protocol import evaluate, normalize_scores, overlaps_plus_one

FACE_A = [10, 10, 20, 20]   # x, y, w, h
FACE_B = [100, 10, 20, 20]


def truth(*faces, counted=None, name="img"):
    boxes = np.array(faces, np.float64).reshape(-1, 4)
    mask = np.ones(len(boxes), bool) if counted is None else np.array(counted)
    return ImageTruth("0--Event", name, boxes, {s: mask for s in ("easy", "medium", "hard")})


def ap(predictions, truths):
    normalized = normalize_scores({k: np.array(v, np.float64).reshape(-1, 5) for k, v in predictions.items()})
    return evaluate(normalized, truths)["easy"].ap


def test_iou_uses_the_official_plus_one_convention():
    same = overlaps_plus_one(np.array([[0, 0, 9, 9.0]]), np.array([[0, 0, 9, 9.0]]))
    shifted = overlaps_plus_one(np.array([[0, 0, 9, 9.0]]), np.array([[5, 0, 14, 9.0], [20, 20, 30, 30.0]]))
    assert same[0, 0] == 1.0
    assert shifted[0].tolist() == pytest.approx([50 / 150, 0.0])


def test_every_face_found_before_any_false_positive_is_ap_1():
    t = truth(FACE_A, FACE_B)
    assert ap({t.key: [FACE_A + [0.9], FACE_B + [0.8]]}, [t]) == pytest.approx(1.0)


def test_a_false_positive_between_two_hits():
    # normalised scores 1, 0.5, 0: (P=1, R=.5) above 0.5, (P=.5, R=.5) down to 0, (P=2/3, R=1) at 0
    # AP = 0.5 * 1 (envelope) + 0.5 * 2/3
    t = truth(FACE_A, FACE_B)
    assert ap({t.key: [FACE_A + [0.9], [300, 300, 20, 20, 0.85], FACE_B + [0.8]]}, [t]) == pytest.approx(5 / 6)


def test_a_missed_face_caps_recall():
    t = truth(FACE_A, FACE_B)
    assert ap({t.key: [FACE_A + [0.9], [300, 300, 20, 20, 0.1]]}, [t]) == pytest.approx(0.5)


def test_a_face_is_recalled_once_and_the_duplicate_is_a_false_positive():
    t = truth(FACE_A, FACE_B)
    # A (1.0), A again (0.5), B (0.0): recall .5 at P=1, then P=.5 at R=.5, then P=2/3 at R=1
    result = ap({t.key: [FACE_A + [0.9], [11, 11, 20, 20, 0.85], FACE_B + [0.8]]}, [t])
    assert result == pytest.approx(5 / 6)


def test_detections_of_faces_outside_the_keep_list_are_neither_hits_nor_misses():
    t = truth(FACE_A, FACE_B, counted=[True, False])
    assert ap({t.key: [FACE_B + [0.9], FACE_A + [0.8]]}, [t]) == pytest.approx(1.0)
    # the same detection counted as a false positive would cost precision
    counted_both = truth(FACE_A, [300, 300, 20, 20])
    assert ap({counted_both.key: [FACE_B + [0.9], FACE_A + [0.8]]}, [counted_both]) < 0.75


def test_faces_of_images_without_detections_still_count_as_misses():
    found, empty = truth(FACE_A, name="found"), truth(FACE_B, name="empty")
    # P=1 at R=.5 (one of the two faces), then a false positive: AP 0.5
    assert ap({found.key: [FACE_A + [0.9], [300, 300, 20, 20, 0.5]]}, [found, empty]) == pytest.approx(0.5)


def test_scores_are_normalised_over_all_images_and_rows_sorted():
    normalized = normalize_scores({"a": np.array([[0, 0, 1, 1, 0.2], [0, 0, 1, 1, 0.6]]),
                                   "b": np.array([[0, 0, 1, 1, 0.4]]), "c": np.zeros((0, 5))})
    assert normalized["a"][:, 4].tolist() == pytest.approx([1.0, 0.0])
    assert normalized["b"][:, 4].tolist() == pytest.approx([0.5])
