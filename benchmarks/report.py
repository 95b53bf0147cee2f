"""Benchmark results → results.json, results.csv, report.md, a latency-vs-threads plot per model set and, with
evaluation reports, an AP-vs-latency plot (the Pareto front users choose from). Several devices merge into one."""
from __future__ import annotations

import csv
import io
import json
import statistics
from collections import defaultdict
from pathlib import Path

from runtimes.files import atomic_write_bytes, atomic_write_text

CONVENTION = ("MACs count Conv (grouped/depthwise included), ConvTranspose, Gemm and MatMul; FLOPs = 2 × MACs + one "
              "operation per output element of every other computing node (pooling: kernel area); papers' "
              "'FLOPs' are mostly MACs (insightface's 0.5 GFLOPs for SCRFD-500M is a MAC count at 640×480).")
SETTINGS = ("easy", "medium", "hard")


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (device, artifact, threads): medians over repeats, and how far the repeats' medians differ."""
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["device"], row["artifact"], row["threads"])].append(row)
    lines = []
    for (device, artifact, threads), runs in grouped.items():
        first = runs[0]
        forward = [r["forward"]["median_ms"] for r in runs]
        e2e = [[r["end_to_end"][i]["median_ms"] for r in runs] for i in range(len(first["end_to_end"]))]
        lines.append({
            "device": device, "group": first["group"], "artifact": artifact, "folder": first["folder"],
            "runtime": first["runtime"],
            "precision": first["precision"], "size_mb": first["size_mb"], "input": first["input"],
            "macs": first.get("macs"), "flops": first.get("flops"), "params": first.get("params"),
            "threads": threads, "repeats": len(runs),
            "forward_ms": statistics.median(forward),
            "forward_p10_ms": statistics.median(r["forward"]["p10_ms"] for r in runs),
            "forward_p90_ms": statistics.median(r["forward"]["p90_ms"] for r in runs),
            "spread": statistics.median(r["forward"]["spread"] for r in runs),
            "repeat_range": (max(forward) - min(forward)) / min(forward),
            "preprocess_ms": statistics.median(r["preprocess"]["median_ms"] for r in runs),
            "postprocess_ms": (statistics.median(r["postprocess"]["median_ms"] for r in runs)
                               if all(r["postprocess"] for r in runs) else None),  # None: inside the forward
            "e2e_ms": [statistics.median(values) for values in e2e],
            "e2e_images": [f"{e['size'][0]}x{e['size'][1]}" for e in first["end_to_end"]],
            "faces": [e["faces"] for e in first["end_to_end"]],
            "rss_peak_mib": statistics.median(r["rss_peak_mib"] for r in runs),
            "rss_import_mib": statistics.median(r["rss_runtime_import_mib"] - r["rss_base_mib"] for r in runs),
            "rss_base_mib": statistics.median(r["rss_base_mib"] for r in runs),
        })
    for line in lines:
        single = [o for o in lines if o["device"] == line["device"] and o["artifact"] == line["artifact"]
                  and o["threads"] == 1]
        line["speedup_vs_1"] = single[0]["forward_ms"] / line["forward_ms"] if single else None
    return lines


def write_report(results: list[dict], out: Path, eval_reports: list[Path] = ()) -> list[Path]:
    """results: one dict per device run ({'device', 'rows', 'notes', 'settings'}). Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [row for result in results for row in result["rows"]]
    lines = summarize(rows)
    emulated = {r["device"]["label"] for r in results if r["device"].get("emulated")}
    timed = [line for line in lines if line["device"] not in emulated]  # emulated times are not timings: not in
    # the CSV, the tables or the plots (results.json keeps the raw rows, labelled by their device record)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1) + "\n")
    atomic_write_text(out / "results.csv", to_csv(timed))
    plots = [plot_threads(timed, out / f"latency_vs_threads_{group}.png", group)
             for group in sorted({line["group"] for line in timed})]
    ap = load_ap(eval_reports)
    if ap and timed:
        plots.append(plot_ap_latency(timed, ap, out / "ap_vs_latency.png"))
    atomic_write_text(out / "report.md", markdown(results, lines, plots, ap))
    return [out / "results.json", out / "results.csv", out / "report.md", *plots]


CSV_FIELDS = ("device", "artifact", "runtime", "precision", "size_mb", "input", "macs", "flops", "params", "threads",
              "repeats", "forward_ms", "forward_p10_ms", "forward_p90_ms", "spread", "repeat_range",
              "speedup_vs_1", "preprocess_ms", "postprocess_ms", "e2e_ms", "e2e_images", "rss_peak_mib",
              "rss_import_mib", "rss_base_mib")


def to_csv(lines: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for line in lines:
        writer.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else
                         round(v, 4) if isinstance(v, float) else v for k, v in line.items()})
    return buffer.getvalue()


def _millions(value) -> str:
    return "–" if not value else f"{value / 1e6:.0f}"


def _fmt(value, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown(results: list[dict], lines: list[dict], plots: list[Path], ap: dict) -> str:
    text = ["# Benchmarks", "", "Each row: a fresh process pinned to that many cores (`os.sched_setaffinity`), "
            "warm-up, then timed rounds that run, in turn, the backend alone on the 640×480 image's input blob "
            "(forward), preprocessing, decode + NMS, and `Detector` end to end on each BGR image (score 0.5), so "
            "outside load hits them alike. Median = the lowest of three consecutive block medians (the device "
            "unloaded); spread = (p90 − p10) / median over all runs; range = (max − min) / min of the medians of "
            "the repeats (fresh processes). Peak RSS of the whole process; import = what importing the runtime "
            "package added.", "", f"FLOPs convention: "
            f"{CONVENTION}", ""]
    for result in results:
        device, settings = result["device"], result.get("settings", {})
        text += [f"## {device['label']}" + (" (emulated)" if device.get("emulated") else ""), "",
                 f"CPU {device['cpu']}, {device['machine']}, {device['usable_cores']} of {device['cores']} cores, "
                 f"max {_fmt(device['max_mhz'], 0)} MHz; SIMD: {', '.join(device['simd']) or 'none found'}; "
                 f"{device['os']}, Python {device['python']}; "
                 + ", ".join(f"{k} {v}" for k, v in device["runtimes"].items())
                 + f". Runs {settings.get('runs')} after {settings.get('warmup')} warm-up.", ""]
        if device.get("emulated"):
            text += emulated_table([line for line in lines if line["device"] == device["label"]])
            text += [f"- {note}" for note in result.get("notes", [])] + [""]
            continue
        for group in sorted({line["group"] for line in lines if line["device"] == device["label"]}):
            rows = [line for line in lines if line["device"] == device["label"] and line["group"] == group]
            first = rows[0]
            sizes = " / ".join(first["e2e_images"])
            text += [f"### {group} (input {first['input']})", "",
                     f"| artifact | precision | MB | MMACs | MFLOPs | threads | forward ms | p90 | spread | range | "
                     f"×1 thread | end to end ms ({sizes}) | e2e / forward | peak RSS MiB | import MiB |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
            for r in sorted(rows, key=lambda r: (r["artifact"], r["threads"])):
                text.append(f"| {r['artifact'].split('/')[-1]} | {r['precision']} | {r['size_mb']:.2f} | "
                            f"{_millions(r['macs'])} | {_millions(r['flops'])} | {r['threads']} | "
                            f"{r['forward_ms']:.2f} | {r['forward_p90_ms']:.2f} | "
                            f"{100 * r['spread']:.0f}% | {100 * r['repeat_range']:.0f}% | "
                            f"{_fmt(r['speedup_vs_1'])} | {' / '.join(f'{v:.2f}' for v in r['e2e_ms'])} | "
                            f"{r['e2e_ms'][0] / r['forward_ms']:.2f} | {r['rss_peak_mib']:.0f} | "
                            f"{r['rss_import_mib']:.0f} |")
            text.append("")
        text += [f"- {note}" for note in result.get("notes", [])] + [""]
    if ap:
        text += ["AP (WIDER protocol, from the evaluation reports given) against forward time at 1 thread: "
                 "`ap_vs_latency.png`.", ""]
    text += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    return "\n".join(text)


MARKERS = "osD^vP*Xp<>h"


def styles(names: list[str]) -> dict[str, dict]:
    """One colour and marker per name, the same in every plot (tab20 has enough distinct colours for a set)."""
    import matplotlib

    colors = matplotlib.colormaps["tab20"].colors
    return {name: {"color": colors[(2 * i) % 20 + (2 * i // 20) % 2], "marker": MARKERS[i % len(MARKERS)]}
            for i, name in enumerate(sorted(set(names)))}


def emulated_table(lines: list[dict]) -> list[str]:
    """What an emulated run proves: each artifact loaded and ran at each thread count; faces found per image."""
    text = ["**Emulated (qemu-user): these runs prove that each artifact runs on this instruction set; emulated "
            "times are hundreds of times a real core's and are not shown.**", "",
            "| artifact | threads | faces found (" + " / ".join(lines[0]["e2e_images"]) + ") |", "|---|---|---|"]
    for r in sorted(lines, key=lambda r: (r["artifact"], r["threads"])):  # no RSS either: it would be QEMU's
        text.append(f"| {r['artifact']} | {r['threads']} | {' / '.join(map(str, r['faces']))} |")
    return text + [""]


def plot_threads(lines: list[dict], path: Path, group: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    keys = sorted({(r["device"], r["artifact"]) for r in lines if r["group"] == group})
    style = styles([f"{device} {artifact}" for device, artifact in keys])
    for (device, artifact) in keys:
        rows = sorted((r for r in lines if r["artifact"] == artifact and r["device"] == device),
                      key=lambda r: r["threads"])
        threads = [r["threads"] for r in rows]
        median = [r["forward_ms"] for r in rows]
        # the median is the lowest block median, which can sit below p10 of all runs when runs are few
        errors = [[max(0.0, m - r["forward_p10_ms"]) for m, r in zip(median, rows)],
                  [max(0.0, r["forward_p90_ms"] - m) for m, r in zip(median, rows)]]
        label = artifact.split("/")[-1] + (f" ({device})" if len({r['device'] for r in lines}) > 1 else "")
        ax.errorbar(threads, median, yerr=errors, capsize=3, label=label, **style[f"{device} {artifact}"])
    ax.set(xlabel="threads (pinned cores)", ylabel="forward ms (median, p10–p90)", title=f"{group}: latency vs threads")
    ax.set_xticks(sorted({r["threads"] for r in lines}))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    return _save(fig, path)


def load_ap(reports: list[Path]) -> dict[str, dict]:
    """Artifact folder (resolved) → AP per setting, from python -m eval report.json files."""
    ap = {}
    for report in reports:
        data = json.loads(Path(report).read_text())
        for model in data["models"]:
            source = Path(model["source"])
            ap[str((source if source.is_dir() else source.parent).resolve())] = model["ap"]
    return ap


def plot_ap_latency(lines: list[dict], ap: dict[str, dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(r, ap[r["folder"]]) for r in lines if r["threads"] == 1 and r.get("folder") in ap]
    style = styles([r["artifact"] for r, _ in points])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5))
    for ax, setting in zip(axes, SETTINGS):
        for r, a in points:
            ax.scatter(r["forward_ms"], 100 * a[setting], s=50, label=r["artifact"], **style[r["artifact"]])
        front = pareto([(r["forward_ms"], 100 * a[setting]) for r, a in points])
        ax.plot(*zip(*front), color="tab:red", alpha=0.5, zorder=0)
        ax.set(xlabel="forward ms, 1 thread", ylabel=f"{setting.capitalize()} AP (%)", title=setting.capitalize())
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8)
    fig.subplots_adjust(right=0.78)
    fig.suptitle("Accuracy vs latency (red: the Pareto front, not beaten on both by any other artifact)")
    return _save(fig, path)


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both (lower x, higher y), by increasing x."""
    front, best = [], float("-inf")
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


def _save(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path
