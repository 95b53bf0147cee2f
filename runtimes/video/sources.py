"""Frame sources: a video file, a folder or glob of images, a camera or a network stream, all yielding numbered
BGR frames.

Files and images give every frame; cameras and streams are live (runtimes.video.stream: the newest frame only).
A frame that cannot be decoded is skipped and counted (`source.corrupt`), never fatal; a source that cannot be
opened is a clear error before any work. Frame indices count skipped frames too, so they are positions in
the source; `t` is seconds from the start (frame index / fps for files and images, wall clock for live sources).
"""
from __future__ import annotations

import glob
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from runtimes.files import IMAGE_SUFFIXES

MAX_CONSECUTIVE_FAILURES = 25  # undecodable reads in a row that end a video stream
FRAME_COUNT_SLACK = 2  # containers' frame counts are estimates (duration x rate) that can be a frame or two over


@dataclass(frozen=True)
class Frame:
    index: int  # position in the source, skipped frames included
    t: float  # seconds from the start
    image: np.ndarray  # H×W×3 uint8 BGR
    captured: float = field(default_factory=time.perf_counter)  # when it was read: latency is measured from here


class FrameSource:
    """Iterate to get Frames; `fps`, `frame_count` (None if unknown) and `corrupt` describe the source."""

    name: str
    fps: float
    frame_count: int | None = None
    live = False  # a camera or stream: the newest frame only, timestamps from the clock, Ctrl-C stops it

    def __init__(self) -> None:
        self.corrupt = 0
        self.positions = 0  # frames read or skipped as unreadable so far

    def ended_early(self) -> bool:
        """Whether the source ran out well before the frame count its container declares (a truncated file)."""
        return self.frame_count is not None and self.positions < self.frame_count - FRAME_COUNT_SLACK

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file."""


class CaptureSource(FrameSource):
    """A video file through OpenCV's VideoCapture (FFmpeg), every frame in order."""

    def __init__(self, capture: cv2.VideoCapture, name: str, default_fps: float):
        super().__init__()
        self.capture, self.name = capture, name
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else default_fps
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.frame_count = count if count > 0 else None

    def __iter__(self) -> Iterator[Frame]:
        index, failures = 0, 0
        while failures < MAX_CONSECUTIVE_FAILURES:
            ok, image = self.capture.read()
            if not ok or image is None:
                failures += 1  # counted as corrupt only if a readable frame follows (else it was the end)
            else:
                self.corrupt += failures
                index += failures
                failures = 0
                self.positions = index + 1
                yield Frame(index, index / self.fps, image)
                index += 1

    def close(self) -> None:
        self.capture.release()


class ImageSource(FrameSource):
    """Image files in natural order ('2.jpg' before '10.jpg'); unreadable ones are skipped and counted."""

    def __init__(self, paths: list[Path], name: str, fps: float):
        super().__init__()
        self.paths, self.name, self.fps, self.frame_count = paths, name, fps, len(paths)

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            self.positions = index + 1
            if image is None:
                self.corrupt += 1
                continue
            yield Frame(index, index / self.fps, image)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def _images(paths) -> list[Path]:
    return sorted((Path(p) for p in paths if Path(p).suffix.lower() in IMAGE_SUFFIXES and Path(p).is_file()),
                  key=_natural_key)


def open_source(spec: str, fps: float = 25.0, stream_options: dict[str, str] | None = None,
                read_timeout_s: float = 5.0, reconnect: int = 10) -> FrameSource:
    """'0' (a camera index), an rtsp://, http(s)://, udp:// … URL, a video file, an image file, a folder of images
    or a glob such as 'frames/*.png'.

    `fps` is the frame rate given to image sequences and to videos or streams that do not report one;
    `stream_options` (FFmpeg options such as rtsp_transport=tcp), `read_timeout_s` and `reconnect` (tries per
    outage) apply to live sources.
    """
    from runtimes.video import stream

    if spec.isdigit():
        try:
            return stream.LiveSource(stream.camera_opener(int(spec)), f"camera {spec}", fps, reconnect)
        except ValueError:
            raise ValueError(f"camera {spec} cannot be opened (is it connected, and free? try another "
                             "index)") from None
    if stream.is_stream_url(spec):
        opener = stream.url_opener(spec, stream_options or {}, read_timeout_s)
        return stream.LiveSource(opener, stream.redact(spec), fps, reconnect)
    path = Path(spec)
    if any(ch in spec for ch in "*?[") and not path.exists():
        images = _images(glob.glob(spec))
        if not images:
            raise FileNotFoundError(f"{spec}: no image matches this pattern ({', '.join(IMAGE_SUFFIXES)})")
        return ImageSource(images, spec, fps)
    if path.is_dir():
        images = _images(path.iterdir())
        if not images:
            raise FileNotFoundError(f"{path}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageSource(images, str(path), fps)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video, image or folder")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource([path], str(path), fps)
    # One decoding thread: FFmpeg's default (one per core) spent 1.6x the CPU per frame, which the backend lacks
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])
    if not capture.isOpened():
        capture = cv2.VideoCapture(str(path))  # a build without FFmpeg: whatever backend can read it
    if not capture.isOpened():
        raise ValueError(f"{path}: cannot be read as a video (not a video file, or a codec OpenCV's FFmpeg lacks)")
    return CaptureSource(capture, str(path), default_fps=fps)
