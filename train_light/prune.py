"""python -m train_light.prune --model NAME --weights W --ratio R --data DIR --epochs N --out DIR: remove R of
the channels of every prunable layer group (smallest filter L1 norm first, see train_light.pruning), then
fine-tune the smaller model with train_light's recipe (every train_light flag applies). <out>/pruned.pth is
the model right after pruning, <out>/last.pth the fine-tuned checkpoint; both load wherever weights do
(`--model NAME --weights FILE` in the converters)."""
from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import torch

from models.registry import build
from runtimes.cli import float_range, run_cli
from runtimes.files import atomic_write_bytes, prepare_output_dir
from train_light.__main__ import config_from
from train_light.__main__ import parser as train_parser
from train_light.engine import CHECKPOINT, train
from train_light.pruning import prune

log = logging.getLogger("facekit.prune")
PRUNED = "pruned.pth"


def parser() -> argparse.ArgumentParser:
    p = train_parser()
    p.prog = "python -m train_light.prune"
    p.description = __doc__.split(": ", 1)[1].strip()
    p.add_argument("--weights", type=Path, required=True,
                   help="the trained model to prune: a .pth (the kit's, Ultra-Light's, a checkpoint) or an "
                        "official SCRFD .onnx")
    p.add_argument("--ratio", type=float_range(0.0, 0.95, "a fraction"), required=True,
                   help="fraction of each group's channels to remove (kept counts round to a multiple of 8; "
                        "0.25 takes about 30%% of the MACs off SCRFD-500M and the default model)")
    return p


def pruned_weights(model_name: str, weights: Path, ratio: float, out: Path) -> Path:
    """Prune `weights` and write the smaller model's state dict to <out>/pruned.pth (atomically)."""
    model = build(model_name, weights)
    before = sum(p.numel() for p in model.parameters())
    plan = prune(model, ratio)
    after = sum(p.numel() for p in model.parameters())
    log.info("pruned %d layer groups of %s: %d -> %d parameters (%.0f%%)", len(plan), model_name, before, after,
             100 * after / before)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "pruned_from": str(weights), "ratio": ratio,
                "channels": plan}, buffer)
    path = out / PRUNED
    atomic_write_bytes(path, buffer.getvalue())
    return path


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.init:
        p.error("--init: prune starts from --weights; leave --init out")
    config = config_from(args)
    prepare_output_dir(config.out)
    if not args.resume and (config.out / CHECKPOINT).is_file():  # before pruned.pth is written over
        raise ValueError(f"{config.out / CHECKPOINT}: an earlier run's checkpoint is there; pass --resume to "
                         "continue it, or another --out (nothing was overwritten)")
    init = config.out / PRUNED
    if not (args.resume and init.is_file()):
        init = pruned_weights(args.model, args.weights, args.ratio, config.out)
    checkpoint = train(config_from(args, init=init))
    print(f"pruned: {init}\ncheckpoint: {checkpoint}")
    return 0


if __name__ == "__main__":
    run_cli(main)
