"""On-device inference, never importing torch or tensorflow: backends/ (one adapter per runtime), detection/
(preprocess, NMS, Detections, Detector, the pipelined loop), video/ (what python -m runtimes.run runs); the
commands run.py and detect.py; cli.py and files.py, what every package's commands share."""
from runtimes.backends.base import Backend, load_backend
from runtimes.detection.detections import Detections
from runtimes.detection.detector import Detector

__all__ = ["Backend", "Detections", "Detector", "load_backend"]
