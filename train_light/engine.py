"""The training loop: data → model → recipe loss → SGD, with checkpoints, resume, evaluation and a log.

One process trains on the CPU or one GPU; under `torchrun` each process takes a share of every epoch
(DistributedDataParallel, gloo on CPU, NCCL on GPUs) and rank 0 writes checkpoints, logs and evaluations.
"""
from __future__ import annotations

import io
import itertools
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from models.registry import entry, load_weights
from models.spec import ModelSpec
from runtimes.files import atomic_write_bytes, prepare_output_dir
from train_light.batchnorm import unfold_batchnorms
from train_light.data import load_faces
from train_light.dataset import EpochSampler, TrainSet
from train_light.distill import Teacher, distill_loss
from train_light.evaluation import evaluate_model
from train_light.history import History
from train_light.qat import prepare_qat
from train_light.recipes import RECIPES, learning_rate

log = logging.getLogger("facekit.train")
CHECKPOINT = "last.pth"
UNFOLD_BATCHES = 20  # training batches that measure the statistics of folded BatchNorms (train_light.batchnorm)
RESUME_KEYS = {"model_name", "spec", "epoch", "model", "optimizer", "config", "history"}


@dataclass
class TrainConfig:
    model: str
    data: Path
    epochs: int
    out: Path
    hw: tuple[int, int] | None = None
    batch: int | None = None
    lr: float | None = None
    workers: int = 2
    seed: int = 0
    resume: bool = False
    init: Path | None = None
    eval_every: int = 0
    eval_hw: tuple[int, int] = (640, 640)
    eval_images: int | None = None
    val_data: Path | None = None
    robust: bool = False
    device: str = "cpu"
    amp: bool = True
    qat: str | None = None  # a train_light.qat scheme: fine-tune with that backend's INT8 simulated
    teacher: Path | None = None  # an artifact whose outputs the model also learns (train_light.distill)


class RawOutputs(nn.Module):
    """What DDP wraps: the model's pre-activation outputs that the losses take."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.raw_outputs(x)


def distributed() -> tuple[int, int]:
    """(rank, world size), initialising the process group when torchrun started several processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def init_loader_worker(_worker: int) -> None:
    """Loader workers augment with OpenCV on one thread each (the training step needs the cores), and stay quiet
    once the trainer is gone: after a SIGTERM, multiprocessing's thread that hands a batch's shared memory to it
    reports the broken pipe through sys.excepthook, a traceback on the user's terminal (2 runs in 8 here)."""
    import cv2

    cv2.setNumThreads(1)
    report = sys.excepthook

    def unless_trainer_gone(kind, value, trace) -> None:
        if not issubclass(kind, (BrokenPipeError, ConnectionResetError)):
            report(kind, value, trace)

    sys.excepthook = unless_trainer_gone


def save_checkpoint(path: Path, state: dict) -> None:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint to resume from (train without --resume first)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, pickle and zip errors for cut files
        raise ValueError(f"{path}: the checkpoint is damaged and cannot be resumed ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'truncated'}); restore a copy, or train "
                         "again without --resume into another --out") from err
    if not isinstance(state, dict) or not RESUME_KEYS <= state.keys():
        raise ValueError(f"{path}: not a train_light checkpoint (it lacks {', '.join(sorted(RESUME_KEYS))}); "
                         "to start from plain weights use --init instead of --resume")
    return state


def train(config: TrainConfig) -> Path:
    """Train as configured; returns the path of the last checkpoint."""
    prepare_output_dir(config.out)
    if not config.resume and (config.out / CHECKPOINT).is_file():
        raise ValueError(f"{config.out / CHECKPOINT}: an earlier run's checkpoint is there; pass --resume to "
                         "continue it, or another --out (nothing was overwritten)")
    if config.qat and not config.init:
        raise ValueError("--qat fine-tunes a trained float model: give its weights with --init")
    rank, world = distributed()
    recipe = RECIPES[entry(config.model).family]
    hw = config.hw or recipe.train_hw
    spec = entry(config.model).spec(*hw)
    device = torch.device(config.device)
    batch, base_lr = config.batch or recipe.batch, config.lr or recipe.lr
    faces = load_faces(config.data)
    if rank == 0:
        log.info("training %s at %dx%d on %s", config.model, *hw, faces.summary())
        if spec.has_landmarks and not faces.has_landmarks:
            log.warning("%s has a landmark head but %s has no landmark labels: the head stays untrained",
                        config.model, config.data)
    model = initial_model(config, recipe)
    qat = prepare_qat(model, config.qat) if config.qat else None
    teacher = Teacher(config.teacher, spec, threads=1) if config.teacher else None
    model.to(device, memory_format=torch.channels_last).train()  # 1.7x faster training steps on CPU here
    net = RawOutputs(model)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=base_lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay)
    history = History(config.out)
    checkpoint_path = config.out / CHECKPOINT
    start_epoch = resume(checkpoint_path, config, hw, model, optimizer, history, qat) if config.resume else 0
    dataset = TrainSet(faces, spec, recipe, config.seed, config.robust)
    if len(dataset) // world // batch == 0:
        raise ValueError(f"{config.data}: {len(dataset)} images make no batch of {batch} per process; "
                         "lower --batch")
    amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    sampler = EpochSampler(len(dataset), config.seed, start_epoch, rank, world)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=config.workers, drop_last=True,
                        pin_memory=device.type == "cuda", worker_init_fn=init_loader_worker,
                        persistent_workers=config.workers > 0)
    if start_epoch == 0 and not qat:  # QAT keeps BatchNorms frozen; a resumed run has them trained already
        unfold_batchnorms(model, lambda: (images.to(device, memory_format=torch.channels_last) for images, _ in
                                          itertools.islice(loader, UNFOLD_BATCHES)), net)
    for epoch in range(start_epoch, config.epochs):
        sampler.epoch = epoch
        row = run_epoch(net, loader, optimizer, scaler, recipe, spec, config, epoch, base_lr, amp, rank, world,
                        teacher)
        if rank == 0 and config.eval_every and ((epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs):
            row.update(evaluate(model, config))
            model.train()
        if rank == 0:
            history.add(row)
            save_checkpoint(checkpoint_path, checkpoint_state(config, spec, model, optimizer, epoch + 1, history,
                                                              qat))
            log.info("epoch %d/%d %s", epoch + 1, config.epochs,
                     " ".join(f"{k}={v}" for k, v in row.items() if k != "epoch"))
    if world > 1:
        dist.barrier()
    return checkpoint_path


def initial_model(config: TrainConfig, recipe) -> nn.Module:
    """The model with seeded initial weights (the recipe's head init), or the --init weights."""
    torch.manual_seed(config.seed)
    model = entry(config.model).builder()
    if recipe.init:
        recipe.init(model)
    if config.init:
        load_weights(model, config.model, Path(config.init))
    return model


def resume(path: Path, config: TrainConfig, hw: tuple[int, int], model: nn.Module, optimizer, history: History,
           qat: nn.Module | None = None) -> int:
    """Load model, optimizer and log from the checkpoint; returns the epochs it had done."""
    state = load_checkpoint(path)
    trained_hw = (state["spec"]["input_h"], state["spec"]["input_w"])
    if state["model_name"] != config.model or trained_hw != tuple(hw):
        raise ValueError(f"{path} trains {state['model_name']} at {trained_hw[0]}x{trained_hw[1]}, not "
                         f"{config.model} at {hw[0]}x{hw[1]}")
    started_for = state["config"]["epochs"]
    if started_for != config.epochs:  # the LR steps are fractions of the total: a new total moves them
        raise ValueError(f"{path} was started for {started_for} epochs; resume with --epochs {started_for} "
                         f"(another total would move the learning-rate steps mid-run)")
    now = {key: str(v) if isinstance(v := getattr(config, key), Path) else v for key in TRAJECTORY}
    changed = [f"--{key} {state['config'].get(key)} (now {now[key]})" for key in TRAJECTORY
               if state["config"].get(key) != now[key]]
    if changed:  # the run would no longer be the one the checkpoint belongs to, nor reproducible
        raise ValueError(f"{path} was trained with {', '.join(changed)}; resume with the same settings, or "
                         "start a new run into another --out")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    history.rows = state["history"]
    if qat is not None:
        qat.load_state_dict(state["qat"])
    log.info("resumed from %s after epoch %d", path, state["epoch"])
    return state["epoch"]


# settings a resumed run must share with its checkpoint
TRAJECTORY = ("batch", "lr", "seed", "robust", "qat", "teacher")


def run_epoch(net: nn.Module, loader: DataLoader, optimizer, scaler, recipe, spec: ModelSpec, config: TrainConfig,
              epoch: int, base_lr: float, amp: bool, rank: int, world: int, teacher: Teacher | None = None) -> dict:
    """One pass over the loader; returns the epoch's log row (mean losses, last rate, images/s)."""
    device = torch.device(config.device)
    sums: dict[str, float] = {}
    seen, started, steps = 0, time.perf_counter(), len(loader)
    # a bar only on a terminal: in a log file tqdm's first line (0/N) would stand for the whole epoch; the
    # epoch line after it says how it went
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", leave=False,
               disable=rank != 0 or not sys.stderr.isatty())
    for step, (images, targets) in enumerate(bar):
        lr = learning_rate(recipe, base_lr, epoch + step / steps, config.epochs)
        for group in optimizer.param_groups:
            group["lr"] = lr
        images = images.to(device, non_blocking=True, memory_format=torch.channels_last)
        targets = {k: v.to(device, non_blocking=True) for k, v in targets.items()}
        with torch.autocast(device.type, enabled=amp):
            outputs = net(images)
            losses = recipe.loss(outputs, targets, spec)
            if teacher is not None:
                losses.update(distill_loss(outputs, teacher(images), spec))
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        for key, value in {**losses, "loss": total}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach())
        seen += len(images) * world
        bar.set_postfix(loss=f"{sums['loss'] / (step + 1):.3f}", lr=f"{lr:.4g}",
                        img_s=f"{seen / (time.perf_counter() - started):.1f}")
    return {"epoch": epoch + 1, "lr": lr, "images_per_s": round(seen / (time.perf_counter() - started), 2),
            **{k: round(v / steps, 5) for k, v in sums.items()}}


def evaluate(model: nn.Module, config: TrainConfig) -> dict[str, float]:
    """AP on the val images at the evaluation size, through eval/ (the model switches to eval mode)."""
    from runtimes.files import shared_dir

    val = config.val_data or shared_dir() / "data" / "widerface"
    eval_spec = entry(config.model).spec(*config.eval_hw)
    ap = evaluate_model(model.to("cpu"), eval_spec, val, config.out / "eval", config.eval_images)
    model.to(config.device)
    return {f"ap_{k}": round(100 * v, 2) for k, v in ap.items()}


def checkpoint_state(config: TrainConfig, spec: ModelSpec, model: nn.Module, optimizer, epoch: int,
                     history: History, qat: nn.Module | None = None) -> dict:
    """Everything resume needs (with QAT, the observed ranges), plus the spec so the file says what it is."""
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()}
    state = {"model_name": config.model, "spec": spec.to_dict(), "epoch": epoch, "model": model.state_dict(),
             "optimizer": optimizer.state_dict(), "config": settings, "history": history.rows}
    if qat is not None:
        state["qat"] = qat.state_dict()
    return state
