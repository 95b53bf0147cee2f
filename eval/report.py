"""report.json, report.md (side by side, deltas against the first model) and a PR-curve PNG."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

from eval.evaluate import ModelResult
from eval.groundtruth import SETTINGS, GroundTruth
from runtimes.files import atomic_write_text


def dataset_summary(truth: GroundTruth, data_dir: Path) -> dict:
    faces = truth.face_counts()
    return {"data": str(data_dir), "images_evaluated": len(truth.images), "images_listed": truth.listed_images,
            "faces_evaluated": faces, "faces_listed": truth.listed_faces,
            "subset": len(truth.images) < truth.listed_images}


def write_reports(models: list[ModelResult], truth: GroundTruth, data_dir: Path, out: Path) -> None:
    summary = dataset_summary(truth, data_dir)
    report = {"dataset": summary, "models": [{
        "label": m.label, "source": m.source, "ap": m.ap(), "protocol": m.protocol, "timing": m.timing,
        "per_event_ap": m.per_event, "missing_predictions": m.missing, "unreadable_images": m.unreadable,
    } for m in models]}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown(models, summary))
    plot_pr(models, out / "pr_curves.png")


def markdown(models: list[ModelResult], summary: dict) -> str:
    base = models[0].ap()
    lines = ["# WIDER FACE evaluation", ""]
    if summary["subset"]:
        lines += [f"**Subset:** {summary['images_evaluated']} of the {summary['images_listed']} official "
                  "val images are present, so this AP is not the published full-val AP; compare models side by side. "
                  "Faces counted (easy/medium/hard): "
                  + " / ".join(str(summary["faces_evaluated"][s]) for s in SETTINGS)
                  + " of " + " / ".join(str(summary["faces_listed"][s]) for s in SETTINGS) + ".", ""]
    lines += ["| model | Easy | Medium | Hard | Δ Easy | Δ Medium | Δ Hard | images/s | overhead |",
              "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        ap = m.ap()
        deltas = [f"{round(100 * (ap[s] - base[s]), 2) + 0.0:+.2f}" for s in SETTINGS]  # + 0.0: no "-0.00"
        speed = f"{m.timing['images_per_s']:.1f}" if m.timing else "–"
        overhead = f"{100 * m.timing['overhead_share']:.1f}%" if m.timing else "–"
        lines.append(f"| {m.label} | " + " | ".join(f"{100 * ap[s]:.2f}" for s in SETTINGS) + " | "
                     + " | ".join(deltas) + f" | {speed} | {overhead} |")
    lines += ["", "AP in percent; Δ against the first model. Overhead: 1 − (images × the backend's forward time "
              "alone) / wall time, i.e. what reading, preprocessing, decode + NMS, writing and scoring add.",
              "", "## Protocol", ""]
    for m in models:
        p = m.protocol
        if p:
            lines.append(f"- {m.label}: input {p['hw'][0]}x{p['hw'][1]}, {p['resize']}, "
                         f"score ≥ {p['score_threshold']}, "
                         f"NMS {p['nms_threshold']}, pre-NMS top-k {p.get('pre_nms_top_k')}, max det {p['max_det']}, "
                         f"threads {p['threads']}")
        else:
            lines.append(f"- {m.label}: existing predictions from {m.source}")
    lines += ["", "## Time split", "", "Stage totals in seconds. Reading and preprocessing run ahead on one thread, "
              "decode + NMS and writing behind on another, so stages overlap and do not add up to the wall time.", "",
              "| model | read | preprocess | forward (in pipeline) | decode+NMS | write | scoring | wall "
              "| forward alone (ms/img) |", "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        if m.timing:
            t = m.timing
            lines.append(f"| {m.label} | " + " | ".join(f"{t[k]:.2f}" for k in
                         ("read", "preprocess", "forward", "postprocess", "write", "scoring", "wall"))
                         + f" | {t['forward_alone_ms']:.2f} |")
    events = sorted(models[0].per_event)
    lines += ["", "## AP per event (Easy / Medium / Hard)", "",
              "| event | " + " | ".join(m.label for m in models) + " |", "|---|" + "---|" * len(models)]
    for e in events:
        cells = [" / ".join(f"{100 * m.per_event[e][s]:.1f}" for s in SETTINGS) for m in models]
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    problems = [(m.label, m.unreadable, m.missing) for m in models if m.unreadable or m.missing]
    if problems:
        lines += ["", "## Images without predictions", ""]
        for label, unreadable, missing in problems:
            if unreadable:
                lines.append(f"- {label}: {len(unreadable)} unreadable (skipped): {', '.join(unreadable)}")
            if missing:
                lines.append(f"- {label}: {len(missing)} without a prediction file (scored as no detections): "
                             f"{', '.join(missing[:10])}{' …' if len(missing) > 10 else ''}")
    return "\n".join(lines) + "\n"


def plot_pr(models: list[ModelResult], path: Path) -> None:
    """Easy/Medium/Hard precision-recall panels, one line per model (needs matplotlib: the `plots` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    for ax, setting in zip(axes, SETTINGS):
        for m, style in zip(models, itertools.cycle(("-", "--", ":", "-."))):
            r = m.results[setting]
            ax.plot(r.recall, r.precision, style, linewidth=1.8, label=f"{m.label} ({100 * r.ap:.2f})")
        ax.set(title=f"WIDER {setting}", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
