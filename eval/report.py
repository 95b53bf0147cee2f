"""report.json, report.md (side by side, deltas against the first model) and a PR-curve PNG."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

from eval.breakdown import SIZE_SETTING
from eval.degrade import DEGRADATIONS, KINDS, severity_order
from eval.evaluate import OFFICIAL, ModelResult, Scoring
from eval.groundtruth import SETTINGS, GroundTruth
from runtimes.files import atomic_write_text


def dataset_summary(truth: GroundTruth, data_dir: Path) -> dict:
    faces = truth.face_counts()
    return {"data": str(data_dir), "images_evaluated": len(truth.images), "images_listed": truth.listed_images,
            "faces_evaluated": faces, "faces_listed": truth.listed_faces,
            "subset": len(truth.images) < truth.listed_images}


def write_reports(models: list[ModelResult], truth: GroundTruth, data_dir: Path, out: Path,
                  scoring: Scoring = OFFICIAL) -> None:
    summary = dataset_summary(truth, data_dir)
    report = {"dataset": summary, "scoring": {"iou_threshold": scoring.iou_threshold,
                                              "operating_score": scoring.operating_score},
              "models": [{
                  "label": m.label, "source": m.source, "ap": m.ap(), "protocol": m.protocol, "timing": m.timing,
                  "operating_point": m.operating_point, "by_size": m.by_size,
                  "degradations": m.degradations, "per_event_ap": m.per_event, "missing_predictions": m.missing,
                  "unreadable_images": m.unreadable,
              } for m in models]}
    atomic_write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(out / "report.md", markdown(models, summary, scoring))
    plot_pr(models, out / "pr_curves.png")
    if any(m.degradations for m in models):
        plot_degradations(models, out / "degradations.png")


def markdown(models: list[ModelResult], summary: dict, scoring: Scoring = OFFICIAL) -> str:
    base = models[0].ap()
    lines = ["# WIDER FACE evaluation", ""]
    if scoring.iou_threshold != OFFICIAL.iou_threshold:
        lines += [f"**Match IoU {scoring.iou_threshold}**, not the official 0.5: rough-detection protocol "
                  "(loose boxes count as found); not comparable with published WIDER AP.", ""]
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
              "alone) / wall time, i.e. what reading, preprocessing, decode + NMS, writing and scoring add.", ""]
    lines += operating_lines(models, scoring) + size_lines(models, scoring) + degradation_lines(models)
    lines += ["## Protocol", ""]
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


def operating_lines(models: list[ModelResult], scoring: Scoring) -> list[str]:
    lines = ["## Operating point", "",
             f"Precision / recall / F1 (percent) at the deployment score {scoring.operating_score} "
             "(`--operating-score`) and at the raw score that maximises F1, per face set. Detections of faces "
             "outside a set are ignored, as the protocol ignores them; duplicates are false positives.", "",
             "| model | set | P | R | F1 | best-F1 score | P | R | F1 |", "|---|---|---|---|---|---|---|---|---|"]
    for m in models:
        for s in SETTINGS:
            at, best = m.operating_point[s]["at_score"], m.operating_point[s]["best_f1"]
            lines.append(f"| {m.label} | {s} | " + " | ".join(f"{100 * at[k]:.1f}" for k in ("precision", "recall",
                         "f1")) + f" | {best['score']:.3f} | "
                         + " | ".join(f"{100 * best[k]:.1f}" for k in ("precision", "recall", "f1")) + " |")
    return lines + [""]


def size_lines(models: list[ModelResult], scoring: Scoring) -> list[str]:
    buckets = list(models[0].by_size)
    faces = " / ".join(str(models[0].by_size[b]["faces"]) for b in buckets)
    lines = ["## Face sizes", "",
             f"Recall at score {scoring.operating_score} and AP (percent) per face height in image pixels, over the "
             f"{SIZE_SETTING.capitalize()} set's faces ({faces} faces). Within a bucket, faces of other sizes and "
             "unmatched detections of other sizes are ignored.", "",
             "| model | " + " | ".join(f"{b} px recall / AP" for b in buckets) + " |",
             "|---|" + "---|" * len(buckets)]
    for m in models:
        cells = [f"{100 * m.by_size[b]['recall']:.1f} / {100 * m.by_size[b]['ap']:.1f}" for b in buckets]
        lines.append(f"| {m.label} | " + " | ".join(cells) + " |")
    return lines + [""]


def degradation_lines(models: list[ModelResult]) -> list[str]:
    names = [n for n in DEGRADATIONS if any(n in m.degradations for m in models)]
    if not names:
        return []
    lines = ["## Hard conditions", "",
             "AP Easy / Medium / Hard (percent) on degraded copies of every val image (made on the fly, seeded per "
             "image; `eval/degrade.py`); clean is the plain run. Chart: degradations.png.", "",
             "| condition | " + " | ".join(m.label for m in models) + " |", "|---|" + "---|" * len(models)]
    rows = [("clean", "as read", [m.ap() for m in models])]
    rows += [(n, DEGRADATIONS[n].description, [m.degradations.get(n) for m in models]) for n in names]
    for name, description, aps in rows:
        cells = [" / ".join(f"{100 * ap[s]:.1f}" for s in SETTINGS) if ap else "–" for ap in aps]
        lines.append(f"| {name} ({description}) | " + " | ".join(cells) + " |")
    return lines + [""]


def plot_degradations(models: list[ModelResult], path: Path) -> None:
    """AP against severity, one panel per degradation kind and face set, one line per model."""
    plt = pyplot()
    if plt is None:
        return
    kinds = [k for k in KINDS if any(n.startswith(f"{k}-") for m in models for n in m.degradations)]
    fig, axes = plt.subplots(len(SETTINGS), len(kinds), figsize=(3.2 * len(kinds) + 1, 8.5), squeeze=False,
                             sharey="row", constrained_layout=True)
    for col, kind in enumerate(kinds):
        severities = ["clean"] + severity_order(kind)
        for row, setting in enumerate(SETTINGS):
            ax = axes[row, col]
            for m, style in zip(models, itertools.cycle(("o-", "s--", "^:", "d-."))):
                points = [(i, m.ap()[setting] if sev == "clean" else m.degradations[f"{kind}-{sev}"][setting])
                          for i, sev in enumerate(severities)
                          if sev == "clean" or f"{kind}-{sev}" in m.degradations]
                ax.plot(*zip(*[(i, 100 * v) for i, v in points]), style, linewidth=1.6, label=m.label)
            ax.set_xticks(range(len(severities)), severities, fontsize=8)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.set_title(kind)
            if col == 0:
                ax.set_ylabel(f"AP {setting} (%)")
    axes[0, 0].legend(fontsize=7, loc="lower left")
    save(fig, plt, path)


def pyplot():
    """matplotlib's pyplot on the Agg backend, or None without matplotlib (the `plots` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def save(fig, plt, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def plot_pr(models: list[ModelResult], path: Path) -> None:
    """Easy/Medium/Hard precision-recall panels, one line per model (needs matplotlib: the `plots` extra)."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), constrained_layout=True)
    for ax, setting in zip(axes, SETTINGS):
        for m, style in zip(models, itertools.cycle(("-", "--", ":", "-."))):
            r = m.results[setting]
            ax.plot(r.recall, r.precision, style, linewidth=1.8, label=f"{m.label} ({100 * r.ap:.2f})")
        ax.set(title=f"WIDER {setting}", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.01))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    save(fig, plt, path)
