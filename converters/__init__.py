"""PyTorch/ONNX → verified TFLite, NCNN, MNN and ONNX Runtime artifacts; each backend runs as
`python -m converters.<name>`, all of them as `python -m converters.all`, and from Python as
`converters.convert(...)` (converters/api.py)."""

_API = ("convert", "ConvertOptions", "Source")


def __getattr__(name: str):
    """The Python API, imported on first use: `python -m converters.describe` need not load every backend."""
    if name in _API:
        from converters import api, options

        return getattr(api if name == "convert" else options, name)
    raise AttributeError(f"module 'converters' has no attribute {name!r}")


__all__ = list(_API)
