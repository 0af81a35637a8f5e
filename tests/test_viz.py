"""Tests for wsol_utils.ui.viz."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from wsol_utils.ui import viz

# -- suite figures (issue 5) ---------------------------------------------------------------------


def _rectangles(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_plot_map_grid_layout_and_inclusive_boxes():
    images = np.zeros((2, 8, 8, 3))
    maps = {"A": np.zeros((2, 8, 8)), "B": np.ones((2, 8, 8))}
    gt = [np.array([[2, 3, 5, 6]]), np.array([[0, 0, 1, 1], [4, 4, 7, 7]])]
    fig = viz.plot_map_grid(images, maps, gt_boxes=gt, boxes={"B": np.array([[1, 1, 2, 2], [0, 0, 7, 7]])})
    axes = np.array(fig.axes[:6]).reshape(2, 3)  # then the colorbar
    assert [ax.get_title() for ax in axes[0]] == ["image", "A", "B"]
    assert [len(_rectangles(ax)) for ax in axes[1]] == [2, 2, 3]  # two GT boxes, plus the prediction on B
    first = _rectangles(axes[0, 0])[0]
    # Columns 2..5 inclusive cover 4 pixels, drawn around pixel centres.
    assert (first.get_x(), first.get_y(), first.get_width(), first.get_height()) == (1.5, 2.5, 4.0, 4.0)
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
    outlined = [p for p in panels[1].patches if isinstance(p, Rectangle) and p.get_linewidth() > 1]
    assert len(outlined) == 1 and outlined[0].get_xy() == (-0.5, -0.5)  # rf 8, head 7: the first column and row
    assert not [p for p in panels[0].patches if p.get_linewidth() > 1]
    # significance is visible in the colour: the three cells whose interval contains 0 are muted and hatched
    muted = [p for p in panels[1].patches if p.get_hatch() == "///"]
    assert len(muted) == 3 and all(p.get_alpha() == 0.3 for p in muted) and outlined[0].get_alpha() is None


def test_plot_regime_map_greys_out_a_cell_whose_cam_did_not_converge_and_keeps_it_off_the_scale():
    rows = [
        {"method": "ACoL", "rf": rf, "head": 7.0, "acc": value, "acc ±": 1.0, "acc excludes 0": True, "ok": ok}
        for rf, value, ok in ((8, 4.0, True), (34, -40.0, False))
    ]
    fig = viz.plot_regime_map(
        pd.DataFrame(rows), x="rf", y="head", methods=["ACoL"], metrics={"GT-known": "acc"}, converged="ok"
    )
    panel = next(ax for ax in fig.axes if ax.get_title())
    assert any("not\nconverged" in t.get_text() for t in panel.texts)
    assert [p.get_hatch() for p in panel.patches] == [None, "xx"]
    colorbar = next(ax for ax in fig.axes if not ax.get_title())
    assert max(abs(v) for v in colorbar.get_ylim()) == 4.0  # the scale spans the converged cell only


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


# -- figures a reader trusts (issue 20 item 7) ----------------------------------------------------


def _colorbar_labels(fig):
    """Labels of the figure's colorbars (the axes matplotlib adds for them)."""
    return [ax.get_ylabel() for ax in fig.axes if hasattr(ax, "_colorbar")]


def test_map_grid_has_a_colorbar_per_kind_with_its_range_and_masks_are_greyscale():
    images = np.zeros((2, 8, 8, 3))
    columns = {"map": np.full((2, 8, 8), 0.5), "mask": np.ones((2, 8, 8))}
    fig = viz.plot_map_grid(images, columns, masks=["mask"])
    assert _colorbar_labels(fig) == [viz.MAP_LABEL, viz.MASK_LABEL]
    assert "[0, 1]" in viz.MAP_LABEL and "normalized" in viz.MAP_LABEL
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    for bar in bars:
        assert bar._colorbar.vmin == 0.0 and bar._colorbar.vmax == 1.0
    map_ax, mask_ax = fig.axes[1], fig.axes[2]
    # the map: image + overlay in the perceptual map colormap; the mask: alone, greyscale, not the maps' colormap
    assert [im.get_cmap().name for im in map_ax.images[1:]] == [viz.MAP_CMAP]
    assert [im.get_cmap().name for im in mask_ax.images] == [viz.MASK_CMAP] != [viz.MAP_CMAP]
    assert viz.MAP_CMAP != "jet"
    plt.close(fig)
    fig = viz.plot_map_grid(images, {"map": columns["map"]})
    assert _colorbar_labels(fig) == [viz.MAP_LABEL]  # no mask column: no mask colorbar
    plt.close(fig)
    with pytest.raises(ValueError, match="not columns"):
        viz.plot_map_grid(images, columns, masks=["nope"])


def test_map_grid_suptitle_clears_every_column_title():
    columns = {f"column title {i}": np.zeros((3, 16, 16)) for i in range(6)}
    fig = viz.plot_map_grid(np.zeros((3, 16, 16, 3)), columns)
    suptitle_text = fig.suptitle("seed 0", fontsize=9)  # as notebook 03 adds it
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    suptitle = suptitle_text.get_window_extent(renderer)
    titles = [ax.title.get_window_extent(renderer) for ax in fig.axes if ax.get_title()]
    assert len(titles) == 7
    assert all(suptitle.y0 >= title.y1 for title in titles)  # above every column title, no overlap
    plt.close(fig)


def test_whole_image_box_is_drawn_inside_the_panel():
    fig = viz.plot_map_grid(
        np.zeros((1, 20, 30, 3)), {"A": np.zeros((1, 20, 30))}, gt_boxes=[np.array([[0, 0, 29, 19]])]
    )
    ax = fig.axes[0]
    (box,) = _rectangles(ax)
    x0, y0, width, height = box.get_x(), box.get_y(), box.get_width(), box.get_height()
    # strictly inside the image extent (-0.5..29.5, -0.5..19.5), by at least half the line width at this size
    assert -0.5 < x0 and x0 + width < 29.5 and -0.5 < y0 and y0 + height < 19.5
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    drawn, panel = box.get_window_extent(renderer), ax.get_window_extent(renderer)
    half_line = viz.BOX_LINEWIDTH / 2 * fig.dpi / 72
    assert drawn.x0 - half_line >= panel.x0 and drawn.x1 + half_line <= panel.x1
    assert drawn.y0 - half_line >= panel.y0 and drawn.y1 + half_line <= panel.y1
    assert box.get_path_effects()  # a dark outline keeps the white box visible on light images
    plt.close(fig)


def test_training_curves_plot_fractions_as_percent():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [2.0, 1.0, 0.5], "val_acc": [0.25, 0.5, 0.905]})
    fig = viz.plot_histories({"r": history})
    loss_ax, acc_ax = fig.axes
    assert "%" in acc_ax.get_ylabel()
    assert np.asarray(acc_ax.lines[0].get_ydata()).tolist() == pytest.approx([25.0, 50.0, 90.5])
    assert np.asarray(loss_ax.lines[0].get_ydata()).tolist() == [2.0, 1.0, 0.5]  # losses are not scaled
    plt.close(fig)


def test_mean_curve_lines_lie_above_faint_bands_with_distinct_markers():
    curves = pd.DataFrame(
        {
            "tau": [0.1, 0.2] * 3,
            "acc": [10.0, 20.0, 12.0, 18.0, 30.0, 25.0],
            "acc ±": [5.0] * 6,
            "method": ["A", "A", "B", "B", "C", "C"],
        }
    )
    fig = viz.plot_mean_curves(curves, "tau", "acc", hue="method", band="acc ±")
    ax = fig.axes[0]
    assert len(ax.collections) == 3
    assert all((band.get_alpha() or 1.0) <= 0.15 for band in ax.collections)  # faint (None would be opaque)
    assert min(line.get_zorder() for line in ax.lines) > max(band.get_zorder() for band in ax.collections)
    assert len({line.get_marker() for line in ax.lines}) == 3
    plt.close(fig)


def test_pixel_sizes_print_as_the_data_set_draws_them():
    assert [viz.format_px(v) for v in (7.04, 14.08, 34.0, 10.5)] == ["7", "14", "34", "10.5"]
    rows = [
        {"method": "ACoL", "rf": rf, "head (px)": head, "acc": 1.0, "acc ±": 2.0, "acc excludes 0": False}
        for rf in (5, 8)
        for head in (7.04, 14.08)
    ]
    fig = viz.plot_regime_map(pd.DataFrame(rows), x="rf", y="head (px)", methods=["ACoL"], metrics={"m": "acc"})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["7", "14"]
    plt.close(fig)


def test_plot_seed_points_draws_every_seed_and_marks_flagged_ones():
    frame = pd.DataFrame(
        {
            "label": ["CAM"] * 3 + ["ACoL"] * 3,
            "acc": [50.0, 52.0, 54.0, 20.0, 70.0, 75.0],
            "b_collapsed": [None, None, None, True, False, False],
        }
    )
    fig = viz.plot_seed_points(frame, {"acc": "accuracy"}, flag="b_collapsed", flag_label="collapsed")
    from matplotlib.collections import PathCollection

    ax = fig.axes[0]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    offsets = [np.asarray(c.get_offsets(), dtype=float) for c in points]
    assert sum(len(o) for o in offsets) == 6  # 3 + 2 unflagged points and 1 cross
    crosses = [o for c, o in zip(points, offsets) if c.get_label() == "collapsed"]
    assert len(crosses) == 1 and crosses[0][0, 1] == 20.0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["CAM", "ACoL"]
    with pytest.raises(ValueError, match="missing columns"):
        viz.plot_seed_points(frame, {"nope": "x"})


def test_plot_box_steps_shows_the_rule_with_the_box_on_the_last_column():
    images = np.zeros((2, 8, 8, 3))
    maps = np.zeros((2, 8, 8))
    maps[:, 2:4, 2:5] = 1.0
    fig = viz.plot_box_steps(images, maps, [np.array([[1, 1, 5, 5]])] * 2, tau=0.2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["image", "map", "map >= 0.2 max", "largest region"]
    red = [p for p in fig.axes[3].patches if p.get_edgecolor()[:3] != (1.0, 1.0, 1.0)]
    assert len(red) == 1  # the predicted box, beside the white GT box
