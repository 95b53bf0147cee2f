"""Faces in a stream of frames: detect (every K-th frame), track, smooth, anonymise, draw and write, stage by stage
in parallel.

Built on runtimes.detection.pipeline: the reader thread decodes and preprocesses ahead, the calling thread runs the
backend, the writer thread runs decode + NMS, the tracker, the smoother, blurring, drawing, encoding and JSON
behind it. Each stage's time is recorded per frame, and each frame's latency from capture to written; the
backend's time alone (measured on the first frame before the run) is the reference the frame rate is judged
against.
"""
from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from runtimes.detection.detections import Detections
from runtimes.detection.detector import Detector
from runtimes.detection.pipeline import forward_alone_ms, pipelined
from runtimes.detection.preprocess import prepare
from runtimes.video.anonymise import DEFAULT_MARGIN, anonymise
from runtimes.video.draw import draw_detections, draw_status
from runtimes.video.preview import PreviewServer
from runtimes.video.scenecut import SceneCutDetector
from runtimes.video.sinks import JsonlSink, StdoutJsonl, VideoSink
from runtimes.video.smooth import Smoother, SmootherConfig
from runtimes.video.sources import Frame, FrameSource
from runtimes.video.track import Tracker, TrackerConfig

STAGES = ("decode", "scene_cut", "preprocess", "forward", "postprocess", "tracking", "anonymise", "drawing",
          "json")
RECENT = 30  # frames the live figures (FPS, stage times, latency) are taken over


@dataclass
class StageTimes:
    """Milliseconds per frame for each stage that ran on it."""

    ms: dict[str, list[float]] = field(default_factory=lambda: {stage: [] for stage in STAGES})

    def add(self, stage: str, seconds: float) -> None:
        self.ms[stage].append(seconds * 1000)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: {"mean_ms": round(float(np.mean(v)), 3), "p90_ms": round(float(np.percentile(v, 90)), 3),
                        "frames": len(v)}
                for stage, v in self.ms.items() if v}

    def recent(self) -> dict[str, float]:
        """Mean ms of each stage over its last RECENT frames (safe to call from another thread)."""
        return {stage: round(float(np.mean(v[-RECENT:])), 3) for stage, v in list(self.ms.items()) if v}


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    faces: Detections  # tracked (ids set) and smoothed when smoothing is on
    detected: bool  # the detector ran on this frame (else the tracker predicted it)
    annotated: np.ndarray | None  # the frame with faces drawn, when drawing was asked for


@dataclass(frozen=True)
class Anonymiser:
    """How faces are hidden: `style` blur or pixelate, each box grown by `margin` of its size on every side."""

    style: str = "blur"
    margin: float = DEFAULT_MARGIN


@dataclass
class _Loaded:
    frame: Frame
    cut: bool  # the first frame of a new shot
    prepared: tuple | None  # (blob, Resized) on detected frames


class VideoRun:
    """Processes one source; iterate `frames(source)`, then read `summary()`. Not reusable across sources."""

    def __init__(self, detector: Detector, every: int = 1, tracker: TrackerConfig | None = None,
                 smoother: SmootherConfig | None = None, smooth: bool = True, video: VideoSink | None = None,
                 jsonl: JsonlSink | StdoutJsonl | None = None, draw: bool = False, scene_cuts: bool = True,
                 reference_runs: int = 10, anonymiser: Anonymiser | None = None, boxes: bool = True,
                 preview: PreviewServer | None = None):
        if every < 1:
            raise ValueError(f"--every {every} must be 1 or more (1 = detect on every frame)")
        self.detector, self.every, self.video, self.jsonl = detector, every, video, jsonl
        self.reference_runs = reference_runs  # backend-alone runs per block before the loop (0: no reference)
        self.tracker = Tracker(tracker)
        self.smoother = Smoother(smoother) if smooth else None
        self.cuts = SceneCutDetector() if scene_cuts else None
        self.anonymiser, self.boxes, self.preview = anonymiser, boxes, preview
        self.draw = draw or video is not None or preview is not None
        self.source: FrameSource | None = None
        self.times = StageTimes()
        self.latency_ms: list[float] = []  # capture to written, per frame
        self.since_detection = 0  # frames loaded since the last one sent to the detector
        self.frames_done = self.detected_frames = self.faces_total = self.scene_cuts = 0
        self.forward_alone_ms = 0.0
        self.wall_s = 0.0
        self._last_faces = 0
        self._finished_at: deque[float] = deque(maxlen=30)

    def frames(self, source: FrameSource, max_frames: int | None = None) -> Iterator[FrameResult]:
        """Results in source order. Stopping early (break, Ctrl-C) still finishes the frames in flight."""
        self.source = source
        if source.live:  # it reads on its own thread; "read" is waiting for the stream plus decoding
            self.times.ms = {"read": source.read_ms, **{k: v for k, v in self.times.ms.items() if k != "decode"}}
            frames = itertools.islice(source, max_frames)
        else:
            frames = self._timed(itertools.islice(source, max_frames))
        first = next(frames, None)
        if first is None:
            return
        if self.reference_runs:
            self.forward_alone_ms = forward_alone_ms(self.detector, first.image, runs=self.reference_runs)
        start = time.perf_counter()
        try:  # a live source's frames wait in its one-frame slot, not in the pipeline: read one ahead, not two
            yield from pipelined(itertools.chain([first], frames), self._load, self._forward, self._finish,
                                 ahead=1 if source.live else 2)
        finally:
            self.wall_s = time.perf_counter() - start

    def _timed(self, frames) -> Iterator[Frame]:
        """Frames of a file or images, each one's decoding timed (live sources time their own reads)."""
        iterator = iter(frames)
        while True:
            t0 = time.perf_counter()
            frame = next(iterator, None)
            if frame is None:
                return
            self.times.add("decode", time.perf_counter() - t0)
            yield frame

    def _load(self, frame: Frame) -> _Loaded:  # reader thread, frames in order
        cut = False
        if self.cuts is not None:
            t0 = time.perf_counter()
            cut = self.cuts.is_cut(frame.image)
            self.times.add("scene_cut", time.perf_counter() - t0)
        if self.since_detection % self.every and not cut:  # a new shot is always detected at once
            self.since_detection += 1
            return _Loaded(frame, cut, None)
        self.since_detection = 1
        t0 = time.perf_counter()
        prepared = prepare(frame.image, self.detector.spec, self.detector.resize)
        self.times.add("preprocess", time.perf_counter() - t0)
        return _Loaded(frame, cut, prepared)

    def _forward(self, loaded: _Loaded):  # calling thread
        if loaded.prepared is None:
            return None
        t0 = time.perf_counter()
        outputs = self.detector.backend(loaded.prepared[0])
        self.times.add("forward", time.perf_counter() - t0)
        return outputs

    def _finish(self, loaded: _Loaded, outputs) -> FrameResult:  # writer thread, frames in order
        t0 = time.perf_counter()
        if loaded.cut:
            self.tracker.reset()
            self.scene_cuts += 1
        found = None
        if outputs is not None:
            found = self.detector.postprocess(outputs, loaded.prepared[1])
            t1 = time.perf_counter()
            self.times.add("postprocess", t1 - t0)
            faces = self.tracker.update(found)
            self.detected_frames += 1
        else:
            t1 = t0
            faces = self.tracker.predict()
        if self.smoother is not None:
            faces = self.smoother(faces)
        t2 = time.perf_counter()
        self.times.add("tracking", t2 - t1)
        frame, annotated = loaded.frame, None
        self._finished_at.append(t2)
        if self.anonymiser is not None and self.draw:
            self._anonymise(frame.image, faces, found)
            t3 = time.perf_counter()
            self.times.add("anonymise", t3 - t2)
            t2 = t3
        if self.draw:
            annotated = frame.image
            if self.boxes:
                draw_detections(annotated, faces, in_place=True)
                fps = self.live_fps()
                draw_status(annotated, (f"{fps:.1f} FPS  " if fps else "") + f"{len(faces)} faces")
            if self.video is not None:
                self.video.write(annotated)
            if self.preview is not None:
                self.preview.publish(annotated)
            t3 = time.perf_counter()
            self.times.add("drawing", t3 - t2)
            t2 = t3
        if self.jsonl is not None:
            self.jsonl.write(frame.index, frame.t, outputs is not None, faces)
            self.times.add("json", time.perf_counter() - t2)
        self.latency_ms.append((time.perf_counter() - frame.captured) * 1000)
        self.frames_done += 1
        self.faces_total += len(faces)
        self._last_faces = len(faces)
        return FrameResult(frame, faces, outputs is not None, annotated)

    def _anonymise(self, image: np.ndarray, shown: Detections, found: Detections | None) -> None:
        """Hide every face the run knows of on this frame, not only the ones it shows: the shown (smoothed)
        boxes, every live track's current estimate (new tracks not yet confirmed and tracks coasting through
        missed or skipped frames included), and this frame's raw detections down to --score-thr (the weaker ones
        below it are mostly background: blurring them hid whole frames)."""
        raw = [] if found is None else [found.boxes[found.scores >= self.tracker.config.high_score]]
        boxes = [shown.boxes, self.tracker.boxes] + raw
        anonymise(image, np.concatenate([np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]),
                  self.anonymiser.style, self.anonymiser.margin)

    def live_fps(self) -> float:
        """Frames per second over the last 30 finished frames (0 until two have finished)."""
        if len(self._finished_at) < 2:
            return 0.0
        return (len(self._finished_at) - 1) / max(self._finished_at[-1] - self._finished_at[0], 1e-9)

    def live_stats(self) -> dict:
        """What the preview page shows, over the last RECENT frames; safe to call from another thread."""
        stats = {"frames": self.frames_done, "fps": round(self.live_fps(), 2), "faces": self._last_faces,
                 "latency_ms": round(float(np.mean(self.latency_ms[-RECENT:])), 1) if self.latency_ms else 0.0,
                 "stage_ms": self.times.recent()}
        if self.source is not None and self.source.live:
            stats.update(self.source.stats())
        return stats

    def summary(self) -> dict:
        """Frames, speed against the backend-alone bound, per-stage mean and p90, latency, faces and tracks, and
        for live sources the dropped frames, reconnections and seconds lost."""
        fps = self.frames_done / self.wall_s if self.wall_s > 0 else 0.0
        detected_share = self.detected_frames / max(self.frames_done, 1)
        bound = 1000 / (self.forward_alone_ms * detected_share) if self.forward_alone_ms and detected_share else 0.0
        return {
            "frames": self.frames_done,
            "detected_frames": self.detected_frames,
            "every": self.every,
            "wall_s": round(self.wall_s, 3),
            "fps": round(fps, 2),
            "forward_alone_ms": round(self.forward_alone_ms, 3),
            "forward_bound_fps": round(bound, 2),
            "efficiency": round(fps / bound, 3) if bound else None,
            "stages": self.times.summary(),
            "latency_ms": latency_summary(self.latency_ms),
            "faces_per_frame": round(self.faces_total / max(self.frames_done, 1), 3),
            "tracks": self.tracker.tracks_started,
            "scene_cuts": self.scene_cuts,
            **(self.source.stats() if self.source is not None and self.source.live else {}),
        }


def latency_summary(latency_ms: list[float]) -> dict[str, float] | None:
    """Capture-to-written latency: mean, p50, p90 and max ms."""
    if not latency_ms:
        return None
    v = np.asarray(latency_ms)
    return {"mean": round(float(v.mean()), 1), "p50": round(float(np.percentile(v, 50)), 1),
            "p90": round(float(np.percentile(v, 90)), 1), "max": round(float(v.max()), 1)}
