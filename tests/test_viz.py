"""Tests for wsol_utils.viz."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from wsol_utils import viz

# -- suite figures (issue 5) ---------------------------------------------------------------------


def _rectangles(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_plot_map_grid_layout_and_inclusive_boxes():
    images = np.zeros((2, 8, 8, 3))
    maps = {"A": np.zeros((2, 8, 8)), "B": np.ones((2, 8, 8))}
    gt = [np.array([[2, 3, 5, 7]]), np.array([[0, 0, 1, 1], [4, 4, 7, 7]])]
    fig = viz.plot_map_grid(images, maps, gt_boxes=gt, boxes={"B": np.array([[1, 1, 2, 2], [0, 0, 7, 7]])})
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["image", "A", "B"]
    assert [len(_rectangles(ax)) for ax in axes[1]] == [2, 2, 3]  # two GT boxes, plus the prediction on B
    first = _rectangles(axes[0, 0])[0]
    # Columns 2..5 inclusive cover 4 pixels, drawn around pixel centres.
    assert (first.get_x(), first.get_y(), first.get_width(), first.get_height()) == (1.5, 2.5, 4.0, 5.0)
    plt.close(fig)


def test_plot_map_grid_rejects_mismatched_maps():
    with pytest.raises(ValueError, match=r"columns\['A'\]"):
        viz.plot_map_grid(np.zeros((2, 8, 8, 3)), {"A": np.zeros((2, 4, 4))})
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        viz.plot_map_grid(np.zeros((2, 8, 8)), {})


def test_plot_histories_one_line_per_run_and_column():
    history = pd.DataFrame(
        {"epoch": [1, 2], "train_loss_a": [2.0, 1.0], "train_loss_b": [2.5, 1.5], "val_acc": [np.nan, np.nan]}
    )
    fig = viz.plot_histories(
        {"r1": history, "r2": history}, panels=[("loss", ("train_loss_a", "train_loss_b")), ("acc", ("val_acc",))]
    )
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 4 and len(acc_ax.lines) == 0  # all-NaN columns are skipped
    assert loss_ax.lines[1].get_label() == "r1: train_loss_b"
    plt.close(fig)
    with pytest.raises(ValueError, match="at least one"):
        viz.plot_histories({})


def test_save_figure_writes_png_atomically(tmp_path):
    fig, _ = plt.subplots()
    path = viz.save_figure(fig, tmp_path / "sub" / "f.png")
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["PROVENANCE.json", "f.png"]  # no temporary files


def test_plot_regime_map_annotates_means_and_stars_intervals_that_exclude_zero():
    import pandas as pd
    from matplotlib.patches import Rectangle

    rows = []
    for method in ("ACoL", "HCLNet"):
        for rf in (8, 18):
            for head in (7.0, 14.0):
                big = method == "HCLNet" and rf == 8 and head == 7.0
                rows.append(
                    {
                        "method": method,
                        "rf": rf,
                        "head": head,
                        "acc": 9.0 if big else -1.0,
                        "acc ±": 2.0,
                        "acc excludes 0": big,
                    }
                )
    fig = viz.plot_regime_map(
        pd.DataFrame(rows), x="rf", y="head", methods=["ACoL", "HCLNet"], metrics={"GT-known (papers)": "acc"}
    )
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["ACoL − CAM\nGT-known (papers)", "HCLNet − CAM\nGT-known (papers)"]
    texts = sorted(t.get_text() for t in panels[1].texts)
    assert texts == ["+9.0*\n±2.0", "-1.0\n±2.0", "-1.0\n±2.0", "-1.0\n±2.0"]
    outlined = [p for p in panels[1].patches if isinstance(p, Rectangle)]
    assert len(outlined) == 1 and outlined[0].get_xy() == (-0.5, -0.5)  # rf 8, head 7: the first column and row
    assert not [p for p in panels[0].patches if isinstance(p, Rectangle)]


def test_plot_mean_curves_bands_dashes_and_colours():
    curves = pd.DataFrame(
        {
            "tau": [0.1, 0.2, 0.1, 0.2, 0.1, 0.2],
            "acc": [10.0, 20.0, 12.0, 18.0, 30.0, 25.0],
            "acc ±": [1.0, 2.0, 9.0, 9.0, np.nan, np.nan],
            "method": ["A", "A", "A", "A", "B", "B"],
            "split": ["test", "test", "val", "val", "test", "test"],
        }
    )
    fig = viz.plot_mean_curves(
        curves,
        "tau",
        "acc",
        hue="method",
        band="acc ±",
        style="split",
        dashed=["val"],
        reference=(0.2, "tau = 0.2"),
        mark_best=True,
    )
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.lines}
    assert lines["A (test)"].get_linestyle() == "-" and lines["A (val)"].get_linestyle() == "--"
    assert lines["A (test)"].get_color() == lines["A (val)"].get_color() != lines["B (test)"].get_color()
    # One band (A test): B's half widths are NaN, dashed lines get none. Its edges are y -/+ band: 9..11 and 18..22.
    (band,) = ax.collections
    vertices = np.asarray(band.get_paths()[0].vertices)  # already an array; typed ArrayLike
    assert vertices[:, 1].min() == pytest.approx(9.0) and vertices[:, 1].max() == pytest.approx(22.0)
    stars = [line for line in ax.lines if line.get_marker() == "*"]
    assert [(np.asarray(s.get_xdata())[0], np.asarray(s.get_ydata())[0]) for s in stars] == [(0.2, 20.0), (0.1, 30.0)]
    legend = ax.get_legend()
    assert legend is not None and "tau = 0.2" in [t.get_text() for t in legend.get_texts()]
    plt.close(fig)
    with pytest.raises(ValueError, match="missing columns"):
        viz.plot_mean_curves(curves, "tau", "acc", hue="nope")
