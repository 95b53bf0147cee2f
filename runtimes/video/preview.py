"""A browser preview for headless devices: the annotated stream as MJPEG over HTTP, a page, and /stats.json.

The pipeline only hands over a reference to each finished frame (`publish`, no copy, no encoding); each viewer's
connection thread encodes the newest frame when it is ready for one, at most `max_fps` times a second, sharing
one encoding between viewers. So no viewer costs nothing but a pointer swap, and a slow viewer skips frames
instead of holding the pipeline. Routes: / (page), /stream.mjpg, /snapshot.jpg, /stats.json.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

log = logging.getLogger("facekit.preview")

BOUNDARY = b"facekit-frame"
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>facekit: {source}</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #111; color: #eee; margin: 1rem; }}
main {{ display: flex; gap: 1.5rem; flex-wrap: wrap; align-items: flex-start; }}
img {{ max-width: 100%; background: #000; border: 1px solid #333; }}
table {{ border-collapse: collapse; min-width: 16rem; }}
td {{ padding: 0.15rem 0.6rem; border-bottom: 1px solid #333; }} td:last-child {{ text-align: right; }}
h1 {{ font-size: 1.1rem; font-weight: 600; }}
</style></head>
<body><h1>facekit: {source}</h1>
<main><img src="/stream.mjpg" alt="annotated stream">
<table id="stats"><tr><td>waiting for frames</td><td></td></tr></table></main>
<script>
const rows = [["fps", "FPS", 1], ["faces", "faces", 0], ["frames", "frames", 0],
  ["dropped_frames", "dropped frames", 0], ["latency_ms", "latency ms", 1], ["reconnects", "reconnects", 0],
  ["seconds_lost", "seconds lost", 1]];
async function refresh() {{
  try {{
    const s = await (await fetch("/stats.json", {{cache: "no-store"}})).json();
    let html = rows.filter(([k]) => k in s).map(([k, label, d]) =>
      `<tr><td>${{label}}</td><td>${{Number(s[k]).toFixed(d)}}</td></tr>`).join("");
    for (const [stage, ms] of Object.entries(s.stage_ms || {{}}))
      html += `<tr><td>${{stage}} ms</td><td>${{ms.toFixed(2)}}</td></tr>`;
    document.getElementById("stats").innerHTML = html;
  }} catch (e) {{ document.getElementById("stats").innerHTML = "<tr><td>run ended</td><td></td></tr>"; }}
}}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


def parse_address(text: str) -> tuple[str, int]:
    """'PORT' (on localhost) or 'HOST:PORT' → (host, port); only an address that is asked for leaves localhost."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]") if sep else "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--serve {text!r}: expected PORT or HOST:PORT, e.g. 8080 or 127.0.0.1:8080")
    return host or "127.0.0.1", int(port)


class PreviewServer:
    """Serves the newest published frame and `stats()` until `close()`; starts listening at construction."""

    def __init__(self, address: tuple[str, int], stats: Callable[[], dict], source_name: str,
                 max_fps: float = 15.0, quality: int = 80):
        self.stats, self.max_fps, self.quality = stats, max_fps, quality
        self.page = PAGE.format(source=source_name.replace("&", "&amp;").replace("<", "&lt;")).encode()
        self._frame: np.ndarray | None = None
        self._seq = 0  # frames published so far
        self._jpeg: tuple[int, bytes] = (0, b"")  # (seq, bytes) of the last encoding
        self._changed = threading.Condition()
        self._closed = False
        self.viewers = 0  # open /stream.mjpg connections
        self.encoded = 0  # frames encoded for viewers
        try:
            self.httpd = ThreadingHTTPServer(address, self._handler())
        except OSError as err:
            raise ValueError(f"--serve {address[0]}:{address[1]}: cannot listen there ({err.strerror})") from None
        self.httpd.daemon_threads = True
        self.url = f"http://{address[0]}:{self.httpd.server_address[1]}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="facekit-preview", daemon=True)
        self._thread.start()

    def publish(self, image_bgr: np.ndarray) -> None:
        """The newest finished frame (not modified afterwards); returns at once."""
        with self._changed:
            self._frame, self._seq = image_bgr, self._seq + 1
            self._changed.notify_all()

    def jpeg(self, after: int, timeout: float | None) -> tuple[int, bytes] | None:
        """The first frame published after `after`, JPEG-encoded once for every viewer; None at close or timeout."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._seq > after or self._closed, timeout) or self._closed:
                return None
            seq, frame = self._seq, self._frame
            if self._jpeg[0] == seq:
                return self._jpeg
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        with self._changed:
            self.encoded += 1
            if seq > self._jpeg[0]:
                self._jpeg = (seq, encoded.tobytes())
            return seq, encoded.tobytes()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        preview = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # requests are not news on a device's console
                log.debug(format, *args)

            def do_GET(self):
                route = self.path.split("?", 1)[0]
                try:
                    if route in ("/", "/index.html"):
                        self._send(preview.page, "text/html; charset=utf-8")
                    elif route == "/stats.json":
                        self._send(json.dumps(preview.stats()).encode(), "application/json")
                    elif route == "/snapshot.jpg":
                        frame = preview.jpeg(0, timeout=10)
                        if frame is None:
                            self.send_error(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
                        else:
                            self._send(frame[1], "image/jpeg")
                    elif route == "/stream.mjpg":
                        self._stream()
                    else:
                        self.send_error(HTTPStatus.NOT_FOUND)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away

            def _send(self, body: bytes, kind: str) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(HTTPStatus.OK)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                with preview._changed:
                    preview.viewers += 1
                try:
                    seq, interval = 0, 1 / preview.max_fps
                    while (frame := preview.jpeg(seq, timeout=None)) is not None:
                        sent_at = time.monotonic()
                        seq, body = frame
                        self.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(body)).encode() + b"\r\n\r\n" + body + b"\r\n")
                        self.wfile.flush()
                        time.sleep(max(0.0, interval - (time.monotonic() - sent_at)))
                finally:
                    with preview._changed:
                        preview.viewers -= 1

        return Handler
