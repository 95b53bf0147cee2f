"""On-device inference: backend adapters, the shared decoder and NMS, Detector. Never imports torch or tensorflow."""
from runtimes.backend import Backend, load_backend
from runtimes.detections import Detections
from runtimes.detector import Detector

__all__ = ["Backend", "Detections", "Detector", "load_backend"]
