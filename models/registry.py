"""The model registry: name → PyTorch builder and the spec of its outputs at a given input size."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models.families.scrfd import scrfd_spec
from models.families.ultraface import ultraface_spec
from models.scrfd import SCRFD, SCRFD_500M, SCRFD_500M_KPS
from models.spec import ModelSpec
from models.ultraface import UltraFace
from models.widths import fit_widths


@dataclass(frozen=True)
class ModelEntry:
    family: str
    builder: Callable[[], nn.Module]
    spec: Callable[[int, int], ModelSpec]


MODELS: dict[str, ModelEntry] = {
    "scrfd_500m": ModelEntry("scrfd", lambda: SCRFD(SCRFD_500M),
                             lambda h, w: scrfd_spec("scrfd_500m", h, w, landmarks=False)),
    "scrfd_500m_kps": ModelEntry("scrfd", lambda: SCRFD(SCRFD_500M_KPS),
                                 lambda h, w: scrfd_spec("scrfd_500m_kps", h, w, landmarks=True)),
    "ultraface_slim": ModelEntry("ultraface", lambda: UltraFace(rfb=False),
                                 lambda h, w: ultraface_spec("ultraface_slim", h, w)),
    "ultraface_rfb": ModelEntry("ultraface", lambda: UltraFace(rfb=True),
                                lambda h, w: ultraface_spec("ultraface_rfb", h, w)),
}


def entry(name: str) -> ModelEntry:
    """The registered model `name`; an unknown name is a ValueError listing the known ones (a user error)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(MODELS)}")
    return MODELS[name]


def build(name: str, weights: str | Path | None = None) -> nn.Module:
    """The model `name` in eval mode, with `weights` loaded when given (see load_weights)."""
    model = entry(name).builder()
    if weights is not None:
        load_weights(model, name, weights)
    return model.eval()


def load_weights(model: nn.Module, name: str, weights: str | Path) -> None:
    """Load `weights` into `model` (registered as `name`).

    A state dict (.pth/.pt) loads strictly; one of a structurally pruned model (the same keys, fewer channels)
    first resizes the model to it. An official insightface SCRFD .onnx has its folded weights imported.
    """
    if Path(weights).suffix == ".onnx":
        if entry(name).family != "scrfd":
            raise ValueError(f"{weights}: ONNX weights import only into SCRFD models, not {name}")
        from models.onnx_weights import load_scrfd_onnx_weights

        load_scrfd_onnx_weights(model, weights)
        return
    state = load_state_dict(weights)
    try:
        if state.keys() == model.state_dict().keys():
            fit_widths(model, state)
        model.load_state_dict(state, strict=True)
    except (RuntimeError, ValueError) as err:  # missing/unexpected keys, shape mismatches, other kernels
        first = str(err).splitlines()[0:3]
        raise ValueError(f"{weights}: these weights do not fit {name} ({' '.join(first)})") from err


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pth file (bare, or under 'state_dict'/'model'), with any 'module.' prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable PyTorch state dict ({err})") from err
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return {k.removeprefix("module."): v for k, v in state.items()}
