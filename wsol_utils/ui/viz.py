"""Pure matplotlib helpers for the notebooks and the explorer (ARCHITECTURE ``wsol_utils.ui.viz``).

Each function returns a :class:`~matplotlib.figure.Figure` or draws on a given Axes; none calls
``plt.show()``. Images are ``(N, H, W, 3)`` RGB in [0, 1]; maps ``(N, H, W)`` in [0, 1]; boxes are
inclusive pixel boxes ``(x0, y0, x1, y1)``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Rectangle

# --------------------------------------------------------------------------------------------------
# Figures of the notebook suite (issue 5): map grids (ACoL Fig. 5), curves, and atomic saving.
# --------------------------------------------------------------------------------------------------

GT_COLOR = "white"
PRED_COLOR = "#ff3b30"
MAP_CMAP = "viridis"  # perceptually uniform: equal steps of a map read as equal steps of colour
MASK_CMAP = "gray"  # masks and weights (what branch B is fed) look unlike maps: greyscale, not overlaid
MAP_LABEL = "map, normalized to [0, 1]"
MASK_LABEL = "mask / weight in [0, 1]"
BOX_LINEWIDTH = 1.5
BORDER_INSET = 0.03  # a box edge on the image border is drawn this fraction of the image inside it
CURVE_MARKERS = ("o", "s", "^", "D", "v", "P")  # one per hue, so curves stay apart where colours meet
BAND_ALPHA = 0.12  # interval bands: faint, below the lines (zorder 1 < 3)
FRACTION_COLUMNS = frozenset({"train_acc", "val_acc"})  # history.csv stores these as fractions in [0, 1]


def save_figure(fig: Figure, path: str | Path, dpi: int = 120, *, provenance: Mapping[str, Any] | None = None) -> Path:
    """Save ``fig`` as PNG at ``path`` atomically (temporary file in the same folder, then ``os.replace``) and
    record it in ``PROVENANCE.json`` beside it.

    The PNG's text chunks carry the library's source hash (:func:`wsol_utils.studies.provenance.png_metadata`) but no
    date, so the same figure gives the same bytes. ``provenance`` (notebook, runs with their configs, seeds:
    :meth:`wsol_utils.ui.suite.Suite.provenance`) goes into the manifest entry with the source hash and the date
    (:func:`wsol_utils.studies.provenance.stamp`).
    """
    from wsol_utils.base.atomic import write_atomic
    from wsol_utils.studies import provenance as provenance_

    path = Path(path)
    entry = provenance_.stamp(**(provenance or {}))
    metadata = provenance_.png_metadata(entry)
    write_atomic(path, lambda temp: fig.savefig(temp, format="png", dpi=dpi, bbox_inches="tight", metadata=metadata))
    provenance_.record([path], entry)
    return path


def publish(fig: Figure, path: str | Path, *, provenance: Mapping[str, Any] | None = None) -> Path:
    """Save ``fig`` as a PNG at ``path`` (:func:`save_figure`, which records ``provenance``), show it once when
    running in IPython, close it."""
    import matplotlib.pyplot as plt

    saved = save_figure(fig, path, provenance=provenance)
    try:
        from IPython.display import display
    except ImportError:  # outside IPython: the file is the output
        pass
    else:
        display(fig)
    plt.close(fig)
    return saved


def _outline(ax: Axes, box: np.ndarray, color: str) -> None:
    """One inclusive-pixel box ``(x0, y0, x1, y1)`` as a rectangle around the pixels it covers, with a thin
    black outline so that a white box shows on a light image.

    Call after the image is shown: an edge on (or beyond) the panel's border -- e.g. a box that is the whole
    image -- is moved ``BORDER_INSET`` of the image inside it, so that the line is not hidden under the border.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    lo_x, hi_x, lo_y, hi_y = x0 - 0.5, x1 + 0.5, y0 - 0.5, y1 + 0.5
    if ax.images:  # the panel shows the image: keep the box inside its border
        left, right = sorted(float(v) for v in ax.get_xlim())
        top, bottom = sorted(float(v) for v in ax.get_ylim())
        inset_x, inset_y = BORDER_INSET * (right - left), BORDER_INSET * (bottom - top)
        lo_x, hi_x = max(lo_x, left + inset_x), min(hi_x, right - inset_x)
        lo_y, hi_y = max(lo_y, top + inset_y), min(hi_y, bottom - inset_y)
    rectangle = Rectangle((lo_x, lo_y), hi_x - lo_x, hi_y - lo_y, fill=False, edgecolor=color, linewidth=BOX_LINEWIDTH)
    rectangle.set_path_effects([patheffects.withStroke(linewidth=BOX_LINEWIDTH + 1.0, foreground="black")])
    ax.add_patch(rectangle)


def format_px(value: float) -> str:
    """A size in pixels as the data set draws it: ``7.04`` -> ``"7"`` (a disc of diameter 7.04 px covers 7 pixels
    across), ``10.5`` -> ``"10.5"``; the nearest integer when within 0.1 of it, else one decimal."""
    nearest = round(float(value))
    return f"{nearest:d}" if abs(float(value) - nearest) < 0.1 else f"{float(value):.1f}"


def plot_map_grid(
    images: np.ndarray,
    columns: Mapping[str, np.ndarray],
    *,
    gt_boxes: Sequence[np.ndarray] | None = None,
    boxes: Mapping[str, np.ndarray] | None = None,
    row_labels: Sequence[str] | None = None,
    masks: Collection[str] = (),
    cmap: str = MAP_CMAP,
    alpha: float = 0.5,
    cell_inches: float = 1.6,
) -> Figure:
    """Rows = images, columns = the image then one heat map per ``columns`` entry (ACoL Figure 5).

    ``images`` ``(N, H, W, 3)`` RGB in [0, 1]; ``columns[title]`` ``(N, H, W)`` maps in [0, 1] overlaid on
    the image in ``cmap`` (perceptual), except the titles in ``masks`` (binary masks or weights in [0, 1]), shown
    alone in greyscale; one colorbar per kind states its range. ``gt_boxes`` N x ``(N_i, 4)`` drawn in white on
    every panel; ``boxes[title]`` ``(N, 4)`` predicted boxes drawn in red on that column. Constrained layout, so a
    ``fig.suptitle`` added later keeps clear of the column titles. Returns the Figure (not shown).
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"plot_map_grid(images): expected (N, H, W, 3) RGB, got shape {images.shape}")
    for title, column in columns.items():
        if np.shape(column) != images.shape[:3]:
            raise ValueError(
                f"plot_map_grid(columns[{title!r}]): shape {np.shape(column)} does not match "
                f"the images' {images.shape[:3]}"
            )
    unknown = set(masks) - set(columns)
    if unknown:
        raise ValueError(f"plot_map_grid(masks): {sorted(unknown)} are not columns ({list(columns)})")
    count, ncols = images.shape[0], len(columns) + 1
    fig, axes = plt.subplots(
        count, ncols, figsize=(cell_inches * ncols + 1.0, cell_inches * count), squeeze=False, layout="constrained"
    )
    legend: dict[str, AxesImage] = {}  # colorbar label -> one image drawn with that scale
    for row in range(count):
        panels = [("image", None), *columns.items()]
        for col, (title, maps) in enumerate(panels):
            ax = axes[row, col]
            if maps is None:
                ax.imshow(images[row])
            elif title in masks:
                legend[MASK_LABEL] = ax.imshow(maps[row], cmap=MASK_CMAP, vmin=0.0, vmax=1.0)
            else:
                ax.imshow(images[row])
                legend[MAP_LABEL] = ax.imshow(maps[row], cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
            for box in [] if gt_boxes is None else np.asarray(gt_boxes[row]).reshape(-1, 4):
                _outline(ax, box, GT_COLOR)
            if boxes is not None and title in boxes:
                _outline(ax, np.asarray(boxes[title])[row], PRED_COLOR)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=9)
        if row_labels is not None:
            axes[row, 0].set_ylabel(row_labels[row], fontsize=8)
    for label, image in legend.items():
        colorbar = fig.colorbar(image, ax=axes, shrink=min(1.0, 3.0 / count), aspect=25, pad=0.02)
        colorbar.set_label(label, fontsize=8)
        colorbar.ax.tick_params(labelsize=7)
    return fig


def plot_histories(
    histories: Mapping[str, pd.DataFrame],
    panels: Sequence[tuple[str, Sequence[str]]] = (("loss", ("train_loss",)), ("val accuracy (%)", ("val_acc",))),
) -> Figure:
    """Training curves of several runs: one panel per ``(ylabel, history columns)``, one line per run
    and column; x = ``epoch``. ``histories[name]`` is a run's ``history.csv`` as a DataFrame; its accuracy
    columns (``FRACTION_COLUMNS``) hold fractions and are plotted in percent (x 100), as the rest of the suite."""
    if not histories:
        raise ValueError("plot_histories(histories): give at least one run's history")
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for ax, (ylabel, names) in zip(axes[0], panels):
        for run, history in histories.items():
            for name in names:
                if name in history and history[name].notna().any():
                    label = run if len(names) == 1 else f"{run}: {name}"
                    values = history[name] * (100.0 if name in FRACTION_COLUMNS else 1.0)
                    ax.plot(history["epoch"], values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


MASS_COLORS = {"head": "#00b8d4", "body": "#ffb300", "background": "#9e9e9e"}


# --------------------------------------------------------------------------------------------------
# Basic helpers for data sets (issue 3): boxes, map overlays, sample grids.
# --------------------------------------------------------------------------------------------------

PART_COLORS = {"head": "#00e5ff", "body": "#ffd60a"}


def draw_boxes(ax: Axes, boxes: np.ndarray, color: str = GT_COLOR) -> Axes:
    """Draw ``(N, 4)`` inclusive pixel boxes ``(x0, y0, x1, y1)`` on ``ax`` (around the covered pixels); call it
    after the image is shown, so that a box on the image border is drawn just inside it (``BORDER_INSET``)."""
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
        _outline(ax, box, color)
    return ax


def overlay_map(ax: Axes, image: np.ndarray, scoremap: np.ndarray, cmap: str = MAP_CMAP, alpha: float = 0.5) -> Axes:
    """Show ``image (H, W, 3)`` in [0, 1] with ``scoremap (h, w)`` in [0, 1] on top, stretched to the image."""
    height, width = image.shape[:2]
    ax.imshow(image, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.imshow(scoremap, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0, extent=(-0.5, width - 0.5, height - 0.5, -0.5))
    ax.set_axis_off()
    return ax


def show_samples(
    images: np.ndarray,
    boxes: Sequence[np.ndarray],
    *,
    labels: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    parts: np.ndarray | None = None,
    ncols: int = 8,
    cell_inches: float = 1.8,
) -> Figure:
    """A grid of samples with their GT boxes (white) and, given ``parts (N, H, W)`` (0 background, 1 body,
    2 head, as the synthetic set's), the head (cyan) and body (yellow) outlined.

    ``images``: ``(N, H, W, 3)`` RGB in [0, 1] (or uint8); ``boxes``: N arrays ``(K_i, 4)``.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images / 255.0
    count = len(images)
    nrows = max(1, -(-count // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * cell_inches, nrows * cell_inches), squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index >= count:
            continue
        ax.imshow(images[index])
        if parts is not None:
            for value, name in ((1, "body"), (2, "head")):
                region = (parts[index] == value).astype(float)
                if region.any():
                    ax.contour(region, levels=[0.5], colors=PART_COLORS[name], linewidths=0.9)
        draw_boxes(ax, boxes[index])
        if labels is not None:
            name = class_names[labels[index]] if class_names is not None else str(labels[index])
            ax.set_title(name, fontsize=7)
    fig.tight_layout()
    return fig


def _knob_label(value: float, knob: str) -> str:
    """Tick label of a knob value: pixel sizes (the knob's name says ``px``) as :func:`format_px`, else ``:g``."""
    return format_px(value) if "px" in knob else f"{value:g}"


def plot_regime_map(
    differences: pd.DataFrame,
    *,
    x: str,
    y: str,
    methods: Sequence[str],
    metrics: Mapping[str, str],
    column: str = "method",
    converged: str | None = None,
    cell_inches: float = 2.6,
) -> Figure:
    """Heat maps of "method minus CAM" over a grid of two knobs, one panel per (metric, method).

    ``differences``: :func:`wsol_utils.studies.analysis.paired_differences` output with the knob columns ``x`` and
    ``y``, ``column`` naming the method, and for each metric column ``m`` its interval (``"m low"`` / ``"m high"``, else
    ``"m ±"``) and ``"m excludes 0"``; ``converged`` optionally names a bool column. ``metrics``: panel-row title
    (e.g. ``"GT-known loc @0.2 (papers' protocol)"``) -> metric column. Each cell shows the mean difference and its
    95% interval. Colour shows significance: a cell whose interval excludes 0 is filled at full strength, outlined
    and starred; one whose interval contains 0 is muted and hatched; a cell whose CAM did not converge is grey,
    crossed and left out of the colour scale; a grid point without a cell stays blank. The colour scale is symmetric
    about 0 (red: the method is better than CAM, blue: worse), shared by all panels."""
    rows, cols = list(metrics.items()), list(methods)
    xs, ys = sorted(differences[x].unique()), sorted(differences[y].unique())
    ok = differences[converged].astype(bool) if converged else pd.Series(True, index=differences.index)
    scale = differences.loc[ok, [c for _, c in rows]].to_numpy(dtype=float)
    limit = max(1.0, float(np.nanmax(np.abs(scale)))) if scale.size and not np.isnan(scale).all() else 1.0
    fig = Figure(figsize=(cell_inches * len(cols) + 1.2, cell_inches * 0.8 * len(rows) + 0.8), layout="constrained")
    axes = fig.subplots(len(rows), len(cols), squeeze=False)
    cmap = plt.get_cmap("RdBu_r")
    for r, (title, metric) in enumerate(rows):
        for c, method in enumerate(cols):
            ax = axes[r][c]
            part = differences[differences[column] == method].set_index([y, x])
            for i, yv in enumerate(ys):
                for j, xv in enumerate(xs):
                    if (yv, xv) in part.index:
                        _regime_cell(ax, part.loc[(yv, xv)], metric, (j, i), cmap, limit, converged)
            ax.set_xlim(-0.5, len(xs) - 0.5)
            ax.set_ylim(-0.5, len(ys) - 0.5)
            ax.set_xticks(range(len(xs)), [_knob_label(v, x) for v in xs], fontsize=7)
            ax.set_yticks(range(len(ys)), [_knob_label(v, y) for v in ys], fontsize=7)
            ax.set_title(f"{method} − CAM\n{title}", fontsize=8)  # two lines: neighbouring titles never overlap
            ax.set_xlabel(x, fontsize=7)
            ax.set_ylabel(y, fontsize=7)
    mappable = plt.cm.ScalarMappable(norm=plt.Normalize(-limit, limit), cmap=cmap)
    fig.colorbar(mappable, ax=axes, shrink=0.8, label="difference (points); muted + hatched: interval contains 0")
    return fig


def _regime_cell(
    ax: Axes, cell: pd.Series, metric: str, at: tuple[int, int], cmap: Any, limit: float, converged: str | None
) -> None:
    """One cell of :func:`plot_regime_map` at grid position ``at = (x, y)``."""
    j, i = at
    mean = float(cell[metric])
    if f"{metric} low" in cell.index:
        spread = f"[{float(cell[f'{metric} low']):+.1f}, {float(cell[f'{metric} high']):+.1f}]"
    else:
        spread = f"±{float(cell[f'{metric} ±']):.1f}"
    corner = (j - 0.5, i - 0.5)
    if converged and not bool(cell[converged]):
        ax.add_patch(Rectangle(corner, 1, 1, facecolor="0.85", hatch="xx", edgecolor="0.6", linewidth=0))
        ax.text(j, i, f"{mean:+.1f}\nCAM not\nconverged", ha="center", va="center", fontsize=6, color="0.3")
        return
    significant = bool(cell[f"{metric} excludes 0"])
    colour = cmap(0.5 + 0.5 * float(np.clip(mean / limit, -1.0, 1.0)))
    if significant:
        ax.add_patch(Rectangle(corner, 1, 1, facecolor=colour, edgecolor="black", linewidth=1.5))
    else:
        ax.add_patch(Rectangle(corner, 1, 1, facecolor=colour, alpha=0.3, hatch="///", edgecolor="0.7", linewidth=0))
    ax.text(j, i, f"{mean:+.1f}{'*' if significant else ''}\n{spread}", ha="center", va="center", fontsize=7)


def plot_mean_curves(
    curves: pd.DataFrame,
    x: str,
    y: str,
    *,
    hue: str,
    band: str | None = None,
    style: str | None = None,
    dashed: Sequence[Any] = (),
    reference: tuple[float, str] | None = None,
    mark_best: bool = False,
    xlabel: str | None = None,
    ylabel: str | None = None,
) -> Figure:
    """Mean curves (e.g. over training seeds) with their interval drawn as a shaded band.

    ``curves`` is a long frame, one row per point: ``x``, ``y`` (the mean) and ``hue`` (one colour per value, in
    order of appearance), optionally ``band`` (the half width, e.g. the ``"<value> ±"`` column of
    :func:`wsol_utils.studies.analysis.seed_summary`; the band is ``y ∓ band``, none where NaN) and ``style`` (e.g.
    ``"split"``): the lines whose ``style`` value is in ``dashed`` are dashed, in their hue's colour, without band
    (e.g. val beside test). ``reference`` = ``(x, label)`` draws a dotted vertical line (e.g. the papers' tau = 0.2);
    ``mark_best`` puts a star on the highest point of each solid line. Labels: the hue value, plus ``" (<style>)"``
    when ``style`` is given. Each hue has its own marker; bands are faint and drawn below every line."""
    needed = {x, y, hue, *([band] if band else []), *([style] if style else [])}
    missing = needed - set(curves.columns)
    if missing:
        raise ValueError(f"plot_mean_curves(curves): missing columns {sorted(missing)}")
    names = pd.unique(curves[hue])
    colors = {name: f"C{i}" for i, name in enumerate(names)}
    markers = {name: CURVE_MARKERS[i % len(CURVE_MARKERS)] for i, name in enumerate(names)}
    fig, ax = plt.subplots(figsize=(5.8, 3.8))
    keys = [hue, style] if style else [hue]
    for key, group in curves.groupby(keys, sort=False):
        name, kind = (key[0], key[1]) if style else (key[0] if isinstance(key, tuple) else key, None)
        group = group.sort_values(x)
        is_dashed = style is not None and kind in dashed
        label = str(name) if style is None else f"{name} ({kind})"
        xs, ys = group[x].to_numpy(dtype=float), group[y].to_numpy(dtype=float)
        ax.plot(
            xs,
            ys,
            linestyle="--" if is_dashed else "-",
            marker="" if is_dashed else markers[name],
            markersize=4,
            color=colors[name],
            label=label,
            zorder=3,
        )
        if band and not is_dashed:
            half = group[band].to_numpy(dtype=float)
            if not np.isnan(half).all():
                ax.fill_between(xs, ys - half, ys + half, color=colors[name], alpha=BAND_ALPHA, linewidth=0, zorder=1)
        if mark_best and not is_dashed and not np.isnan(ys).all():
            best = int(np.nanargmax(ys))
            ax.plot([xs[best]], [ys[best]], marker="*", markersize=11, color=colors[name], linestyle="", zorder=4)
    if reference is not None:
        ax.axvline(reference[0], color="grey", linestyle=":", linewidth=1, label=reference[1])
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_seed_points(
    frame: pd.DataFrame,
    metrics: Mapping[str, str],
    *,
    group: str = "label",
    flag: str | None = None,
    flag_label: str = "flagged",
) -> Figure:
    """Every seed as a point, per group and metric, beside the mean and its interval (the spread a table's
    ``mean [low, high]`` summarizes: a bimodal method shows two clusters).

    ``frame``: one row per (group, seed) with a column per key of ``metrics`` (key -> axis title, e.g. the metric
    with its protocol). One panel per metric; groups along x in order of appearance, points jittered
    deterministically; the mean is a black bar with its 95% t interval within [0, 100]
    (:func:`wsol_utils.studies.stats.seed_interval`). ``flag`` names a bool column (e.g. ``"b_collapsed"``): those
    seeds are drawn as red crosses, labelled ``flag_label``."""
    from wsol_utils.studies.stats import PERCENT, seed_interval

    missing = {group, *metrics, *([flag] if flag else [])} - set(frame.columns)
    if missing:
        raise ValueError(f"plot_seed_points(frame): missing columns {sorted(missing)}")
    names = list(pd.unique(frame[group]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(1.1 * len(names) * len(metrics) + 1.5, 3.6), squeeze=False)
    for ax, (column, title) in zip(axes[0], metrics.items()):
        labelled = False
        for x, name in enumerate(names):
            part = frame[frame[group] == name]
            values = part[column].to_numpy(dtype=float)
            jitter = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
            marked = part[flag].fillna(False).to_numpy(dtype=bool) if flag else np.zeros(len(values), dtype=bool)
            ax.scatter(x + jitter[~marked], values[~marked], s=14, color=f"C{x}", alpha=0.8, zorder=2)
            if marked.any():
                label = None if labelled else flag_label
                ax.scatter(
                    x + jitter[marked], values[marked], s=22, marker="x", color=PRED_COLOR, zorder=3, label=label
                )
                labelled = True
            interval = seed_interval(values.tolist(), bounds=PERCENT)
            ax.errorbar(
                [x + 0.32],
                [interval.mean],
                yerr=[[interval.mean - interval.low], [interval.high - interval.mean]],
                fmt="_",
                color="black",
                markersize=12,
                capsize=3,
                zorder=4,
            )
        ax.set_xticks(range(len(names)), [str(n) for n in names], rotation=25, ha="right", fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("%")
        ax.grid(axis="y", alpha=0.3)
        if labelled:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_box_steps(
    images: np.ndarray, maps: np.ndarray, gt_boxes: Sequence[np.ndarray] | None = None, *, tau: float = 0.2
) -> Figure:
    """The papers' box rule (docs/methods.md §2.1) step by step, one image per row
    (:func:`wsol_utils.scoring.metrics.box_steps`): the normalized map, the pixels at or above ``tau`` of its max, the
    largest connected region with its box (red; ``gt_boxes`` in white). ``images`` ``(N, H, W, 3)`` in [0, 1],
    ``maps`` ``(N, H, W)``."""
    from wsol_utils.scoring.metrics import box_steps

    steps = [box_steps(scoremap, tau=tau) for scoremap in np.asarray(maps)]
    kept, region = f"map >= {tau:g} max", "largest region"
    columns = {
        "map": np.stack([step["map"] for step in steps]),
        kept: np.stack([step["foreground"] for step in steps]).astype(float),
        region: np.stack([step["component"] for step in steps]).astype(float),
    }
    boxes = {region: np.stack([step["box"] for step in steps])}
    return plot_map_grid(images, columns, gt_boxes=gt_boxes, boxes=boxes, masks=[kept, region])
