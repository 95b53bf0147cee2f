"""Run one of MNN's compiled tools in a fresh interpreter: `python -m converters.mnn_tools mnnconvert ARGS...`.

MNN's `_tools` extension and TensorFlow each bundle protobuf: importing `_tools` after TensorFlow aborts the
process (descriptor clash), so converters call the tools through this module in a child process. It imports
`_tools` alone, never `MNN.tools` (whose import pip-installs a package and sends telemetry).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TOOLS = ("mnnconvert", "mnnquant")


def run_tool(tool: str, args: list[str], log: Path) -> None:
    """Run `tool` with `args` in a child interpreter, its output appended to `log`; RuntimeError on failure."""
    with open(log, "ab") as out:
        result = subprocess.run([sys.executable, "-m", "converters.mnn_tools", tool, *args],
                                stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = Path(log).read_text(errors="replace").splitlines()[-5:]
        raise RuntimeError(f"MNN {tool} failed (exit {result.returncode}): " + " | ".join(tail))


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in TOOLS:
        print(f"usage: python -m converters.mnn_tools {{{','.join(TOOLS)}}} ARGS...", file=sys.stderr)
        return 2
    try:
        import _tools  # the compiled tools the MNN wheel ships
    except ImportError:
        print("MNN's converter tools are missing: pip install MNN", file=sys.stderr)
        return 2
    tool, *args = argv
    return 0 if getattr(_tools, tool)([tool, *args]) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
