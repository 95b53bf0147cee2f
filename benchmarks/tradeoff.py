"""python -m benchmarks.tradeoff --results results.json --eval report.json ... --panel TITLE=GROUP,... --out PNG:
the compression trade-off on one chart: every variant of a model (float, INT8 per backend, pruned, QAT,
distilled) as AP against forward time at 1 thread and against file size, one row per model, Pareto fronts marked."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.report import _save, load_ap, pareto, styles, summarize
from runtimes.cli import run_cli

SETTING = "medium"  # the AP plotted: WIDER Medium (Easy and Hard are in the tables beside the chart)


def parse_panel(text: str) -> tuple[str, list[str]]:
    title, _, groups = text.rpartition("=")
    if not title or not groups:
        raise argparse.ArgumentTypeError(f"expected TITLE=GROUP[,GROUP...], got {text!r}")
    return title, [g for g in groups.split(",") if g]


def points(lines: list[dict], ap: dict[str, dict], groups: list[str]) -> list[dict]:
    """The 1-thread rows of `groups` that have an AP: label, forward ms, MB and AP (%)."""
    return [{"label": line["artifact"].replace(f"_{line['input']}/", " "), "ms": line["forward_ms"],
             "mb": line["size_mb"], "ap": 100 * ap[line["folder"]][SETTING]}
            for line in lines if line["threads"] == 1 and line["group"] in groups and line["folder"] in ap]


def plot(panels: list[tuple[str, list[dict]]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 2, figsize=(15, 5.5 * len(panels)), squeeze=False)
    for row, (title, pts) in zip(axes, panels):
        style = styles([p["label"] for p in pts])
        for ax, key, xlabel in zip(row, ("ms", "mb"), ("forward ms, 1 thread", "file MB")):
            for p in pts:
                ax.scatter(p[key], p["ap"], s=45, **style[p["label"]])
                ax.annotate(p["label"], (p[key], p["ap"]), fontsize=7, xytext=(4, 2), textcoords="offset points")
            front = pareto([(p[key], p["ap"]) for p in pts])
            ax.plot(*zip(*front), color="tab:red", alpha=0.5, zorder=0, label="Pareto front")
            ax.set(xlabel=xlabel, ylabel=f"{SETTING.capitalize()} AP (%)", title=f"{title}: AP vs {xlabel}")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right", fontsize=8)
    fig.suptitle("Compression trade-off (WIDER val subset, this machine's x86 cores; red: not beaten on both axes)")
    fig.tight_layout()
    return _save(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.tradeoff", description=__doc__.split(": ", 1)[1].strip())
    p.add_argument("--results", type=Path, action="append", required=True,
                   help="a python -m benchmarks results.json (repeatable)")
    p.add_argument("--eval", type=Path, action="append", required=True,
                   help="a python -m eval report.json with the AP of the benchmarked artifacts (repeatable)")
    p.add_argument("--panel", type=parse_panel, action="append", required=True,
                   help="one row of the chart: its title and the artifact groups (the folders converters wrote, "
                        "e.g. facekit_slim_640x640) it shows (repeatable)")
    p.add_argument("--out", type=Path, required=True, help="the PNG to write")
    args = p.parse_args(argv)
    rows = [row for path in args.results for result in json.loads(path.read_text()) for row in result["rows"]]
    lines, ap = summarize(rows), load_ap(args.eval)
    panels = [(title, points(lines, ap, groups)) for title, groups in args.panel]
    empty = [title for title, pts in panels if not pts]
    if empty:
        raise ValueError(f"no benchmarked artifact with an AP for {', '.join(empty)}: check the groups and --eval")
    print(plot(panels, args.out))
    return 0


if __name__ == "__main__":
    run_cli(main)
