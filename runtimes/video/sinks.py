"""Outputs of a video run, each written atomically: frames go to a temp file that replaces the target on close.

An interrupted or failed run leaves either the previous file or the complete new one, never half a file;
`prepare_output` checks a target before any work, so an unwritable path fails in the first second.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from runtimes.detection.detections import Detections
from runtimes.files import prepare_output

VIDEO_CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mkv": "mp4v", ".mov": "mp4v"}


class _AtomicFile:
    """A temp path beside `path` (keeping its suffix, which FFmpeg reads) that replaces `path` on commit."""

    def __init__(self, path: Path, suffixes: tuple[str, ...] | None = None):
        self.path = prepare_output(path, suffixes)
        self.temp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.partial{self.path.suffix}")

    def commit(self) -> None:
        os.chmod(self.temp, 0o644)
        os.replace(self.temp, self.path)

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


class VideoSink(_AtomicFile):
    """Annotated frames into a video file (codec from the suffix); every frame is resized to the first's size."""

    def __init__(self, path: Path, fps: float):
        super().__init__(path, tuple(VIDEO_CODECS))
        self.fps, self.writer, self.size, self.frames = fps, None, None, 0

    def write(self, image: np.ndarray) -> None:
        if self.writer is None:
            self.size = (image.shape[1], image.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*VIDEO_CODECS[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.temp), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot encode {self.path.suffix} video here")
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(image)
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        if self.writer is not None:
            self.writer.release()
        if commit and self.frames:
            self.commit()
        else:
            self.discard()


class JsonlSink(_AtomicFile):
    """One JSON record per frame: {"frame", "t", "detected", "faces": [{"id", "box", "score", "landmarks"}]}."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.file = open(self.temp, "w", encoding="utf-8")
        self.frames = 0

    def write(self, index: int, t: float, detected: bool, faces: Detections) -> None:
        self.file.write(json.dumps(frame_record(index, t, detected, faces), separators=(",", ":")) + "\n")
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        self.file.close()
        if commit and self.frames:
            self.commit()
        else:
            self.discard()


def frame_record(index: int, t: float, detected: bool, faces: Detections) -> dict:
    """The JSON Lines record of one frame (the schema the README documents); pixels rounded to 0.1."""
    return {"frame": index, "t": round(t, 4), "detected": detected, "faces": faces.to_records()}


class StdoutJsonl:
    """The same records on standard output (`--json -`), flushed per frame so a reading program sees each at once."""

    def __init__(self):
        self.frames = 0

    def write(self, index: int, t: float, detected: bool, faces: Detections) -> None:
        sys.stdout.write(json.dumps(frame_record(index, t, detected, faces), separators=(",", ":")) + "\n")
        sys.stdout.flush()
        self.frames += 1

    def close(self, commit: bool = True) -> None:
        """Nothing to commit: what was written has been read."""
