"""ncnn adapter, and the .param reader the INT8 rewrite shares (one parser for both)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtimes.backends.base import Backend

PARAM_MAGIC = "7767517"


@dataclass
class NcnnLayer:
    """One .param line: type, name, bottom and top blob names, and its k=v params in file order."""

    type: str
    name: str
    bottoms: list[str]
    tops: list[str]
    params: dict[str, str]

    def line(self) -> str:
        fields = [f"{self.type:<24}", f"{self.name:<24}", str(len(self.bottoms)), str(len(self.tops)),
                  *self.bottoms, *self.tops, *(f"{k}={v}" for k, v in self.params.items())]
        return " ".join(fields)

    def int_param(self, key: str, default: int = 0) -> int:
        return int(self.params.get(key, default))


def read_param(path: Path) -> list[NcnnLayer]:
    """Layers of a text .param file; ValueError naming the file if it is not one."""
    lines = Path(path).read_text().split("\n")
    if not lines or lines[0].strip() != PARAM_MAGIC or len(lines) < 2:
        raise ValueError(f"{path}: not an ncnn .param file (first line must be {PARAM_MAGIC})")
    try:
        layer_count = int(lines[1].split()[0])
        layers = []
        for line in lines[2:2 + layer_count]:
            parts = line.split()
            n_in, n_out = int(parts[2]), int(parts[3])
            bottoms, tops = parts[4:4 + n_in], parts[4 + n_in:4 + n_in + n_out]
            params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out:])
            layers.append(NcnnLayer(parts[0], parts[1], bottoms, tops, params))
    except (IndexError, ValueError) as err:
        raise ValueError(f"{path}: malformed ncnn .param ({err})") from err
    if len(layers) != layer_count:
        raise ValueError(f"{path}: says {layer_count} layers, has {len(layers)}")
    return layers


def param_text(layers: list[NcnnLayer]) -> str:
    """The text of a .param file holding `layers`."""
    blobs = len({b for layer in layers for b in layer.tops})
    return "\n".join([PARAM_MAGIC, f"{len(layers)} {blobs}", *(layer.line() for layer in layers)]) + "\n"


def graph_io(layers: list[NcnnLayer]) -> tuple[str, list[str]]:
    """The input blob and the output blobs (produced, never consumed), in file order."""
    inputs = [layer.tops[0] for layer in layers if layer.type == "Input"]
    consumed = {b for layer in layers for b in layer.bottoms}
    outputs = [t for layer in layers for t in layer.tops if t not in consumed]
    if len(inputs) != 1:
        raise ValueError(f"expected one Input layer, found {len(inputs)}")
    return inputs[0], outputs


class NcnnBackend(Backend):
    def __init__(self, path, spec, threads=None):
        import ncnn

        super().__init__(path, spec, threads)
        self.input_name, self.output_names = graph_io(read_param(path))
        self.net = ncnn.Net()
        if threads:
            self.net.opt.num_threads = threads
        weights = Path(path).with_suffix(".bin")
        if self.net.load_param(str(path)) != 0 or not weights.is_file() or self.net.load_model(str(weights)) != 0:
            raise ValueError(f"{path}: ncnn cannot load this model (and {weights.name} beside it)")
        self._mat = ncnn.Mat

    def forward(self, blob: np.ndarray) -> list[np.ndarray]:
        with self.net.create_extractor() as extractor:
            extractor.input(self.input_name, self._mat(np.ascontiguousarray(blob[0])))
            return [np.array(extractor.extract(name)[1]) for name in self.output_names]
