"""Model definitions and their specs. Importing this package needs no torch; `build` imports it when called."""
from models.spec import ModelSpec, Provenance


def build(name: str, weights=None):
    """Build the registered PyTorch model `name` (see models.registry.MODELS), loading `weights` strictly."""
    from models.registry import build as _build

    return _build(name, weights)


__all__ = ["ModelSpec", "Provenance", "build"]
