"""Shared fixtures: paths into ../shared (FACEKIT_SHARED), a network blocker, and the expensive real conversions."""
from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path

import pytest

from runtimes.files import shared_dir

SHARED = shared_dir()
SCRFD_ONNX = SHARED / "weights" / "scrfd" / "scrfd_500m_kps.onnx"
ULTRAFACE = SHARED / "weights" / "ultraface"
WIDER = SHARED / "data" / "widerface"
VAL_IMAGES = WIDER / "WIDER_val" / "images"
TRAIN_IMAGES = WIDER / "WIDER_train" / "images"

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
    """Ultra-Light RFB with the published 640 weights, PyTorch → ONNX → TFLite at 480×640, offline."""
    weights = ULTRAFACE / "version-RFB-640.pth"
    if not weights.is_file():
        pytest.skip(f"shared data not found at {SHARED}")
    return convert_tflite(tmp_path_factory.mktemp("ultraface"), "--model", "ultraface_rfb", "--weights", str(weights))


def wider_val_faces(image_path: Path) -> list[list[float]]:
    """Ground-truth boxes (x1,y1,x2,y2) of one WIDER val image, from the official bbx_gt.txt."""
    key = f"{image_path.parent.name}/{image_path.name}"
    lines = (WIDER / "wider_face_split" / "wider_face_val_bbx_gt.txt").read_text().splitlines()
    i = lines.index(key)
    count = int(lines[i + 1])
    boxes = [list(map(float, line.split()[:4])) for line in lines[i + 2:i + 2 + count]]
    return [[x, y, x + w, y + h] for x, y, w, h in boxes if w > 0 and h > 0]
