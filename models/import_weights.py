"""python -m models.import_weights: save an official insightface SCRFD ONNX's weights as a PyTorch .pth.

The file loads with models.build(NAME, weights=...), converts with every converter (--model NAME --weights FILE)
and starts fine-tuning (python -m train_light --init FILE).
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch

from models.registry import MODELS, entry
from runtimes.cli import run_cli
from runtimes.files import atomic_write_bytes, sha256_file


def import_scrfd_onnx(onnx_path: Path, out: Path, name: str = "scrfd_500m_kps") -> Path:
    """Write {model_name, model (state dict), source, source_sha256} to `out` atomically."""
    from models.onnx_weights import load_scrfd_onnx_weights

    if entry(name).family != "scrfd":
        raise ValueError(f"{name}: only SCRFD models import ONNX weights")
    model = load_scrfd_onnx_weights(entry(name).builder(), onnx_path)
    buffer = io.BytesIO()
    torch.save({"model_name": name, "model": model.state_dict(), "source": str(onnx_path),
                "source_sha256": sha256_file(Path(onnx_path))}, buffer)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.import_weights", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("onnx", type=Path, help="official SCRFD ONNX with folded BatchNorm (e.g. scrfd_500m_kps.onnx)")
    p.add_argument("--model", default="scrfd_500m_kps", choices=[n for n, e in MODELS.items() if e.family == "scrfd"],
                   help="the registered model the weights fill")
    p.add_argument("--out", type=Path, help="output .pth (default: the ONNX's name with .pth, in the current folder)")
    args = p.parse_args(argv)
    out = args.out or Path(args.onnx.with_suffix(".pth").name)
    print(import_scrfd_onnx(args.onnx, out, args.model))
    return 0


if __name__ == "__main__":
    run_cli(main)
