"""How time and peak memory grow with the work, to catch a step that scales worse than it should.

Series: the MMD test against samples per side (d=128; the exact permutation test up to 10,000
pooled points, the block estimator above), feature extraction and one training epoch against
dataset size (the built-in digits CNN at 16x16), report rendering against explained examples
(synthetic run directories from xferdiag/testing.py). Each series runs in a fresh process,
after one small warm-up, smallest size first; memory is the peak rise of resident memory during
the timed call, above what its inputs already hold. The last row of each series gives the log-log
slope of time against size (1 is linear). The panels are saved to reports/scaling.png.

    python -m benchmarks.bench_scaling [--quick]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import in_fresh_process, peak_rss_growth, print_table, timed
from xferdiag.analyzers import mmd_test
from xferdiag.commands.finetune import finetune
from xferdiag.config import RunConfig
from xferdiag.engine.features import extract_features
from xferdiag.models.builtin import DigitsCNN
from xferdiag.models.surgery import split_classifier
from xferdiag.report import render_report
from xferdiag.rundir import atomic_path, read_csv
from xferdiag.testing import write_full_run

PLOT = Path(__file__).resolve().parent.parent / "reports" / "scaling.png"
D = 128
PERMUTATIONS = 1000


def mmd(n: int, tmp: Path) -> Callable[[], dict]:
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, D), dtype=np.float32)
    y = rng.standard_normal((n, D), dtype=np.float32) + 0.05

    def work():
        return {"estimator": mmd_test(x, y, n_permutations=PERMUTATIONS, device="cpu").estimator}
    return work


def features(n: int, tmp: Path) -> Callable[[], dict]:
    backbone, _ = split_classifier(DigitsCNN())
    data = torch.utils.data.TensorDataset(torch.rand(n, 1, 16, 16), torch.zeros(n, dtype=torch.long))

    def work():
        extract_features(backbone, data)
        return {}
    return work


def training_epoch(n: int, tmp: Path) -> Callable[[], dict]:
    """Fine-tune all layers for two epochs through the public API; time = median epoch (train + val)."""
    rng = np.random.default_rng(n)
    data, checkpoint = tmp / f"digits-{n}.npz", tmp / "digits-cnn.pt"
    np.savez(data, x=rng.integers(0, 256, (n, 16, 16), dtype=np.uint8), y=np.arange(n) % 10)
    torch.save(DigitsCNN().state_dict(), checkpoint)
    config = RunConfig(data=str(data), model="builtin:digits-cnn", pretrained_checkpoint=str(checkpoint),
                       strategy="full", epochs=2, seeds=1, baseline="none", val_fraction=0.1, test_fraction=0.1)

    def work():
        out = finetune(config, tmp / f"run-{n}", quiet=True)
        history = read_csv(out / "arms/transfer/seed-0/history.csv")
        return {"seconds": statistics.median(float(row["seconds"]) for row in history)}
    return work


def report(n: int, tmp: Path) -> Callable[[], dict]:
    run = write_full_run(tmp / f"report-{n}", classes=[f"class {i}" for i in range(10)], seeds=(0, 1, 2),
                         n_test=300, epochs=20, n_explained=n, size=32, channels=3)
    return lambda: {"size_mb": len(render_report(run).html.encode()) / 1e6}


@dataclass(frozen=True)
class Series:
    label: str
    unit: str
    make: Callable[[int, Path], Callable[[], dict]]
    warmup: int
    full: tuple[int, ...]
    quick: tuple[int, ...]


SERIES = {
    "mmd": Series(f"MMD test d={D} B={PERMUTATIONS}", "samples per side", mmd, 100,
                  (250, 500, 1000, 2000, 4000, 20_000, 50_000, 100_000), (250, 500, 1000, 20_000)),
    "features": Series("feature extraction, digits CNN 16x16", "images", features, 256,
                       (1000, 2000, 4000, 8000, 16_000), (500, 1000, 2000)),
    "training": Series("training epoch (80% train + 10% val), digits CNN", "images", training_epoch, 200,
                       (500, 1000, 2000, 4000, 8000), (250, 500, 1000)),
    "report": Series("report render, 10 classes, 3 seeds", "explained examples", report, 2,
                     (2, 8, 32, 128), (2, 8, 32)),
}


def measure_series(key: str, sizes: tuple[int, ...]) -> list[dict]:
    """Run in a fresh process: one warm-up (imports, first-call costs), then each size in turn.

    ``work`` returns extras for the row; a ``seconds`` among them replaces the wall time.
    """
    series = SERIES[key]
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        warmup = Path(tmp, "warmup")
        warmup.mkdir()
        series.make(series.warmup, warmup)()
        for n in sizes:
            work = series.make(n, Path(tmp))
            with peak_rss_growth() as memory:
                extras, seconds = timed(work)
            points.append({"n": n, "xferdiag_s": extras.pop("seconds", seconds), "peak_mb": memory["peak_mb"], **extras})
    return points


def _slope(points: list[dict]) -> float | None:
    if len(points) < 2:
        return None
    return float(np.polyfit([math.log(p["n"]) for p in points], [math.log(p["xferdiag_s"]) for p in points], 1)[0])


def _groups(rows: list[dict]) -> dict[tuple[str, str | None], list[dict]]:
    """Rows per curve, keyed (series, MMD estimator or None): the two estimators have different costs."""
    groups: dict[tuple[str, str | None], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["series"], row.get("estimator")), []).append(row)
    return groups


def _short(n: float) -> str:
    return f"{n / 1000:g}k" if n >= 1000 else f"{n:g}"


def plot(rows: list[dict], path: Path, quick: bool) -> None:
    """Time (top) and peak memory rise (bottom) against size, log-log, one column per series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, axes = plt.subplots(2, len(SERIES), figsize=(3.6 * len(SERIES), 6.5), squeeze=False)
    for col, (key, series) in enumerate(SERIES.items()):
        top, bottom = axes[:, col]
        sizes = sorted({row["n"] for row in rows if row["series"] == key})
        for (series_key, estimator), points in _groups(rows).items():
            if series_key == key:
                n = [p["n"] for p in points]
                top.plot(n, [p["xferdiag_s"] for p in points], "o-", label=estimator)
                bottom.plot(n, [p["peak_mb"] or math.nan for p in points], "o-", label=estimator)
        top.set_title(series.label, fontsize=9)
        bottom.set_xlabel(series.unit)
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.set_yscale("log", nonpositive="mask")
            ax.set_xticks(sizes, [_short(n) for n in sizes], fontsize=8)
            ax.xaxis.set_minor_locator(ticker.NullLocator())
            ax.yaxis.set_major_formatter(ticker.LogFormatter(labelOnlyBase=False))
            ax.yaxis.set_minor_formatter(ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
            ax.grid(True, which="both", alpha=0.3)
            if any(p.get("estimator") for p in rows if p["series"] == key):
                ax.legend(fontsize=8)
    axes[0, 0].set_ylabel("seconds")
    axes[1, 0].set_ylabel("peak RSS rise, MB")
    fig.suptitle(f"xferdiag scaling{' (quick sizes)' if quick else ''}, {len(os.sched_getaffinity(0))} CPU cores")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def main(quick: bool = False, plot_path: Path = PLOT) -> list[dict]:
    rows = []
    for key, series in SERIES.items():
        for point in in_fresh_process(measure_series, key, series.quick if quick else series.full):
            estimator = point.get("estimator")
            rows.append({"name": f"{series.label}{f', {estimator}' if estimator else ''}: {point['n']:,} {series.unit}",
                         "series": key, **point, "target": None, "met": None})
    for points in _groups(rows).values():
        points[-1]["time_slope"] = _slope(points)
    plot(rows, plot_path, quick)
    print_table(rows, ["name", "xferdiag_s", "peak_mb", "time_slope"])
    print(f"plot: {plot_path}")
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only, about a minute")
    main(quick=parser.parse_args().quick)
