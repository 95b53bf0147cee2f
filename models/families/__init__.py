"""Detector families, one torch-free module each (its outputs, spec, preprocessing, scores and decoder).

Adding a family: one module with a Family subclass and FAMILY, and its line in FAMILIES.
"""
from __future__ import annotations

from models.families import scrfd, ultraface, yunet
from models.families.family import Family

FAMILIES: dict[str, Family] = {f.name: f for f in (scrfd.FAMILY, ultraface.FAMILY, yunet.FAMILY)}


def family(name: str) -> Family:
    """The family called `name`; an unknown name is a ValueError listing the known ones."""
    if name not in FAMILIES:
        raise ValueError(f"unknown family {name!r}; known: {', '.join(FAMILIES)}")
    return FAMILIES[name]


def family_help() -> str:
    """The known families, one clause each, for --family's help."""
    return "; ".join(f"{f.name}: {f.summary}" for f in FAMILIES.values())


__all__ = ["FAMILIES", "Family", "family", "family_help"]
