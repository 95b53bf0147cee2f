"""Live sources, the browser preview and anonymisation against real local servers: ffmpeg serving a clip as an
HTTP MPEG-TS stream (-listen 1), Debian's rtsp-server-perl fed by an ffmpeg publisher, killed and restarted
mid-run; the preview fetched over HTTP while the run goes on; blurring checked pixel-wise where the faces are."""
import json
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest

from eval.anonymisation import SHOWN, audit, kept_detail
from runtimes.detection.detector import Detector
from runtimes.detection.nms import box_iou
from runtimes.run import main as run_main
from runtimes.video.anonymise import anonymise, grown_boxes, merged_regions
from runtimes.video.preview import parse_address
from runtimes.video.stream import parse_stream_option, redact
from tests.conftest import REPO
from tests.synthetic_clip import ZOOM, make_clip, map_points
from tests.test_video import scene_with_known_faces

FFMPEG = shutil.which("ffmpeg")
RTSP_SERVER = shutil.which("rtsp-server-perl")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="needs ffmpeg (apt-get install ffmpeg; .ci/run does)")
needs_rtsp = pytest.mark.skipif(FFMPEG is None or RTSP_SERVER is None,
                                reason="needs ffmpeg and rtsp-server-perl (Debian packages; .ci/run installs them)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sharpness(image: np.ndarray) -> float:
    """Variance of the Laplacian: detail left in a region (a blurred face has almost none)."""
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, default_hub):
    """The synthetic clip of two known faces (tests.synthetic_clip), its true face centres, and an H.264 copy with
    a keyframe every 10 frames for streaming."""
    folder = tmp_path_factory.mktemp("live")
    detector = Detector.from_artifact(default_hub, score_threshold=0.5)
    scene = scene_with_known_faces(detector)
    reference = detector(scene)
    centres = (reference.boxes[:, :2] + reference.boxes[:, 2:]) / 2
    clip = make_clip(scene, folder / "clip.mp4", tuple(centres.mean(axis=0)))
    h264 = folder / "clip_h264.mp4"
    if FFMPEG:
        subprocess.run([FFMPEG, "-v", "error", "-y", "-i", str(clip.path), "-c:v", "libx264", "-preset", "veryfast",
                        "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", str(h264)], check=True)
    return clip, centres, reference, h264


def test_anonymise_hides_detail_inside_the_grown_box_and_touches_nothing_else():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)
    before = image.copy()
    box = np.array([[100.0, 50.0, 180.0, 150.0]])
    for style in ("blur", "pixelate"):
        image[:] = before
        anonymise(image, box, style, margin=0.25)
        x1, y1, x2, y2 = grown_boxes(box, 0.25, 300, 200)[0]
        assert (x1, y1, x2, y2) == (80, 25, 200, 175)
        assert sharpness(image[y1:y2, x1:x2]) < 0.05 * sharpness(before[y1:y2, x1:x2]), style
        outside = np.ones(image.shape[:2], bool)
        outside[y1:y2, x1:x2] = False
        assert np.array_equal(image[outside], before[outside]), style
    image[:] = before
    anonymise(image, np.array([[-50.0, -50.0, 20.0, 20.0], [290.0, 190.0, 400.0, 400.0]]))  # clipped, no error
    assert not np.array_equal(image[:10, :10], before[:10, :10])
    with pytest.raises(ValueError, match="blur, pixelate"):
        anonymise(image, box, "smudge")


def test_a_crowd_merges_into_regions_no_two_of_which_are_one_face():
    """600 boxes (a crowd's shown boxes, tracks and raw detections): regions of one face merge until no two
    regions reach MERGE_IOU, every box stays inside a region, and the largest face comes first."""
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 1000, (600, 2))
    boxes = np.concatenate([corners, corners + rng.uniform(8, 40, (600, 2))], axis=1)
    regions = merged_regions(boxes, 0.25, 1100, 1100)
    merged = np.stack([r for r, _ in regions]).astype(np.float64)
    iou = box_iou(merged, merged)
    np.fill_diagonal(iou, 0)
    assert 1 < len(regions) < len(boxes) and iou.max() < 0.3
    grown = grown_boxes(boxes, 0.25, 1100, 1100)
    inside = ((grown[:, None, :2] >= merged[None, :, :2]) & (grown[:, None, 2:] <= merged[None, :, 2:])).all(axis=2)
    assert inside.any(axis=1).all()
    assert [size for _, size in regions] == sorted((size for _, size in regions), reverse=True)
    two = merged_regions(np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60.0]]), 0, 100, 100)
    assert [r.tolist() for r, _ in two] == [[0, 0, 11, 11], [50, 50, 60, 60]]


def test_option_parsers_and_redaction():
    assert parse_stream_option("rtsp_transport=tcp") == ("rtsp_transport", "tcp")
    for bad in ("rtsp_transport", "=tcp", "a=b|c"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_stream_option(bad)
    assert parse_address("8080") == ("127.0.0.1", 8080)  # localhost unless another address is asked for
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_address("localhost:99999")
    assert redact("rtsp://admin:secret@10.0.0.5:554/live") == "rtsp://admin:***@10.0.0.5:554/live"
    assert redact("http://cam.local/stream") == "http://cam.local/stream"


def test_every_known_face_is_blurred_on_every_frame_between_keyframes(face_clip, tmp_path):
    """--blur --every 3 --no-boxes on the clip of known faces: at each face's true centre, on every frame (the
    tracked ones between detections included), the written video has lost its detail; elsewhere it is the
    source (up to the codec's loss)."""
    clip, centres, reference, _ = face_clip
    out = tmp_path / "blurred.avi"
    assert run_main([str(clip.path), "--blur", "--no-boxes", "--every", "3", "--out", str(out),
                     "--json", str(tmp_path / "faces.jsonl"), "--reference-runs", "0"]) == 0
    sizes = (reference.boxes[:, 2:] - reference.boxes[:, :2]).max(axis=1)
    source, written = cv2.VideoCapture(str(clip.path)), cv2.VideoCapture(str(out))
    ratios, outside_diffs = [], []
    for t in range(ZOOM.stop):
        (_, original), (_, blurred) = source.read(), written.read()
        scale = np.linalg.norm(clip.transforms[t][:, 0])
        covered = np.zeros(original.shape[:2], bool)
        for (cx, cy), size in zip(map_points(clip.transforms[t], centres), sizes * scale):
            half = int(size * 0.25)  # the middle of the face
            x, y = int(cx), int(cy)
            region = np.s_[max(y - half, 0):y + half, max(x - half, 0):x + half]
            ratios.append(kept_detail(blurred[region], original[region]))
            grow = int(size)
            covered[max(y - grow, 0):y + grow, max(x - grow, 0):x + grow] = True
        outside_diffs.append(np.abs(blurred.astype(int) - original.astype(int))[~covered].mean())
    assert len(ratios) == 2 * ZOOM.stop
    bad = [(i // 2, round(r, 3)) for i, r in enumerate(ratios) if r >= SHOWN]
    assert max(ratios) < SHOWN, f"{bad}: a face kept {max(ratios):.0%} of its detail on some frame"  # shown: 0.97+
    assert np.mean(outside_diffs) < 6  # MJPG's loss; nothing drawn (--no-boxes) and nothing else blurred


def test_the_audit_counts_faces_left_shown_by_what_was_written(face_clip, tmp_path, default_hub):
    """python -m eval.anonymisation on real runs: the copy written with --no-boxes shows every reference face, the
    one written with --blur none; a video that is not a frame-for-frame copy is refused."""
    clip, _, _, _ = face_clip
    reference = Detector.from_artifact(default_hub, score_threshold=0.5)
    outputs = {}
    for name, flags in (("plain", []), ("blurred", ["--blur"])):
        outputs[name] = tmp_path / f"{name}.avi"
        assert run_main([str(clip.path), *flags, "--no-boxes", "--out", str(outputs[name]),
                         "--reference-runs", "0"]) == 0
    plain, blurred = (audit(clip.path, outputs[name], reference) for name in ("plain", "blurred"))
    assert plain.frames == blurred.frames == ZOOM.stop
    assert sum(plain.judged.values()) == sum(blurred.judged.values()) >= 2 * ZOOM.stop - 4
    assert plain.miss_rate == 1.0 and blurred.miss_rate == 0.0 and blurred.frames_showing_a_face == 0
    assert min(face["kept_detail"] for face in plain.shown_faces) > 0.8  # far above SHOWN: a clear line
    short = tmp_path / "short.avi"
    assert run_main([str(clip.path), "--max-frames", "20", "--out", str(short), "--reference-runs", "0"]) == 0
    with pytest.raises(ValueError, match="frame-for-frame"):
        audit(clip.path, short, reference)


def test_an_unreachable_stream_is_a_clear_error_before_any_work(tmp_path, capsys):
    port = free_port()
    with pytest.raises(ValueError, match="cannot be opened"):
        run_main([f"http://127.0.0.1:{port}/live.ts", "--read-timeout", "1", "--json", str(tmp_path / "f.jsonl")])
    result = subprocess.run([sys.executable, "-m", "runtimes.run", f"rtsp://user:pw@127.0.0.1:{port}/live",
                             "--read-timeout", "1", "--json", str(tmp_path / "f.jsonl")],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "cannot be opened" in result.stderr and "pw" not in result.stderr
    assert not (tmp_path / "f.jsonl").exists()


def http_stream(clip: Path, port: int, rate: str | None) -> subprocess.Popen:
    """ffmpeg serving `clip` once as live MPEG-TS over HTTP to the first client; `rate` as -readrate (None: as
    fast as the client takes it)."""
    pace = ["-readrate", rate] if rate else []
    return subprocess.Popen([FFMPEG, "-v", "error", *pace, "-i", str(clip), "-c", "copy", "-f", "mpegts",
                             "-listen", "1", f"http://127.0.0.1:{port}/live.ts"])


def wait_listening(port: int, timeout: float = 10) -> None:
    """Until a socket listens on `port`, read from /proc/net/tcp: connecting to find out would use up the one
    client that ffmpeg -listen 1 serves."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


@needs_ffmpeg
@pytest.mark.parametrize("rate, slower", [("0.5", True), (None, False)], ids=["slower-than-model",
                                                                              "faster-than-model"])
def test_http_stream_drops_frames_only_when_the_model_is_slower(face_clip, tmp_path, rate, slower):
    """A 12.5 FPS stream (the model keeps up: nothing dropped) and an unpaced one (far faster than the model:
    the newest frame is taken, the rest dropped and counted, latency stays bounded); the stream's end is an
    outage that --reconnect 0 does not retry: exit 3, outputs kept."""
    _, _, _, h264 = face_clip
    port = free_port()
    server = http_stream(h264, port, rate)
    try:
        wait_listening(port)
        summary_file = tmp_path / "s.json"
        code = run_main([f"http://127.0.0.1:{port}/live.ts", "--json", str(tmp_path / "f.jsonl"), "--reconnect",
                         "0", "--read-timeout", "2", "--reference-runs", "0", "--summary", str(summary_file)])
    finally:
        server.kill()
        server.wait()
    summary = json.loads(summary_file.read_text())
    records = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert code == 3 and summary["stream_lost"] and summary["reconnects"] == 0
    assert summary["frames"] == len(records) and "read" in summary["stages"] and "decode" not in summary["stages"]
    assert [r["frame"] for r in records] == sorted({r["frame"] for r in records})
    positions = records[-1]["frame"] + 1
    assert positions >= ZOOM.stop - 2  # the stream was read to its end
    if slower:
        gaps = [b["frame"] - a["frame"] - 1 for a, b in zip(records, records[1:])]  # frames dropped between
        warm = 20  # the first positions: the opening burst and the model's warm-up (first runs are slow)
        assert sum(g for r, g in zip(records, gaps) if r["frame"] >= warm) <= 2, gaps
        assert summary["frames"] >= ZOOM.stop - warm
    else:
        assert summary["dropped_frames"] >= 20 and summary["frames"] + summary["dropped_frames"] >= positions - 2
    assert summary["latency_ms"]["p90"] < 1000  # frames never wait in a queue behind a slow model
    assert sum(len(r["faces"]) for r in records) > 0


class RtspServer:
    """Debian's rtsp-server-perl (viewers on one port, publishers on another) fed by an ffmpeg publisher that
    loops the clip in real time; stop() kills both, start() brings them back."""

    def __init__(self, clip: Path, log: Path):
        self.clip, self.log = clip, log
        self.port, self.source_port = free_port(), free_port()
        self.rtp_port = 20000 + 2 * (self.port % 10000)  # its own RTP range, clear of another server's
        self.procs: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}/live"

    def start(self) -> None:
        with open(self.log, "a") as log:
            self.procs = [subprocess.Popen([RTSP_SERVER, "-c", str(self.port), "-s", str(self.source_port),
                                            "--rtp_start_port", str(self.rtp_port), "-l", "1"],
                                           stdout=log, stderr=log)]
            wait_listening(self.source_port)
            self.procs.append(subprocess.Popen(
                [FFMPEG, "-v", "error", "-re", "-stream_loop", "-1", "-i", str(self.clip), "-c", "copy", "-f",
                 "rtsp", f"rtsp://127.0.0.1:{self.source_port}/live"], stdout=log, stderr=log))
        time.sleep(1.0)  # the publisher announces the stream

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()
            proc.wait()
        self.procs = []


def fetch(url: str, limit: int | None = None) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(limit) if limit else response.read()


@needs_rtsp
def test_rtsp_run_survives_a_server_restart_and_serves_a_blurred_preview(face_clip, tmp_path):
    """The command of issue 22: an RTSP stream, --blur, --serve and --json - read line by line while it runs;
    the server is killed and restarted mid-run and the run reconnects; the preview answers while it runs."""
    _, _, _, h264 = face_clip
    server = RtspServer(h264, tmp_path / "server.log")
    server.start()
    port = free_port()
    run = subprocess.Popen([sys.executable, "-m", "runtimes.run", server.url, "--blur", "--serve",
                            f"127.0.0.1:{port}", "--json", "-", "--read-timeout", "2", "--reference-runs", "0",
                            "--out", str(tmp_path / "live.mp4")],
                           cwd=REPO, stdout=subprocess.PIPE, stderr=open(tmp_path / "run.err", "w"), text=True)
    records: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [records.put(json.loads(line)) for line in run.stdout], daemon=True).start()
    try:
        lines = [records.get(timeout=60) for _ in range(30)]  # flushed per frame: readable while it runs
        wait_listening(port)
        page = fetch(f"http://127.0.0.1:{port}/").decode()
        assert "/stream.mjpg" in page and "/stats.json" in page
        stats = json.loads(fetch(f"http://127.0.0.1:{port}/stats.json"))
        assert stats["frames"] > 0 and stats["fps"] > 0 and "forward" in stats["stage_ms"]
        snapshot = cv2.imdecode(np.frombuffer(fetch(f"http://127.0.0.1:{port}/snapshot.jpg"), np.uint8), 1)
        assert snapshot.shape == (480, 640, 3)
        part = fetch(f"http://127.0.0.1:{port}/stream.mjpg", limit=200_000)
        assert part.count(b"--facekit-frame") >= 2 and b"\xff\xd8" in part  # two JPEG parts of the MJPEG stream
        server.stop()
        time.sleep(1.5)
        server.start()
        before = lines[-1]["frame"]
        after = []
        deadline = time.monotonic() + 60
        while len(after) < 30 and time.monotonic() < deadline:
            record = records.get(timeout=60)
            if record["frame"] > before:
                after.append(record)
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
        server.stop()
    assert len(after) == 30, (tmp_path / "run.err").read_text()[-2000:]
    assert run.returncode == 143
    summary = json.loads((tmp_path / "live.summary.json").read_text())
    assert summary["reconnects"] >= 1 and summary["seconds_lost"] > 1.0 and not summary["stream_lost"]
    assert summary["interrupted"] and summary["preview"]["frames_encoded"] >= 3
    assert any(r["faces"] for r in after)  # faces found after the reconnection
    stage_blur = summary["stages"]["anonymise"]
    assert stage_blur["frames"] == summary["frames"]  # every written frame went through the blur
