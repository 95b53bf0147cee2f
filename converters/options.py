"""What a conversion is asked to do, as values: the Source to convert and the ConvertOptions of the run.

The CLIs parse into these (`ConvertOptions.from_args`), `converters.convert` builds them from keywords, and every
step reads them; nothing downstream sees an argparse namespace. Backend-specific settings left as None mean that
backend's own default.
"""
from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from calibration_data.calibration import DEFAULT_COUNT
from converters.verify import INT8_MIN_AGREEMENT
from models.default import DEFAULT_MODEL
from models.families import FAMILIES

log = logging.getLogger("facekit")

SOURCE_HELP = (
    f"Pass an ONNX file and its family ({', '.join(FAMILIES)}), e.g.\n"
    "  --onnx scrfd_500m_kps.onnx --family scrfd\n"
    "or a registered PyTorch model and its weights, e.g.\n"
    "  --model ultraface_rfb --weights version-RFB-640.pth\n"
    "or nothing, for the kit's own trained default model."
)
VERIFY_COUNT = 16


class UsageError(ValueError):
    """A problem with what the user asked for; the CLI prints it and exits 2."""


@dataclass(frozen=True)
class Source:
    """What to convert: an ONNX file and its family, or a registered PyTorch model and its weights."""

    onnx: Path | None = None
    family: str | None = None
    model: str | None = None
    weights: Path | None = None
    name: str | None = None  # in folder names and model.json (default from the source)

    @property
    def label(self) -> str:
        """The name folders and model.json get."""
        return self.name or self.model or (Path(self.onnx).stem if self.onnx else DEFAULT_MODEL.name)

    def resolved(self) -> Source:
        """Exactly one complete source (--onnx with --family, --model with --weights), or none: the default model
        filled in; UsageError (or FileNotFoundError) naming what is missing, before any work."""
        if self.onnx and self.model:
            raise UsageError("give either --onnx or --model, not both")
        if self.weights and not self.model:  # else the default model would be converted and --weights ignored
            raise UsageError(f"--weights {self.weights} needs --model NAME, the registered model they belong to\n"
                             f"{SOURCE_HELP}")
        if self.onnx and not self.family:
            raise UsageError(f"--onnx {self.onnx} needs --family {'|'.join(FAMILIES)}")
        if self.model:
            from models.registry import entry  # torch: converters only

            entry(self.model)  # a misspelt name lists the registered ones before any work
            if not self.weights:
                raise UsageError(f"--model {self.model} needs --weights PATH\n{SOURCE_HELP}")
        for given, what in ((self.onnx, "ONNX"), (self.weights, "weights")):
            if given is not None and not Path(given).is_file():
                raise FileNotFoundError(f"{given}: no such {what} file")
        if self.onnx or self.model:
            return self
        if not DEFAULT_MODEL.weights.is_file():
            raise UsageError(f"no model given and the default weights {DEFAULT_MODEL.weights} are missing "
                             f"(a damaged checkout?).\n{SOURCE_HELP}")
        log.info("no model given: converting the kit's default, %s (%s, %s)", DEFAULT_MODEL.name,
                 DEFAULT_MODEL.model, DEFAULT_MODEL.weights_label)
        return replace(self, model=DEFAULT_MODEL.model, weights=DEFAULT_MODEL.weights,
                       name=self.name or DEFAULT_MODEL.name)


@dataclass(frozen=True)
class ConvertOptions:
    """One conversion run: the source, the hub's size and opset, INT8 and verification settings, where to write."""

    source: Source = field(default_factory=Source)
    hw: tuple[int, int] = (480, 640)
    opset: int = 13
    out: Path | None = None  # default artifacts/<name>_<H>x<W>
    verify_images: Path | None = None  # default: the shared WIDER val images, else the committed samples
    verify_count: int = VERIFY_COUNT
    verbose: bool = False
    int8: bool = False
    int_io: bool = False
    calib: Path | None = None  # default: the shared WIDER train images, else the committed samples
    calib_count: int = DEFAULT_COUNT
    keep_float: str | tuple[str, ...] | None = None  # None: each backend's default
    int8_tail: bool = False  # quantize the output tail (score convolutions and after) too: keep_float.output_tail
    equalize: bool = True
    keep_failed: bool = False
    min_agreement: float = INT8_MIN_AGREEMENT
    ncnn_calib: str | None = None
    ort_calib: str | None = None
    mnn_full_int8: bool = False
    mnn_quant_method: str | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ConvertOptions:
        """The options a converter CLI parsed (flags of backends it does not have keep their defaults)."""
        given = vars(args)
        source = Source(**{f.name: given.get(f.name) for f in fields(Source)})
        return cls(source=source.resolved(), **{f.name: given[f.name] for f in fields(cls)
                                                if f.name != "source" and f.name in given})

    @property
    def out_dir(self) -> Path:
        h, w = self.hw
        return Path(self.out) if self.out else Path("artifacts") / f"{self.source.label}_{h}x{w}"
