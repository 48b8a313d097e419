"""Charts of the detection sections, on the shared canvas of :mod:`.plots`: box sizes, precision-recall
curves and the TIDE error breakdown as paired bars with intervals."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .plots import arm_colour, figure, label, png_uri

SIZE_BINS = np.geomspace(1 / 128, 1.0, 22)  # relative box size sqrt(box area / image area), a third of an octave each


def box_size_histogram(sizes: np.ndarray) -> str:
    """Histogram of relative box sizes on a log axis (COCO's small and large boxes at either end)."""
    with figure(5.2, 2.4) as (fig, axes):
        ax = axes[0, 0]
        ax.hist(np.clip(sizes, SIZE_BINS[0], SIZE_BINS[-1]), bins=SIZE_BINS, color="#64748b")
        ax.set_xscale("log")
        ax.set_xlabel("box size relative to the image: √(box area / image area)")
        ax.set_ylabel("test boxes")
        return png_uri(fig)


def precision_recall(panels: Sequence[tuple[str, dict[str, tuple[np.ndarray, np.ndarray, float]]]]) -> str:
    """One panel per (title, {arm: (recall, precision, AP50)}): the interpolated curves COCO averages."""
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    with figure(3.3 * cols, 2.8 * rows, rows, cols) as (fig, axes):
        for ax, (title, curves) in zip(axes.flat, panels):
            for arm, (recall, precision, ap) in curves.items():
                ax.plot(recall, precision, color=arm_colour(arm, list(curves)), lw=1.6, label=f"{arm} (AP50 {ap * 100:.1f}%)")
            ax.set_title(label(title, 28))
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.legend(loc="lower left")
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        return png_uri(fig)


def error_breakdown(types: Sequence[str], lost: dict[str, Sequence[float]], gaps: Sequence[float],
                    cis: Sequence[tuple[float | None, float | None]], difference_label: str) -> str:
    """Left: AP50 points each arm lost to each error type, paired bars. Right: their difference with its 95% interval."""
    y = np.arange(len(types))
    arms = list(lost)
    with figure(8.8, 0.42 * len(types) + 1.3, 1, 2, sharey=True) as (fig, axes):
        left, right = axes[0]
        height = 0.8 / max(len(arms), 1)
        for i, arm in enumerate(arms):
            left.barh(y - 0.4 + height * (i + 0.5), np.asarray(lost[arm]) * 100, height, color=arm_colour(arm, arms), label=arm)
        left.set_yticks(y, [label(t) for t in types])
        left.invert_yaxis()
        left.set_xlabel("AP50 lost (points)")
        left.legend(loc="lower right")
        gap = np.asarray(gaps, dtype=float) * 100
        low = np.array([np.nan if c[0] is None else c[0] * 100 for c in cis])
        high = np.array([np.nan if c[1] is None else c[1] * 100 for c in cis])
        clear = (low > 0) | (high < 0)
        right.barh(y, gap, 0.5, color=np.where(clear, "#1d4ed8", "#9ca3af"))
        right.errorbar(gap, y, xerr=np.vstack([gap - low, high - gap]), fmt="none", ecolor="#111827", capsize=3, lw=1)
        right.axvline(0, color="#374151", lw=0.8)
        right.set_xlabel(difference_label)
        return png_uri(fig)
