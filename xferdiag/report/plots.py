"""Charts for the reports, each returned as a base64 PNG ``data:`` URI so the HTML stands alone.

This module holds the shared canvas (style, colours, :func:`figure`, :func:`png_uri`) and the charts
of results: learning curves, per-class accuracy, confusion, layer similarity, shots, and the
comparison's charts; :mod:`.pictures` draws the shift and the explanations on the same canvas.
Figures use matplotlib's object API on the Agg canvas (never pyplot): rendering touches no global
backend state and opens no window. PNG metadata is dropped so nothing in a report names a URL.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

DPI = 100
ARM_COLOURS = {"transfer": "#2563eb", "scratch": "#ea580c"}
EXTRA_COLOURS = ("#059669", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#b45309")
VERDICT_COLOURS = {"positive": "#15803d", "negative": "#b91c1c", "inconclusive": "#b45309"}
STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.titleweight": "bold", "axes.labelsize": 9,
    "axes.spines.top": False, "axes.spines.right": False, "axes.edgecolor": "#9ca3af",
    "axes.grid": True, "grid.color": "#e5e7eb", "grid.linewidth": 0.8, "axes.axisbelow": True,
    "xtick.color": "#374151", "ytick.color": "#374151", "legend.frameon": False, "legend.fontsize": 8,
    "figure.facecolor": "white", "savefig.facecolor": "white",
}


def arm_colour(arm: str, arms: Sequence[str]) -> str:
    """Transfer blue and scratch orange everywhere; further arms take the next free colour."""
    if arm in ARM_COLOURS:
        return ARM_COLOURS[arm]
    extras = [a for a in arms if a not in ARM_COLOURS]
    return EXTRA_COLOURS[extras.index(arm) % len(EXTRA_COLOURS)] if arm in extras else EXTRA_COLOURS[0]


def label(text: object, width: int = 18) -> str:
    """A class or layer name safe for matplotlib: '$' would start mathtext, long names crowd axes."""
    text = str(text)
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


def layer_label(name: object, width: int = 14) -> str:
    """A dotted layer name cut from the left, at a dot where one fits, since the end tells layers apart
    ('encoder.encoder.layer.3' -> '…layer.3', 'encoder.layers.encoder_layer_11' -> '…oder_layer_11');
    the table under the plot keeps the full name."""
    text, kept = str(name), ""
    for part in reversed(text.split(".")):
        candidate = f"{part}.{kept}" if kept else part
        if len(candidate) > width - 1:
            break
        kept = candidate
    if kept == text:
        return label(text, width)
    return label("…" + (kept or text[-(width - 1):]), width)


def class_ticks(ax, classes: Sequence[str]) -> None:
    """Class names under grouped bars, slanted only when they would not fit side by side."""
    names = [label(c) for c in classes]
    slant = len(names) * max(len(n) for n in names) > 60
    ax.set_xticks(np.arange(len(names)), names, rotation=35 if slant else 0, ha="right" if slant else "center")


@contextmanager
def figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw) -> Iterator[tuple[Figure, np.ndarray]]:
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        yield fig, fig.subplots(nrows, ncols, squeeze=False, **kw)


def png_uri(fig: Figure) -> str:
    """The figure as a PNG ``data:`` URI, without metadata."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return data_uri(buffer.getvalue())


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _mean_by_epoch(runs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds at each epoch that at least one seed reached (early stopping shortens some)."""
    epochs = np.unique(np.concatenate([e for e, _ in runs]))
    means = [np.nanmean(np.concatenate([v[e == k] for e, v in runs])) for k in epochs]
    return epochs, np.asarray(means)


def _seed_mean_line(ax, runs: list[tuple[np.ndarray, np.ndarray]], colour: str, **style) -> None:
    epochs, mean = _mean_by_epoch(runs)
    ax.plot(epochs, mean, color=colour, **style)


def learning_curves(histories: dict[str, dict[int, dict[str, np.ndarray]]], panels: Sequence[tuple[str, str, float]],
                    loss_panel: str) -> str:
    """The task's history columns per epoch (``panels``: column, title, scale): per-seed thin lines, the seed
    mean bold; the mean training loss is dashed on the ``loss_panel`` (a classifier's validation loss) so
    overfitting shows as the lines part."""
    arms = list(histories)
    with figure(5 * len(panels), 3.4, 1, len(panels)) as (fig, axes):
        for ax, (column, title, scale) in zip(axes[0], panels):
            for arm in arms:
                colour = arm_colour(arm, arms)
                runs = [(h["epoch"], h[column] * scale) for h in histories[arm].values() if column in h]
                if not runs:
                    continue
                for epochs, values in runs:
                    ax.plot(epochs, values, color=colour, lw=0.8, alpha=0.35)
                _seed_mean_line(ax, runs, colour, lw=2.2, label=f"{arm} (mean of {len(runs)})")
                train = [(h["epoch"], h["train_loss"]) for h in histories[arm].values() if "train_loss" in h]
                if column == loss_panel and train:
                    _seed_mean_line(ax, train, colour, lw=1.4, ls="--")
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if ax.lines:
                ax.legend(loc="best")
        return png_uri(fig)


def per_class_accuracy(classes: Sequence[str], accuracy: dict[str, np.ndarray]) -> str:
    """Grouped bars: for each class, each arm's recall on the test split."""
    arms = list(accuracy)
    x = np.arange(len(classes))
    width = 0.8 / len(arms)
    with figure(10, 3.4) as (fig, axes):
        ax = axes[0, 0]
        for i, arm in enumerate(arms):
            ax.bar(x + (i - (len(arms) - 1) / 2) * width, accuracy[arm] * 100, width, label=arm,
                   color=arm_colour(arm, arms))
        class_ticks(ax, classes)
        ax.set_ylim(0, 105)
        ax.set_ylabel("accuracy (%)")
        ax.legend(ncols=len(arms), loc="upper left", bbox_to_anchor=(0, 1.12))
        return png_uri(fig)


def confusion_matrices(classes: Sequence[str], matrices: dict[str, np.ndarray]) -> str:
    """Row-normalised confusion matrix per arm, with counts written in when there is room."""
    arms = list(matrices)
    c = len(classes)
    names = c <= 30
    with figure(min(4.2 * len(arms), 13), 4.2, 1, len(arms)) as (fig, axes):
        for ax, arm in zip(axes[0], arms):
            counts = matrices[arm]
            rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
            ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
            ax.grid(False)
            ax.set_title(arm, color=arm_colour(arm, arms))
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            if names:
                ticks = [label(n, 12) for n in classes]
                ax.set_xticks(range(c), ticks, rotation=90, fontsize=7)
                ax.set_yticks(range(c), ticks, fontsize=7)
            if c <= 12:
                for (i, j), n in np.ndenumerate(counts):
                    if n:
                        ax.text(j, i, str(int(n)), ha="center", va="center", fontsize=7,
                                color="white" if rates[i, j] > 0.55 else "#111827")
        return png_uri(fig)


def layer_similarity(layers: list[dict]) -> str:
    """CKA to the pretrained features (top) and relative weight change (bottom), layer by layer."""
    names = [layer_label(layer.get("name", "?")) for layer in layers]
    x = np.arange(len(layers))

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if layer.get(key) is None else layer[key] for layer in layers], dtype=float)

    with figure(10, 4.6, 2, 1, sharex=True) as (fig, axes):
        cka, change = axes[0, 0], axes[1, 0]
        cka.plot(x, column("cka_linear"), "o-", color="#2563eb", lw=2, label="linear CKA")
        cka.plot(x, column("cka_debiased"), "s--", color="#7c3aed", lw=1.4, label="debiased CKA")
        cka.set_ylim(-0.02, 1.05)
        cka.set_ylabel("CKA (1 = unchanged)")
        cka.legend(loc="lower left")
        moved = column("weight_change")
        largest = float(np.max(moved[np.isfinite(moved)], initial=0.0))
        change.bar(x, moved, color="#ea580c")
        change.set_ylim(0, max(0.05, 1.1 * largest))  # a relative change is never negative
        if np.isfinite(moved).any() and largest == 0:
            change.text(0.5, 0.5, "no weights changed (frozen)", transform=change.transAxes, ha="center", va="center",
                        color="#6b7280")
        change.set_ylabel("relative weight change")
        change.set_xticks(x, names, rotation=35 if len(layers) > 8 else 0, ha="right" if len(layers) > 8 else "center")
        return png_uri(fig)


def shots_curve(points: list[dict]) -> str:
    """Accuracy of both arms, and their gap with its 95% CI band, against target training size."""
    n = np.array([p["n_train"] for p in points], dtype=float)
    order = np.argsort(n)
    pts = [points[i] for i in order]
    n = n[order]
    ticks = [str(p.get("shots")) for p in pts]

    def column(key: str) -> np.ndarray:
        return np.array([np.nan if p.get(key) is None else p[key] for p in pts], dtype=float) * 100

    lo = np.array([p["ci95"][0] if p.get("ci95") else np.nan for p in pts], dtype=float) * 100
    hi = np.array([p["ci95"][1] if p.get("ci95") else np.nan for p in pts], dtype=float) * 100
    with figure(10, 3.4, 1, 2) as (fig, axes):
        acc, gap = axes[0]
        acc.plot(n, column("transfer_mean"), "o-", color=ARM_COLOURS["transfer"], lw=2, label="transfer")
        acc.plot(n, column("scratch_mean"), "o-", color=ARM_COLOURS["scratch"], lw=2, label="scratch")
        acc.set_ylabel("test accuracy (%)")
        acc.set_title("Accuracy by target training size")
        acc.legend()
        gap.fill_between(n, lo, hi, color="#2563eb", alpha=0.18, lw=0, label="95% CI")
        gap.plot(n, column("gap"), "o-", color="#1e3a8a", lw=2, label="gap (transfer − scratch)")
        gap.axhline(0, color="#6b7280", lw=1)
        gap.set_ylabel("gap (points)")
        gap.set_title("Gain from pretraining")
        gap.legend()
        for ax in axes[0]:
            if n.min() > 0 and n.max() / n.min() >= 8:
                ax.set_xscale("log")
            ax.set_xticks(n, [f"{t}\n(n={int(k)})" for t, k in zip(ticks, n)])
            ax.minorticks_off()
            ax.set_xlabel("shots per class (training examples)")
        return png_uri(fig)


def gap_forest(names: Sequence[str], gaps: Sequence[float | None], cis: Sequence[tuple | None],
               verdicts: Sequence[str | None], metric: str = "test accuracy", arms: str = "transfer − scratch") -> str:
    """Forest plot: one row per run (or per arm of a sweep), the gap ``arms`` in ``metric`` and its 95% CI in points,
    zero line for 'no effect'."""
    y = np.arange(len(names))[::-1]
    with figure(8, 0.9 + 0.42 * len(names)) as (fig, axes):
        ax = axes[0, 0]
        ax.axvline(0, color="#6b7280", lw=1)
        for yi, gap, ci, verdict in zip(y, gaps, cis, verdicts):
            if gap is None:
                continue
            colour = VERDICT_COLOURS.get(verdict or "", "#374151")
            if ci:
                ax.plot([ci[0] * 100, ci[1] * 100], [yi, yi], color=colour, lw=2.5, solid_capstyle="round")
            ax.plot(gap * 100, yi, "D", color=colour, ms=7)
        ax.set_yticks(y, [label(n, 28) for n in names])
        ax.set_xlabel(f"{arms} {metric} (points, 95% CI)")
        ax.grid(axis="y", visible=False)
        return png_uri(fig)


def arm_accuracy(names: Sequence[str], arms: dict[str, list[tuple[float | None, tuple | None]]],
                 metric: str = "test accuracy") -> str:
    """Per run, each arm's mean ``metric`` (a fraction) with its 95% t-interval over seeds."""
    x = np.arange(len(names))
    with figure(8, 3.2) as (fig, axes):
        ax = axes[0, 0]
        offsets = np.linspace(-0.15, 0.15, len(arms)) if len(arms) > 1 else [0.0]
        for offset, (arm, values) in zip(offsets, arms.items()):
            colour = arm_colour(arm, list(arms))
            for xi, (mean, ci) in zip(x + offset, values):
                if mean is None:
                    continue
                if ci:
                    ax.plot([xi, xi], [ci[0] * 100, ci[1] * 100], color=colour, lw=2.5)
                ax.plot(xi, mean * 100, "o", color=colour, ms=6)
            ax.plot([], [], "o", color=colour, label=arm)
        ax.set_xticks(x, [label(n, 16) for n in names], rotation=20 if len(names) > 4 else 0,
                      ha="right" if len(names) > 4 else "center")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(axis="x", visible=False)
        ax.legend(ncols=len(arms))
        return png_uri(fig)


def score_scatter(panels: list[dict], measured_label: str) -> str:
    """One small panel per transferability score: score against the measured outcome, runs labelled."""
    with figure(min(3.3 * len(panels), 13), 3.2, 1, len(panels)) as (fig, axes):
        for ax, panel in zip(axes[0], panels):
            ax.scatter(panel["x"], np.asarray(panel["y"]) * 100, color="#2563eb", s=30)
            for x, y, name in zip(panel["x"], panel["y"], panel["names"]):
                ax.annotate(label(name, 12), (x, y * 100), fontsize=7, xytext=(3, 3), textcoords="offset points")
            tau = panel["tau"]
            ax.set_title(f"{panel['title']}  (τ = {tau:+.2f})" if tau is not None else panel["title"])
            ax.set_xlabel("score")
        axes[0, 0].set_ylabel(measured_label)
        return png_uri(fig)
