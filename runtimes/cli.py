"""The one way every facekit command exits: user errors print one clear line and exit 2, never a traceback."""
from __future__ import annotations

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
