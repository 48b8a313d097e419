"""The shift and the explanations as pictures: embedding, class proportions, per-feature shift,
attributions of a table, and the image tiles of the gallery.

Charts share :mod:`.plots`' canvas. Explanation tiles are composed with numpy and Pillow instead,
which is much faster than one matplotlib figure per small image.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib
import matplotlib.colors
import numpy as np
from PIL import Image, ImageDraw

from .plots import arm_colour, class_ticks, data_uri, figure, label, layer_label, png_uri

HEATMAP = "turbo"
TILE_PX = 96


def embedding_scatter(xy: np.ndarray, domain: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                      method: str) -> str:
    """Source and target in one 2-D embedding, coloured by domain and, beside it, by class."""
    with figure(10, 4, 1, 2) as (fig, axes):
        by_domain, by_class = axes[0]
        for d, name, colour in ((0, "source", "#9ca3af"), (1, "target", "#2563eb")):
            pts = xy[domain == d]
            by_domain.scatter(pts[:, 0], pts[:, 1], s=8, alpha=0.6, color=colour, label=f"{name} ({len(pts)})",
                              linewidths=0)
        by_domain.set_title(f"By domain ({method})")
        by_domain.legend(markerscale=2)
        cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for d, marker in ((0, "o"), (1, "^")):
            pts = domain == d
            by_class.scatter(xy[pts, 0], xy[pts, 1], s=10, marker=marker, alpha=0.7, linewidths=0,
                             c=[cmap(k % cmap.N) for k in labels[pts]])
        if len(classes) <= 12:
            for k, name in enumerate(classes):
                by_class.scatter([], [], color=cmap(k % cmap.N), s=12, label=label(name, 14))
            by_class.legend(loc="center left", bbox_to_anchor=(1, 0.5), markerscale=1.5)
        by_class.set_title("By class (● source, ▲ target)")
        for ax in axes[0]:
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(True)
                spine.set_color("#e5e7eb")
        return png_uri(fig)


def label_shift(classes: Sequence[str], source: Sequence[float], target: Sequence[float]) -> str:
    """Class proportions in source and target side by side."""
    x = np.arange(len(classes))
    with figure(10, 2.6) as (fig, axes):
        ax = axes[0, 0]
        ax.bar(x - 0.2, np.asarray(source) * 100, 0.4, color="#9ca3af", label="source")
        ax.bar(x + 0.2, np.asarray(target) * 100, 0.4, color="#2563eb", label="target")
        class_ticks(ax, classes)
        ax.set_ylabel("share of examples (%)")
        ax.legend(ncols=2)
        return png_uri(fig)


# --- tables ----------------------------------------------------------------------------------

SHIFTED, UNSHIFTED = "#2563eb", "#9ca3af"
FOR_CLASS, AGAINST_CLASS = "#dc2626", "#2563eb"


def layer_shift(layers: list[dict]) -> str:
    """MMD² between source and target at each layer, input to output; blue bars pass the
    Benjamini-Hochberg-adjusted test, grey ones do not."""
    x = np.arange(len(layers))
    with figure(10, 3.0) as (fig, axes):
        ax = axes[0, 0]
        ax.bar(x, [max(row["mmd2"], 0.0) for row in layers], color=[SHIFTED if row["shifted"] else UNSHIFTED for row in layers])
        ax.set_ylabel("MMD² (source vs target)")
        slant = len(layers) > 8
        ax.set_xticks(x, [layer_label(row["name"]) for row in layers], rotation=35 if slant else 0,
                      ha="right" if slant else "center")
        return png_uri(fig)


def feature_shift(features: list[dict]) -> str:
    """Per input feature, most shifted first: KS statistic (left) and standardised mean difference
    (right); blue bars pass the Benjamini-Hochberg test, grey ones do not."""
    names = [label(f["name"], 24) for f in features][::-1]
    colours = [SHIFTED if f["shifted"] else UNSHIFTED for f in features][::-1]
    y = np.arange(len(features))
    with figure(10, 1.0 + 0.26 * len(features), 1, 2, sharey=True) as (fig, axes):
        ks, smd = axes[0]
        ks.barh(y, [f["ks_statistic"] for f in features][::-1], color=colours)
        ks.set_xlim(0, 1)
        ks.set_xlabel("KS statistic (0 = same distribution, 1 = disjoint)")
        ks.set_yticks(y, names)
        smd.barh(y, [f["smd"] for f in features][::-1], color=colours)
        smd.axvline(0, color="#6b7280", lw=1)
        smd.set_xlabel("standardised mean difference (target − source, in SDs)")
        for ax in axes[0]:
            ax.grid(axis="y", visible=False)
        return png_uri(fig)


def feature_importance(importance: dict[str, list[tuple[str, float]]], title: str) -> str:
    """Mean |attribution| per feature, one bar per arm, for the features most important to the first arm."""
    arms = list(importance)
    names = [name for name, _ in importance[arms[0]]]
    values = {arm: dict(rows) for arm, rows in importance.items()}
    y = np.arange(len(names))
    height = 0.8 / len(arms)
    with figure(8, 1.0 + 0.3 * len(names)) as (fig, axes):
        ax = axes[0, 0]
        for i, arm in enumerate(arms):
            ax.barh(y[::-1] + (i - (len(arms) - 1) / 2) * height, [values[arm].get(n, 0.0) for n in names], height,
                    color=arm_colour(arm, arms), label=arm)
        ax.set_yticks(y[::-1], [label(n, 24) for n in names])
        ax.set_xlabel(title)
        ax.grid(axis="y", visible=False)
        ax.legend(loc="lower right")
        return png_uri(fig)


def attribution_bars(grid: list[list[dict]]) -> str:
    """One example: a row of panels per method, a column per arm; each panel shows the features with
    the largest |attribution|, signed (red pushes toward the explained class, blue away from it).
    Panels hold title, names and values."""
    n_rows, n_cols = len(grid), max(len(row) for row in grid)
    bars = max(len(panel["names"]) for row in grid for panel in row)
    with figure(10, n_rows * (0.7 + 0.22 * bars), n_rows, n_cols) as (fig, axes):
        for r, row in enumerate(grid):
            for c in range(n_cols):
                ax = axes[r, c]
                if c >= len(row):
                    ax.set_visible(False)
                    continue
                values = np.asarray(row[c]["values"], dtype=float)[::-1]
                y = np.arange(len(values))
                ax.barh(y, values, color=[FOR_CLASS if v > 0 else AGAINST_CLASS for v in values])
                ax.axvline(0, color="#6b7280", lw=1)
                ax.set_yticks(y, [label(n, 34) for n in row[c]["names"]][::-1], fontsize=7)
                ax.set_title(label(row[c]["title"], 60), fontsize=8)
                ax.grid(axis="y", visible=False)
                ax.tick_params(axis="x", labelsize=7)
        return png_uri(fig)


# --- explanation tiles ---------------------------------------------------------------------------

def _rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] to (H, W, 3) float; one channel is shown as grey."""
    image = np.clip(np.nan_to_num(np.asarray(image, dtype=np.float32)), 0, 1)
    if image.ndim == 2:
        image = image[None]
    image = np.moveaxis(image[:3], 0, -1)
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def _upscaled(rgb: np.ndarray) -> Image.Image:
    h, w = rgb.shape[:2]
    scale = max(1, TILE_PX // max(h, w))
    return Image.fromarray((rgb * 255).astype(np.uint8)).resize((w * scale, h * scale), Image.Resampling.NEAREST)


def _tile_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return data_uri(buffer.getvalue())


def image_tile(image: np.ndarray) -> str:
    """The input image, upscaled with hard pixel edges so small inputs stay legible."""
    return _tile_uri(_upscaled(_rgb(image)))


def overlay_tile(image: np.ndarray, heat: np.ndarray | None, box: Sequence[float] | None = None, colour: str = "#ffffff") -> str:
    """The attribution map (smoothly upscaled, coloured) blended half-and-half over the input image (None: the image
    alone); ``box`` (x1 y1 x2 y2 in the image's pixels) framed in ``colour`` (a detection map's target)."""
    tile = _upscaled(_rgb(image))
    if heat is not None:
        heat = np.clip(np.nan_to_num(np.asarray(heat, dtype=np.float32)), 0, 1)
        smooth = np.asarray(Image.fromarray(heat).resize(tile.size, Image.Resampling.BILINEAR))
        coloured = matplotlib.colormaps[HEATMAP](np.clip(smooth, 0, 1))[..., :3]
        blended = 0.5 * np.asarray(tile, dtype=np.float32) / 255 + 0.5 * coloured
        tile = Image.fromarray((blended * 255).astype(np.uint8))
    if box is not None:
        scale = tile.width / np.asarray(image).shape[-1]
        ImageDraw.Draw(tile).rectangle([v * scale for v in box], outline=colour, width=2)
    return _tile_uri(tile)


def heatmap_gradient() -> str:
    """CSS gradient of the overlay colour map, for the legend under the gallery."""
    cmap = matplotlib.colormaps[HEATMAP]
    stops = ", ".join(f"{matplotlib.colors.to_hex(cmap(t))} {t * 100:.0f}%" for t in np.linspace(0, 1, 6))
    return f"linear-gradient(90deg, {stops})"
