"""python -m train_light --model NAME --data DIR --epochs N: train SCRFD-0.5G or Ultra-Light slim/RFB with its
published recipe on WIDER-format data; writes <out>/last.pth every epoch (resumable), log.csv and training.png."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from models.registry import MODELS
from runtimes.cli import hw_argument, non_negative_int, positive_int, positive_number, run_cli
from train_light.engine import TrainConfig, train
from train_light.qat import SCHEMES
from train_light.recipes import RECIPES


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train_light", description=__doc__.split(": ", 1)[1].strip(),
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, choices=sorted(MODELS), help="the registered model to train")
    p.add_argument("--data", required=True, type=Path,
                   help="training set: the official WIDER FACE root (wider_face_split/ + WIDER_train/images) or a "
                        "folder with a RetinaFace-style label.txt and images/ (landmarks train only from this)")
    p.add_argument("--epochs", type=positive_int, required=True,
                   help="total epochs; the LR steps at the recipe's fractions")
    p.add_argument("--size", type=hw_argument, help="training crop H,W, divisible by 32 (default: the recipe's, "
                   + ", ".join(f"{f} {h}x{w}" for f, r in RECIPES.items() for h, w in [r.train_hw]) + ")")
    p.add_argument("--out", type=Path, help="run folder for last.pth, log.csv, training.png "
                   "(default runs/<model>_<H>x<W>)")
    p.add_argument("--batch", type=positive_int, help="images per step per process (default: the recipe's)")
    p.add_argument("--lr", type=positive_number, help="base learning rate (default: the recipe's)")
    p.add_argument("--workers", type=non_negative_int, default=2, help="data-loading processes (0: load in the "
                                                                       "training process)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the data order and augmentation")
    p.add_argument("--resume", action="store_true", help="continue from <out>/last.pth")
    p.add_argument("--init", type=Path, help="fine-tune from weights: a .pth (Ultra-Light's, or a checkpoint) or "
                   "an official SCRFD .onnx (imported)")
    p.add_argument("--eval-every", type=non_negative_int, default=0,
                   help="evaluate on the WIDER val images every K epochs and at the end (0: never)")
    p.add_argument("--eval-size", type=hw_argument, default=(640, 640), help="evaluation input H,W")
    p.add_argument("--eval-images", type=positive_int,
                   help="evaluate on this many val images spread over the list (default all)")
    p.add_argument("--val", type=Path, help="WIDER root holding WIDER_val/ and ground_truth/ (default ../shared's)")
    p.add_argument("--qat", nargs="?", const="tflite", choices=sorted(SCHEMES),
                   help="quantization-aware fine-tuning of the --init weights: BatchNorm folded, weights per-channel "
                        "int8, activations per-tensor int8 rounded as this backend does (the flag alone: tflite, "
                        "the asymmetric grid TFLite and ONNX Runtime share); the result is a float checkpoint the "
                        "converters quantize as usual. Typically a few epochs at --lr 0.001")
    p.add_argument("--teacher", type=Path,
                   help="distil from this artifact (any the kit runs, converted at the training --size with the "
                        "model's family and priors, e.g. Ultra-Light RFB teaching slim): its face probabilities as "
                        "soft targets on every prior, its boxes where it is confident (train_light.distill)")
    p.add_argument("--robust", action="store_true", help="add blur, JPEG and gamma augmentations")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (under torchrun: each rank its LOCAL_RANK)")
    p.add_argument("--no-amp", action="store_true", help="train in float32 on GPU (mixed precision is the default)")
    return p


def config_from(args: argparse.Namespace, **overrides) -> TrainConfig:
    """The training settings the parsed flags ask for (`overrides` replace fields, e.g. prune's init)."""
    size = args.size or RECIPES[MODELS[args.model].family].train_hw
    device = args.device
    if device == "cuda":
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    settings = dict(model=args.model, data=args.data, epochs=args.epochs, hw=size,
                    out=args.out or Path("runs") / f"{args.model}_{size[0]}x{size[1]}", batch=args.batch,
                    lr=args.lr, workers=args.workers, seed=args.seed, resume=args.resume, init=args.init,
                    eval_every=args.eval_every, eval_hw=args.eval_size, eval_images=args.eval_images,
                    val_data=args.val, robust=args.robust, device=device, amp=not args.no_amp, qat=args.qat,
                    teacher=args.teacher)
    return TrainConfig(**{**settings, **overrides})


def main(argv: list[str] | None = None) -> int:
    checkpoint = train(config_from(parser().parse_args(argv)))
    print(f"checkpoint: {checkpoint}")
    return 0


if __name__ == "__main__":
    run_cli(main)
