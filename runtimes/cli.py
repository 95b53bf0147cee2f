"""The one way every facekit command exits: user errors print one clear line and exit 2, never a traceback."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable


def run_cli(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a command's main; FileNotFoundError/ValueError (bad input) → 'error: …' and exit 2, else main's code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        code = main(argv)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        code = 2
    sys.exit(code)


def hw_argument(text: str) -> tuple[int, int]:
    """argparse type for 'H,W' (each divisible by 32): a bad value is a usage error naming the valid sizes."""
    from models.spec import parse_hw

    try:
        return parse_hw(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
