"""Shared fixtures: paths into ../shared (FACEKIT_SHARED), a network blocker, and the expensive real conversions."""
from __future__ import annotations

import socket
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration_data.calibration import SAMPLES
from models.default import DEFAULT_MODEL
from runtimes.detection.detector import Detector
from runtimes.files import shared_dir
from tests.wider_fixture import event_of, write_wider_val

REPO = Path(__file__).resolve().parents[1]
SHARED = shared_dir()
SCRFD_ONNX = SHARED / "weights" / "scrfd" / "scrfd_500m_kps.onnx"
YUNET_ONNX = SHARED / "weights" / "yunet" / "face_detection_yunet_2023mar.onnx"
ULTRAFACE = SHARED / "weights" / "ultraface"
WIDER = SHARED / "data" / "widerface"
VAL_IMAGES = WIDER / "WIDER_val" / "images"
TRAIN_IMAGES = WIDER / "WIDER_train" / "images"

SAMPLE_CALIBRATION = SAMPLES / "calibration"  # 40 downscaled WIDER train images committed with the kit
SAMPLE_VERIFICATION = SAMPLES / "verification"  # 16 more, held out from calibration

requires_shared = pytest.mark.skipif(not SCRFD_ONNX.is_file(), reason=f"shared data not found at {SHARED}")


class NetworkBlocked(RuntimeError):
    pass


@contextmanager
def no_network():
    """Make every outgoing connection fail loudly, and record the attempts."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise NetworkBlocked(f"network access attempted: {address}")

    def refuse_lookup(host, *args, **kwargs):
        attempts.append(host)
        raise NetworkBlocked(f"network access attempted: {host}")

    originals = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo
    socket.socket.connect = socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse_lookup
    try:
        yield attempts
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = originals


def convert_tflite(out: Path, *source: str) -> tuple[Path, list]:
    from converters.tflite import main

    with no_network() as attempts:
        code = main(["--int", "--hw", "480,640", *source, "--out", str(out)])
    assert code == 0, f"conversion failed verification, see {out}/*/verify.json"
    return out, attempts


@pytest.fixture(scope="session")
def scrfd_tflite(tmp_path_factory):
    """The shared SCRFD-500M-KPS ONNX converted to TFLite fp32/fp16/INT8 at 480×640, offline."""
    if not SCRFD_ONNX.is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    return convert_tflite(tmp_path_factory.mktemp("scrfd"), "--onnx", str(SCRFD_ONNX), "--family", "scrfd")


@pytest.fixture(scope="session")
def ultraface_tflite(tmp_path_factory):
    """The kit's default model (Ultra-Light slim, committed weights), PyTorch → ONNX → TFLite at 480×640, offline:
    calibrated and verified on ../shared's WIDER images where they exist, else on the committed samples."""
    return convert_tflite(tmp_path_factory.mktemp("ultraface"))


@pytest.fixture(scope="session")
def default_hub() -> Path:
    """The default model's shipped hub ONNX (models/shipped/): a real artifact that needs no conversion."""
    return DEFAULT_MODEL.artifact("onnx")


def wider_val_faces(image_path: Path) -> list[list[float]]:
    """Ground-truth boxes (x1,y1,x2,y2) of one WIDER val image, from the official bbx_gt.txt."""
    key = f"{image_path.parent.name}/{image_path.name}"
    lines = (WIDER / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    i = lines.index(key)
    count = int(lines[i + 1])
    boxes = [list(map(float, line.split()[:4])) for line in lines[i + 2:i + 2 + count]]
    return [[x, y, x + w, y + h] for x, y, w, h in boxes if w > 0 and h > 0]


def shared_hub(tmp_path_factory, onnx_file: Path, family: str) -> Path:
    """A shared ONNX as the hub artifact folder at 480×640 (onnxruntime runs it); skips where it is absent."""
    from converters.onnx import main as onnx_main

    if not onnx_file.is_file():
        pytest.skip(f"{onnx_file.name} not found under {SHARED}")
    out = tmp_path_factory.mktemp(family)
    assert onnx_main(["--onnx", str(onnx_file), "--family", family, "--hw", "480,640", "--out", str(out)]) == 0
    return out / "onnx"


@pytest.fixture(scope="session")
def scrfd_hub(tmp_path_factory) -> Path:
    """SCRFD-500M-KPS (insightface)."""
    return shared_hub(tmp_path_factory, SCRFD_ONNX, "scrfd")


@pytest.fixture(scope="session")
def yunet_hub(tmp_path_factory) -> Path:
    """YuNet 2023mar, OpenCV's face detector."""
    return shared_hub(tmp_path_factory, YUNET_ONNX, "yunet")


def installed_distributions() -> set[str]:
    from importlib import metadata

    return {f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()}


def convert_all(out: Path, *source: str) -> tuple[Path, subprocess.CompletedProcess, set[str]]:
    """converters.all with INT8 at 480x640 in a network namespace (no network for any child): the output folder,
    the finished process and the distributions it installed or removed (none, or something phoned home)."""
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs `unshare -n` (root) to prove the conversion runs without network")
    before = installed_distributions()
    result = subprocess.run(["unshare", "-n", sys.executable, "-m", "converters.all", "--int", "--hw", "480,640",
                             *source, "--calib-count", "50", "--out", str(out)],
                            cwd=REPO, capture_output=True, text=True, timeout=1200)
    return out, result, before ^ installed_distributions()


@pytest.fixture(scope="session")
def all_backends(tmp_path_factory):
    """converters.all on SCRFD-500M-KPS: the published model users convert most, with landmarks.

    At 320x320 the INT8 artifacts matched only 0.93-0.944 of the ONNX detections (small faces, scores near the
    0.5 cut), so this runs at the size users deploy; 50 calibration images keep it short."""
    if not SCRFD_ONNX.is_file():
        pytest.skip("shared data not found")
    return convert_all(tmp_path_factory.mktemp("all"), "--onnx", str(SCRFD_ONNX), "--family", "scrfd")


@pytest.fixture(scope="session")
def default_backends(tmp_path_factory):
    """converters.all on the kit's default model, calibrated and verified on ../shared's images where they exist,
    else on the committed samples."""
    return convert_all(tmp_path_factory.mktemp("all_default"))


SUBSET_NAMES = ["3_Riot_Riot_3_240", "3_Riot_Riot_3_178", "4_Dancing_Dancing_4_91", "4_Dancing_Dancing_4_905"]
SUBSET = [f"{event_of(n)}/{n}" for n in SUBSET_NAMES]
LISTED_ONLY = ("5--Car_Accident/5_Car_Accident_Car_Crash_5_36",)  # in the ground truth, not on disk


@pytest.fixture
def wider_subset(tmp_path, default_hub):
    """A WIDER val root with four committed sample images; ground truth: the default ONNX's detections scoring
    0.5 or more, written as the official .mat files (tests/wider_fixture.py)."""
    detector = Detector.from_artifact(default_hub, score_threshold=0.5)
    faces = {}
    for name, key in zip(SUBSET_NAMES, SUBSET):
        found = detector(cv2.imread(str(SAMPLE_VERIFICATION / f"{name}.jpg")))
        faces[key] = np.concatenate([found.boxes[:, :2], found.boxes[:, 2:] - found.boxes[:, :2]], axis=1)
    root = tmp_path / "widerface"
    write_wider_val(root, {k: SAMPLE_VERIFICATION / f"{n}.jpg" for n, k in zip(SUBSET_NAMES, SUBSET)}, faces,
                    {"easy": 30, "medium": 15, "hard": 0}, LISTED_ONLY)
    return root
