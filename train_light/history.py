"""The training log: one row per epoch, written as CSV and drawn as a loss / AP plot after every epoch."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from runtimes.files import atomic_write_bytes, atomic_write_text


class History:
    def __init__(self, out: Path):
        self.out, self.rows = Path(out), []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.out / "log.csv", text.getvalue())
        self.plot(self.out / "training.png")

    def plot(self, path: Path) -> None:
        """Losses per epoch and, when evaluated, Easy/Medium/Hard AP on the same epoch axis; skipped without
        matplotlib."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return
        epochs = [r["epoch"] for r in self.rows]
        fig, (losses, ap) = plt.subplots(1, 2, figsize=(11, 4))
        for key in [k for k in self.rows[-1] if k in ("loss", "cls", "box", "bg", "landmarks")]:
            losses.plot(epochs, [r.get(key) for r in self.rows], label=key, lw=2 if key == "loss" else 1)
        losses.set(xlabel="epoch", ylabel="training loss (mean per batch)", title="loss", ylim=(0, None))
        losses.legend()
        for key, label in (("ap_easy", "Easy"), ("ap_medium", "Medium"), ("ap_hard", "Hard")):
            points = [(r["epoch"], r[key]) for r in self.rows if r.get(key) not in (None, "")]
            if points:
                ap.plot(*zip(*points), marker="o", label=label)
        ap.set(xlabel="epoch", ylabel="AP (%)", title="WIDER val AP", ylim=(0, 100), xlim=losses.get_xlim())
        if ap.lines:
            ap.legend()
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
        plt.close(fig)
        atomic_write_bytes(path, buffer.getvalue())
