"""ModelSpec: everything a runtime needs to know about a converted model, saved as model.json.

Torch-free on purpose: runtimes and eval read specs on devices without torch.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import metadata
from pathlib import Path

LAYOUTS = ("NCHW", "NHWC")
RESIZES = ("letterbox", "stretch")
SIZE_MULTIPLE = 32


def nearest_multiples(value: int, multiple: int = SIZE_MULTIPLE) -> tuple[int, ...]:
    """The valid sizes just below and above `value` (one if `value` sits below the first multiple)."""
    below = (value // multiple) * multiple
    return tuple(v for v in (below, below + multiple) if v > 0)


def check_input_size(h: int, w: int) -> None:
    """Raise ValueError naming the bad value and the nearest valid ones unless H and W divide by 32."""
    for axis, value in (("H", h), ("W", w)):
        if value <= 0 or value % SIZE_MULTIPLE:
            hint = " or ".join(str(v) for v in nearest_multiples(max(value, 1)))
            raise ValueError(f"{axis}={value} must be divisible by {SIZE_MULTIPLE} (try {hint})")


def parse_hw(text: str) -> tuple[int, int]:
    """Parse 'H,W' (e.g. '480,640') and check both divide by 32."""
    parts = text.replace("x", ",").split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--hw expects H,W such as 480,640, got {text!r}")
    h, w = (int(p) for p in parts)
    check_input_size(h, w)
    return h, w


def installed_versions(*distributions: str) -> dict[str, str]:
    """Versions of the installed distributions among `distributions` (absent ones are left out)."""
    versions = {}
    for name in distributions:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass(frozen=True)
class Provenance:
    """Where an artifact came from: source file and hash, converter, tool versions, precision, calibration set."""

    source: str = ""
    source_sha256: str = ""
    converter: str = ""
    precision: str = "fp32"
    calibration_sha256: str = ""
    tool_versions: dict[str, str] = field(default_factory=dict)
    quantization: dict = field(default_factory=dict)  # INT8: calibration method and images, equalized and float layers


@dataclass(frozen=True)
class ModelSpec:
    """The contract between converters and runtimes: model.json beside every artifact, what a runtime knows of the
    model. Frozen; JSON round trip via to_json/from_json."""

    name: str
    family: str
    input_h: int
    input_w: int
    strides: tuple[int, ...]
    output_names: tuple[str, ...]
    input_name: str = "input"
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    layout: str = "NCHW"
    resize: str = "letterbox"
    anchors_per_location: int = 2
    has_landmarks: bool = False
    min_boxes: tuple[tuple[int, ...], ...] = ()
    center_variance: float = 0.1
    size_variance: float = 0.2
    provenance: Provenance = field(default_factory=Provenance)

    def __post_init__(self) -> None:
        from models.families import family

        family(self.family)  # an unknown family is an error naming the known ones
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r} must be one of {LAYOUTS}")
        if self.resize not in RESIZES:
            raise ValueError(f"resize={self.resize!r} must be one of {RESIZES}")
        if self.input_h <= 0 or self.input_w <= 0:
            raise ValueError(f"input size {self.input_h}x{self.input_w} must be positive")
        # H, W divisible by 32 is the converters' rule (check_input_size), not the spec's: third-party
        # models such as Ultra-Light's own 320x240 files must still be describable.

    @property
    def hw(self) -> tuple[int, int]:
        return self.input_h, self.input_w

    def output_shapes(self) -> tuple[tuple[int, int], ...]:
        """The (N, C) shape of each canonical output, in canonical order, for this input size."""
        from models.families import family

        return family(self.family).output_shapes(self)

    def with_changes(self, **changes) -> ModelSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown ModelSpec fields {sorted(unknown)}")
        values = dict(data)
        values["provenance"] = Provenance(**values.get("provenance", {}))
        for key in ("strides", "output_names", "mean", "std"):
            if key in values:
                values[key] = tuple(values[key])
        values["min_boxes"] = tuple(tuple(b) for b in values.get("min_boxes", ()))
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ModelSpec:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        from runtimes.files import atomic_write_text

        atomic_write_text(Path(path), self.to_json() + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelSpec:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no model.json (every artifact needs its spec; "
                                    "convert with python -m converters.<backend>)")
        try:
            return cls.from_json(path.read_text())
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise ValueError(f"{path}: not a valid model.json ({err})") from err
