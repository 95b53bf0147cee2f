"""python -m train_light.export CHECKPOINT OUT: the weights of a training checkpoint, without the optimizer state.

What the kit ships as its default model (models/weights/): the state dict, the spec it trained at, the epochs
and the training settings, so the file says what it is; models.build and every converter load it as is.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import torch

from runtimes.cli import run_cli
from runtimes.files import atomic_write_bytes
from train_light.engine import load_checkpoint

KEPT = ("model_name", "spec", "epoch", "model", "config", "history")


def export_weights(checkpoint: Path, out: Path) -> Path:
    state = load_checkpoint(Path(checkpoint))
    buffer = io.BytesIO()
    torch.save({key: state[key] for key in KEPT if key in state}, buffer)
    atomic_write_bytes(Path(out), buffer.getvalue())
    return Path(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train_light.export", description=__doc__.split(":", 1)[1].strip())
    p.add_argument("checkpoint", type=Path, help="a training checkpoint (e.g. runs/<run>/last.pth)")
    p.add_argument("out", type=Path, help="the .pth to write")
    args = p.parse_args(argv)
    print(export_weights(args.checkpoint, args.out))
    return 0


if __name__ == "__main__":
    run_cli(main)
