"""Live sources (network streams and cameras): always the newest frame, a read timeout, reconnection with backoff.

A grabber thread reads the stream as fast as it comes and keeps one frame: a frame the loop had no time for is
replaced by the next and counted in `dropped`, so latency from capture to output stays bounded by the loop's own
time however slow the model. A read that fails or times out is an outage: the capture is reopened up to
`reconnect` times, waiting 0.5, 1, 2, 4 then 8 s between tries; the seconds without frames are summed in
`seconds_lost`. Frame indices keep counting through drops, so they are positions in the stream.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

import cv2
import numpy as np

from runtimes.video.sources import Frame, FrameSource

log = logging.getLogger("facekit.stream")

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://", "rtmp://", "srt://")
BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # waits before each reconnection try; the last repeats
_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"  # how OpenCV's FFmpeg backend takes demuxer options: "k;v|k;v"
_env_lock = threading.Lock()


def is_stream_url(spec: str) -> bool:
    return spec.lower().startswith(STREAM_SCHEMES)


def parse_stream_option(text: str) -> tuple[str, str]:
    """'KEY=VALUE' (an FFmpeg demuxer or protocol option, e.g. rtsp_transport=tcp) → (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key or any(ch in text for ch in ";|"):
        raise ValueError(f"--stream-option {text!r}: expected KEY=VALUE such as rtsp_transport=tcp")
    return key.strip(), value.strip()


def redact(url: str) -> str:
    """The URL without a password (rtsp://user:secret@cam → rtsp://user:***@cam), for logs and summaries."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.partition("@")
    if not at or ":" not in credentials or "/" in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"


def ffmpeg_capture(url: str, options: dict[str, str], timeout_s: float) -> cv2.VideoCapture:
    """An FFmpeg capture of `url` with demuxer `options` and open/read timeouts (it may not be opened)."""
    timeout_ms = int(timeout_s * 1000)
    with _env_lock:  # the options travel in the environment, read by OpenCV while it opens
        before = os.environ.get(_ENV)
        os.environ[_ENV] = "|".join(f"{k};{v}" for k, v in options.items())
        try:
            return cv2.VideoCapture(url, cv2.CAP_FFMPEG, [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms,
                                                          cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms])
        finally:
            if before is None:
                os.environ.pop(_ENV, None)
            else:
                os.environ[_ENV] = before


def url_opener(url: str, options: dict[str, str], timeout_s: float) -> Callable[[], cv2.VideoCapture | None]:
    """Opens `url`; for RTSP without a chosen rtsp_transport, TCP first (OpenCV's default, robust to loss),
    then UDP for servers that refuse TCP, remembering the one that worked for later reconnections."""
    tries = [dict(options)]
    if url.lower().startswith(("rtsp://", "rtsps://")) and "rtsp_transport" not in options:
        tries = [{**options, "rtsp_transport": "tcp"}, {**options, "rtsp_transport": "udp"}]

    def open_stream() -> cv2.VideoCapture | None:
        for i, chosen in enumerate(tries):
            capture = ffmpeg_capture(url, chosen, timeout_s)
            if capture.isOpened():
                if i:
                    log.info("%s: the server refused %s; reading over %s", redact(url),
                             tries[0]["rtsp_transport"], chosen["rtsp_transport"])
                    tries.insert(0, tries.pop(i))
                return capture
            capture.release()
        return None

    return open_stream


def camera_opener(index: int) -> Callable[[], cv2.VideoCapture | None]:
    def open_camera() -> cv2.VideoCapture | None:
        capture = cv2.VideoCapture(index)
        return capture if capture.isOpened() else None

    return open_camera


class LiveSource(FrameSource):
    """The newest frame of a live capture; `dropped`, `reconnects`, `seconds_lost` and `lost` describe the run."""

    live = True

    def __init__(self, open_capture: Callable[[], cv2.VideoCapture | None], name: str, default_fps: float,
                 reconnect: int = 10):
        super().__init__()
        self.open_capture, self.name, self.reconnect = open_capture, name, reconnect
        self.capture = open_capture()
        if self.capture is None:
            raise ValueError(f"{name}: cannot be opened (is it reachable and streaming? for RTSP try "
                             "--stream-option rtsp_transport=udp or =tcp; nothing was written)")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and np.isfinite(fps) and 0 < fps < 1000 else default_fps
        self.dropped = self.reconnects = 0
        self.seconds_lost = 0.0
        self.lost = False  # the stream went away and did not come back within `reconnect` tries
        self.read_ms: list[float] = []  # time each read took, on the grabber thread
        self._newest: Frame | None = None
        self._ended = False
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._start = time.monotonic()
        self._grabber: threading.Thread | None = None

    def __iter__(self) -> Iterator[Frame]:
        if self._grabber is None:
            self._grabber = threading.Thread(target=self._grab, name="facekit-grab", daemon=True)
            self._grabber.start()
        while True:
            with self._ready:
                self._ready.wait_for(lambda: self._newest is not None or self._ended)
                frame, self._newest = self._newest, None
            if frame is None:
                return
            self.positions = frame.index + 1
            yield frame

    def _grab(self) -> None:  # grabber thread
        index, outage_since, tries = 0, None, 0
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                ok, image = self.capture.read()
                if self._stop.is_set():
                    return
                if not ok or image is None:  # an outage starts, or a reopened stream gave nothing
                    outage_since = outage_since or time.monotonic()
                    if tries == self.reconnect or not self._reopen(tries):
                        self.seconds_lost += time.monotonic() - outage_since
                        self.lost = not self._stop.is_set()
                        return
                    tries += 1
                    continue
                if outage_since is not None:  # frames again: the outage is over
                    lost = time.monotonic() - outage_since
                    self.seconds_lost += lost
                    self.reconnects += 1
                    log.warning("%s: frames again after %.1f s", self.name, lost)
                    outage_since, tries = None, 0
                self.read_ms.append((time.perf_counter() - t0) * 1000)
                frame = Frame(index, time.monotonic() - self._start, image)
                with self._ready:
                    if self._newest is not None:
                        self.dropped += 1
                    self._newest = frame
                    self._ready.notify()
                index += 1
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify()

    def _reopen(self, tries: int) -> bool:
        """Reconnection try `tries` + 1: wait its backoff, reopen (a capture that fails to open stays released, so
        its next read fails at once and leads to the next try). False when the run is stopping."""
        self.capture.release()
        wait = BACKOFF_S[min(tries, len(BACKOFF_S) - 1)]
        log.warning("%s: no frame; reconnecting in %.1f s (try %d of %d)", self.name, wait, tries + 1,
                    self.reconnect)
        if self._stop.wait(wait):
            return False
        self.capture = self.open_capture() or self.capture
        return True

    def stats(self) -> dict:
        return {"dropped_frames": self.dropped, "reconnects": self.reconnects,
                "seconds_lost": round(self.seconds_lost, 2), "stream_lost": self.lost}

    def close(self) -> None:
        """Stop the grabber (a read in progress ends within the read timeout), then release the capture."""
        self._stop.set()
        if self._grabber is not None:
            self._grabber.join()
        self.capture.release()
