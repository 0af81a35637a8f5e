"""The JupyterLab explorer of a trained run: move the erasing threshold delta and watch branch B's input,
B's map, the fused map, the boxes and the localization accuracy change (issue 6).

Logic and display are split:

* :class:`Explorer` (no widgets) loads a run once and, for knob values (:class:`Knobs`: image index, test-time
  ``delta``, ``fusion``, box threshold ``tau``, shown branches), computes the maps of branch A, branch B and
  the fused map, what branch B's features were multiplied by, the boxes, their IoU, and the GT-known
  localization accuracy over a fixed sample of the first ``sample_size`` images of the split. The sample
  goes through the model in one batched forward per ``(delta, fusion)``; maps and scores are cached per
  knob value, so moving a slider back is instant. The numbers are those of
  :func:`wsol_utils.engine.evaluate` under the explorer's :class:`~wsol_utils.scoring.protocol.Protocol` (same maps,
  same upsampling, same boxes, scored by :class:`wsol_utils.scoring.scorer.MapScorer`; by default
  :data:`~wsol_utils.scoring.protocol.PAPERS`: label-free erasing with branch A's predicted class).
* :func:`explore` wires ipywidgets (``continuous_update=False``) to an :class:`Explorer` and draws with
  :func:`render_view`; :func:`compare_runs` / :func:`explore_comparison` put runs trained with different
  deltas side by side on one image.

Errors a user can cause (a run folder that does not exist or has no checkpoint, an image index out of
range, an unknown fusion) are shown as a readable message in the widget area, never as a traceback.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from torch import Tensor

from wsol_utils.data import collate, denormalize
from wsol_utils.engine.distributed import resolve_device
from wsol_utils.engine.run import check_run_dir, load_run
from wsol_utils.nets.erasing import check_delta
from wsol_utils.nets.fusion import FUSION_METHODS
from wsol_utils.nets.methods import MapMethod, MethodOptions, get_method
from wsol_utils.scoring.pipeline import check_fusion, forward_maps, fusion_options
from wsol_utils.scoring.protocol import PAPERS, TAU_GRID, TAU_GRID_STEP, Protocol, check_tau
from wsol_utils.scoring.scorer import MapScorer, gt_boxes_numpy, score_boxes
from wsol_utils.ui.viz import draw_boxes, overlay_map

#: Branch key -> label shown to the user.
BRANCH_LABELS: dict[str, str] = {"a": "A", "b": "B", "fused": "fused"}
BOX_COLORS: dict[str, str] = {"gt": "white", "a": "tab:orange", "b": "tab:cyan", "fused": "lime"}
#: CSS classes of the explorer's parts (the browser test reads them).
STATS_CLASS = "wsol-explorer-stats"
ERROR_CLASS = "wsol-explorer-error"


class ExplorerInputError(ValueError):
    """A knob value or run the explorer cannot use; its message is meant for the widget area."""


@dataclass(frozen=True)
class Knobs:
    """The explorer's knobs.

    image_index: index into the split (``0 .. len(split) - 1``).
    delta: test-time ACoL erasing threshold in ``(0, 1)`` (docs/methods.md §1.3); ``None`` = the run's training
        delta.
    fusion: ``"max"``, ``"add"`` or ``"l1"`` (docs/methods.md §1.5); ``None`` = the run's fusion (always ``None``
        for CAM).
    tau: box threshold, a fraction of the map's max in ``(0, 1]`` (docs/methods.md §2.1).
    branches: which of ``"a"``, ``"b"``, ``"fused"`` to draw (the numbers cover every branch).
    """

    image_index: int = 0
    delta: float | None = None
    fusion: str | None = None
    tau: float = PAPERS.tau
    branches: tuple[str, ...] = ("a", "b", "fused")


@dataclass(frozen=True)
class SampleMaps:
    """One forward over the sample at one ``(delta, fusion)``; maps at image resolution ``(N, H, W)`` in [0, 1]."""

    maps: dict[str, Tensor]  # branch -> (N, H, W), GT class, normalized (as engine.evaluate)
    b_input: Tensor | None  # (N, H, W): what B's features were multiplied by; None for CAM
    predictions: Tensor  # (N,) top-1 class of the run's classifier


@dataclass(frozen=True)
class SampleScores:
    """Boxes and scores of the sample at one ``(delta, fusion, tau)``."""

    boxes: dict[str, np.ndarray]  # branch -> (N, 4) inclusive pixel boxes
    ious: dict[str, np.ndarray]  # branch -> (N,) best IoU with a GT box
    accuracy: dict[str, float]  # branch -> GT-known loc accuracy in %


@dataclass(frozen=True)
class ImageView:
    """Everything the explorer shows for one image at one knob setting."""

    knobs: Knobs  # resolved: delta and fusion filled in
    method: str
    image: np.ndarray  # (H, W, 3) RGB in [0, 1]
    label: int
    prediction: int
    gt_boxes: np.ndarray  # (K, 4)
    maps: dict[str, np.ndarray]  # branch -> (H, W) in [0, 1]
    b_input: np.ndarray | None  # (H, W) in [0, 1] (ACoL: the 0/1 mask M_A < delta; HCLNet: 1 - M_A)
    boxes: dict[str, np.ndarray]  # branch -> (4,)
    ious: dict[str, float]  # branch -> IoU
    accuracy: dict[str, float]  # branch -> GT-known loc % over the sample
    sample_size: int


# -- the logic ----------------------------------------------------------------------------------------
class Explorer:
    """Maps, boxes and accuracy of a trained run as functions of the knobs, cached (no widgets).

    Args:
        run_dir: a run directory written by :func:`wsol_utils.engine.train`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        sample_size: the accuracy is computed over the first ``sample_size`` images of the split (fewer if
            the split is smaller); they are kept in memory, ``(n, 3, H, W)``.
        device: where the model runs (``"auto"``, ``"cpu"``, ``"cuda"``...).
        batch_size: images per forward pass over the sample.
        protocol: how maps become numbers (``erase_with``, ``upsample``, ``iou_threshold``; the knobs' ``tau``
            replaces its ``tau``); default :data:`~wsol_utils.scoring.protocol.PAPERS`.
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        split: str = "test",
        sample_size: int = 64,
        device: str = "cpu",
        batch_size: int = 64,
        protocol: Protocol = PAPERS,
    ) -> None:
        if isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 1:
            raise ExplorerInputError(f"sample_size={sample_size!r} must be a positive number of images")
        self.run_dir = check_run_dir(run_dir)
        self.device = resolve_device(device)
        self.config, self.model = load_run(self.run_dir, device=self.device)  # CheckpointError: another model
        self.batch_size = int(batch_size)
        self.protocol = protocol
        self.dataset = self.config.dataset_for(split)
        self.split = split
        count = min(sample_size, len(self.dataset))
        self.sample = collate([self.dataset[i] for i in range(count)])
        self._maps: dict[tuple[float | None, str | None], SampleMaps] = {}
        self._scores: dict[tuple[float | None, str | None, float], SampleScores] = {}

    # -- properties -------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        """The run's method name (``"cam"``, ``"acol"``, ``"hclnet"``, ...)."""
        return str(self.config.method)

    @property
    def spec(self) -> MapMethod:
        """The run's method, from the registry (:mod:`wsol_utils.nets.methods`)."""
        return get_method(self.method)

    @property
    def branches(self) -> tuple[str, ...]:
        """The branches this run has: ``("a",)`` for one-branch methods, else ``("a", "b", "fused")``."""
        return self.spec.branches

    @property
    def sample_size(self) -> int:
        """Number of images the accuracy is computed over."""
        return len(self.sample.labels)

    @property
    def num_images(self) -> int:
        """Number of images in the split (valid indices ``0 .. num_images - 1``)."""
        return len(self.dataset)

    # -- knobs ------------------------------------------------------------------------------------
    def resolve(self, knobs: Knobs) -> Knobs:
        """Validated knobs with ``delta`` / ``fusion`` filled in from the run config (``ExplorerInputError``)."""
        index = knobs.image_index
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise ExplorerInputError(f"image index {index!r} must be an integer")
        if not 0 <= int(index) < self.num_images:
            raise ExplorerInputError(
                f"image index {int(index)} is out of range: the {self.split} split has "
                f"{self.num_images} images (0 .. {self.num_images - 1})"
            )
        try:
            delta = check_delta(self.config.delta if knobs.delta is None else knobs.delta, "explorer")
            fusion = check_fusion(self.config.fusion if knobs.fusion is None else knobs.fusion, self.method, "explorer")
            tau = check_tau(knobs.tau, "explorer")
        except ValueError as err:
            raise ExplorerInputError(str(err)) from None
        unknown = set(knobs.branches) - set(BRANCH_LABELS)
        if unknown:
            raise ExplorerInputError(f"unknown branch(es) {sorted(unknown)}; choose from {list(BRANCH_LABELS)}")
        branches = tuple(b for b in self.branches if b in knobs.branches)
        return Knobs(int(index), round(delta, 6), fusion, round(tau, 6), branches)

    def _map_key(self, knobs: Knobs) -> tuple[float | None, str | None]:
        """Cache key of the maps: delta matters only for methods that read it, fusion only for two-branch runs."""
        return (knobs.delta if self.spec.uses("delta") else None, knobs.fusion if self.spec.two_branch else None)

    # -- computation ------------------------------------------------------------------------------
    def _forward_batch(self, images: Tensor, labels: Tensor, delta: float, fusion: str | None) -> dict[str, Tensor]:
        """One batch ``(B, 3, H, W)`` with GT ``labels`` ``(B,)`` through
        :func:`wsol_utils.scoring.pipeline.forward_maps`
        at test-time ``delta`` (so exactly as :func:`wsol_utils.engine.evaluate`): branch maps ``(B, H, W)``,
        ``b_input`` ``(B, H, W)`` (two-branch runs) and ``predictions`` ``(B,)``, all on the CPU."""
        out = forward_maps(
            self.model,
            images.to(self.device),
            labels.to(self.device),
            delta=delta,
            fusion=fusion,
            fusion_kwargs=fusion_options(fusion, self.config.block_radius, self.config.fusion_weights),
            erase_with=self.protocol.erase_with,
            upsample=self.protocol.upsample,
            with_b_input=True,
        )
        result = {**out.full, "predictions": out.logits.argmax(dim=1)}
        if out.b_input is not None:
            result["b_input"] = out.b_input
        return {name: value.cpu() for name, value in result.items()}

    def _forward(self, images: Tensor, labels: Tensor, delta: float, fusion: str | None) -> SampleMaps:
        """:meth:`_forward_batch` over ``images`` ``(N, 3, H, W)`` in batches, at test-time ``delta``."""
        batches = [
            self._forward_batch(images[i : i + self.batch_size], labels[i : i + self.batch_size], delta, fusion)
            for i in range(0, len(labels), self.batch_size)
        ]
        joined = {name: torch.cat([batch[name] for batch in batches]) for name in batches[0]}
        return SampleMaps({b: joined[b] for b in self.branches}, joined.get("b_input"), joined["predictions"])

    def sample_maps(self, knobs: Knobs) -> SampleMaps:
        """Maps of the sample at ``knobs``' delta and fusion (one batched forward, then cached)."""
        knobs = self.resolve(knobs)
        key = self._map_key(knobs)
        if key not in self._maps:
            assert knobs.delta is not None  # resolve() fills in the run's delta
            self._maps[key] = self._forward(self.sample.images, self.sample.labels, float(knobs.delta), knobs.fusion)
        return self._maps[key]

    def sample_scores(self, knobs: Knobs) -> SampleScores:
        """Boxes at ``tau``, IoUs and GT-known loc accuracy (%) of every branch over the sample (cached), scored by
        :class:`wsol_utils.scoring.scorer.MapScorer` under the explorer's protocol at the knobs' ``tau``."""
        knobs = self.resolve(knobs)
        key = (*self._map_key(knobs), knobs.tau)
        if key not in self._scores:
            protocol = self.protocol.replace(tau=knobs.tau, wsoleval=False)
            scorer = MapScorer(protocol, self.branches, has_masks=False)
            scores = scorer.add(self.sample, self.sample_maps(knobs).maps)
            accuracy = {b: float(summary["gt_known_loc_acc"]) for b, summary in scorer.summary().items()}
            self._scores[key] = SampleScores(scores.boxes, scores.ious, accuracy)
        return self._scores[key]

    def _image_maps(self, knobs: Knobs) -> tuple[dict[str, Tensor], Tensor | None, int, Tensor, Tensor]:
        """Maps, B input, prediction, image and GT boxes of ``knobs.image_index`` (from the sample cache
        when the image is in the sample, else one forward of that image)."""
        index = knobs.image_index
        if index < self.sample_size:
            maps = self.sample_maps(knobs)
            pick = slice(index, index + 1)
            return (
                {b: m[pick] for b, m in maps.maps.items()},
                None if maps.b_input is None else maps.b_input[pick],
                int(maps.predictions[index]),
                self.sample.images[index],
                self.sample.boxes[index],
            )
        item = collate([self.dataset[index]])
        assert knobs.delta is not None  # callers pass resolved knobs (view)
        single = self._forward(item.images, item.labels, float(knobs.delta), knobs.fusion)
        return single.maps, single.b_input, int(single.predictions[0]), item.images[0], item.boxes[0]

    def view(self, knobs: Knobs) -> ImageView:
        """The maps, boxes and IoU of one image plus the sample's accuracy at ``knobs``."""
        knobs = self.resolve(knobs)
        maps, b_input, prediction, image, gt = self._image_maps(knobs)
        gt_np = gt_boxes_numpy([gt])
        scores = score_boxes(maps, gt_np, knobs.tau)  # one image: its box and IoU (the accuracy is the sample's)
        boxes, ious = scores.boxes, {b: float(iou[0]) for b, iou in scores.ious.items()}
        label = (
            int(self.dataset[knobs.image_index][1])
            if knobs.image_index >= self.sample_size
            else int(self.sample.labels[knobs.image_index])
        )
        return ImageView(
            knobs=knobs,
            method=self.method,
            image=denormalize(image).permute(1, 2, 0).numpy(),
            label=label,
            prediction=prediction,
            gt_boxes=gt_np[0],
            maps={b: m[0].numpy() for b, m in maps.items()},
            b_input=None if b_input is None else b_input[0].numpy(),
            boxes={b: v[0] for b, v in boxes.items()},
            ious=ious,
            accuracy=self.sample_scores(knobs).accuracy,
            sample_size=self.sample_size,
        )


# -- text and figures ---------------------------------------------------------------------------------
def stats_html(view: ImageView) -> str:
    """The key numbers as HTML with stable classes and ``data-*`` attributes (read by the browser test).

    Text, e.g.: ``delta 0.60 · fusion max · tau 0.20 | GT-known loc (n=64): A 3.1% · B 1.6% · fused 7.8% |
    image 3 IoU: A 0.12 · B 0.05 · fused 0.43``.
    """
    k, spec = view.knobs, get_method(view.method)
    knobs = [f"delta {k.delta:.2f}"] if spec.uses("delta") else []
    knobs += [f"fusion {k.fusion}"] if spec.two_branch else []
    knob_text = " · ".join([*knobs, f"tau {k.tau:.2f}"])
    acc = " · ".join(_number_span("wsol-acc", b, v, f"{v:.1f}%") for b, v in view.accuracy.items())
    ious = " · ".join(_number_span("wsol-iou", b, v, f"{v:.2f}") for b, v in view.ious.items())
    return (
        f'<div class="{STATS_CLASS}" data-delta="{k.delta!r}" data-fusion="{k.fusion}" data-tau="{k.tau!r}" '
        f'data-image="{k.image_index}" data-n="{view.sample_size}">{knob_text} | '
        f"GT-known loc (n={view.sample_size}): {acc} | image {k.image_index} IoU: {ious}</div>"
    )


def _number_span(css_class: str, branch: str, value: float, shown: str) -> str:
    """``<span class=... data-branch=... data-value=(exact repr)>A 12.5%</span>``."""
    label = BRANCH_LABELS[branch]
    return f'<span class="{css_class}" data-branch="{branch}" data-value="{value!r}">{label} {shown}</span>'


def error_html(message: str) -> str:
    """A readable error box for the widget area."""
    return (
        f'<div class="{ERROR_CLASS}" style="color:#a40000;border:1px solid #a40000;padding:6px;">'
        f"<b>Cannot show this:</b> {html.escape(message)}</div>"
    )


def _panel_titles(view: ImageView) -> dict[str, str]:
    spec = get_method(view.method)
    options = MethodOptions() if view.knobs.delta is None else MethodOptions(delta=view.knobs.delta)
    b_input = spec.describe_b_input(options) if spec.two_branch else ""
    return {
        "b_input": f"B's input: {b_input}" if b_input else "",
        **{b: f"{BRANCH_LABELS[b]} map · IoU {view.ious[b]:.2f}" for b in view.maps},
    }


def draw_view(axes: Sequence[Axes], view: ImageView) -> None:
    """Draw ``view`` on ``len(axes)`` axes: the image with GT (white) and predicted boxes, B's input (two-branch
    runs), then the maps of the shown branches as overlays. Use :func:`view_panels` for the axes count."""
    titles = _panel_titles(view)
    ax_image, *rest = axes
    ax_image.imshow(view.image)
    draw_boxes(ax_image, view.gt_boxes, BOX_COLORS["gt"])
    for b in view.knobs.branches:
        draw_boxes(ax_image, view.boxes[b], BOX_COLORS[b])
    ax_image.set_title(f"image {view.knobs.image_index}: class {view.label}, predicted {view.prediction}", fontsize=9)
    legend = [("gt", "GT"), *((b, BRANCH_LABELS[b]) for b in view.knobs.branches)]
    ax_image.legend(
        [Line2D([], [], color=BOX_COLORS[key]) for key, _ in legend],
        [name for _, name in legend],
        loc="lower right",
        fontsize=6,
        framealpha=0.6,
    )
    for ax, name in zip(rest, view_panels(view)[1:]):
        if name == "b_input":
            assert view.b_input is not None  # view_panels lists "b_input" only when there is one
            ax.imshow(view.image * (0.25 + 0.75 * view.b_input[..., None]))
        else:
            overlay_map(ax, view.image, view.maps[name])
            draw_boxes(ax, view.boxes[name], BOX_COLORS[name])
        ax.set_title(titles[name], fontsize=9)
    for ax in axes:
        ax.set_axis_off()


def view_panels(view: ImageView) -> list[str]:
    """Panel names of :func:`draw_view`: ``"image"``, ``"b_input"`` (two-branch runs) and the shown branches."""
    return ["image", *(["b_input"] if view.b_input is not None else []), *view.knobs.branches]


def render_view(view: ImageView, panel_size: float = 2.6) -> Figure:
    """A one-row Figure of :func:`draw_view` (no pyplot; nothing is shown)."""
    panels = view_panels(view)
    fig = Figure(figsize=(panel_size * len(panels), panel_size + 0.4), layout="constrained")
    draw_view(fig.subplots(1, len(panels), squeeze=False)[0], view)
    fig.suptitle(_accuracy_line(view), fontsize=9)
    return fig


def _accuracy_line(view: ImageView) -> str:
    numbers = ", ".join(f"{BRANCH_LABELS[b]} {v:.1f}%" for b, v in view.accuracy.items())
    return f"{view.method}: GT-known loc over {view.sample_size} images at tau {view.knobs.tau:.2f}: {numbers}"


def compare_runs(
    run_dirs: Sequence[str | Path] | Sequence[Explorer],
    image_index: int = 0,
    *,
    tau: float = PAPERS.tau,
    fusion: str | None = None,
    sample_size: int = 64,
    panel_size: float = 2.2,
) -> Figure:
    """Runs trained with different deltas on the same image: one row per run (its own training delta), columns
    as :func:`draw_view`. ``run_dirs`` may also be :class:`Explorer` objects (reused, e.g. by a widget)."""
    if not run_dirs:
        raise ExplorerInputError("compare_runs: give at least one run directory (e.g. the threshold-sweep runs)")
    explorers = [r if isinstance(r, Explorer) else Explorer(r, sample_size=sample_size) for r in run_dirs]
    views = [e.view(Knobs(image_index=image_index, tau=tau, fusion=fusion)) for e in explorers]
    columns = max(len(view_panels(v)) for v in views)
    fig = Figure(figsize=(panel_size * columns, (panel_size + 0.3) * len(views)), layout="constrained")
    grid = fig.subplots(len(views), columns, squeeze=False)
    for row, (explorer, view) in zip(grid, zip(explorers, views)):
        draw_view(row[: len(view_panels(view))], view)
        for ax in row[len(view_panels(view)) :]:
            ax.set_axis_off()
        fused = "fused" if "fused" in view.accuracy else "a"
        row[0].set_title(
            f"trained delta {explorer.config.delta:.2f} · {BRANCH_LABELS[fused]} GT-known "
            f"{view.accuracy[fused]:.1f}% (n={view.sample_size})",
            fontsize=8,
        )
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a Figure (for an ``ipywidgets.Image``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# -- the widgets ---------------------------------------------------------------------------------------
def _explorer_or_error(run_dir: str | Path | Explorer, sample_size: int, device: str) -> Explorer | str:
    """An Explorer, or the readable message of what went wrong (missing folder, no checkpoint, bad config)."""
    if isinstance(run_dir, Explorer):
        return run_dir
    try:
        return Explorer(run_dir, sample_size=sample_size, device=device)
    except (FileNotFoundError, ValueError) as err:
        return str(err).strip("'\"")


def tau_slider(value: float) -> Any:
    """The ``tau`` slider of both views: the Protocol's grid (:data:`~wsol_utils.scoring.protocol.TAU_GRID` from
    its first value to 1 in steps of :data:`~wsol_utils.scoring.protocol.TAU_GRID_STEP`), set to ``value``,
    updating on release."""
    import ipywidgets as w

    return w.FloatSlider(
        value=value,
        min=TAU_GRID[0],
        max=1.0,
        step=TAU_GRID_STEP,
        description="tau",
        continuous_update=False,
        readout_format=".2f",
    )


class ExplorerWidget:
    """The controls and outputs of :func:`explore`; ``.widget`` is what a notebook displays.

    Attributes ``image_index``, ``delta``, ``fusion``, ``tau``, ``branches`` (checkboxes), ``stats`` (HTML),
    ``error`` (HTML), ``figure`` (Image) and ``last_view`` (the :class:`ImageView` last drawn, or ``None``).
    """

    def __init__(self, explorer: Explorer, knobs: Knobs) -> None:
        import ipywidgets as w

        self.explorer = explorer
        self.last_view: ImageView | None = None
        start = replace(
            knobs,
            delta=explorer.config.delta if knobs.delta is None else knobs.delta,
            fusion=explorer.config.fusion if knobs.fusion is None else knobs.fusion,
        )
        self.image_index = w.IntText(value=start.image_index, description="image", layout=w.Layout(width="150px"))
        self.delta = w.FloatSlider(
            value=start.delta,
            min=0.05,
            max=0.95,
            step=0.05,
            description="delta",
            continuous_update=False,
            readout_format=".2f",
            disabled=not explorer.spec.uses("delta"),
        )
        self.fusion = w.Dropdown(
            options=list(FUSION_METHODS),
            value=start.fusion or "max",
            description="fusion",
            disabled=not explorer.spec.two_branch,
            layout=w.Layout(width="170px"),
        )
        self.tau = tau_slider(start.tau)
        self.branches = {
            b: w.Checkbox(
                value=b in start.branches,
                description=f"show {BRANCH_LABELS[b]}",
                indent=False,
                layout=w.Layout(width="110px"),
            )
            for b in explorer.branches
        }
        self.stats = w.HTML()
        self.stats.add_class(STATS_CLASS + "-box")
        self.error = w.HTML()
        self.figure = w.Image(format="png")
        for control in (self.image_index, self.delta, self.fusion, self.tau, *self.branches.values()):
            control.observe(self.update, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.image_index, self.delta, self.fusion]),
                w.HBox([self.tau, *self.branches.values()]),
                self.stats,
                self.error,
                self.figure,
            ]
        )
        self.widget.add_class("wsol-explorer")
        self.update()

    def knobs(self) -> Knobs:
        """The knob values currently set in the controls."""
        return Knobs(
            image_index=self.image_index.value,
            delta=self.delta.value,
            fusion=self.fusion.value,
            tau=self.tau.value,
            branches=tuple(b for b, box in self.branches.items() if box.value),
        )

    def update(self, _change: Any = None) -> None:
        """Recompute for the current knobs and redraw; a bad value shows a message instead."""
        try:
            view = self.explorer.view(self.knobs())
        except ExplorerInputError as err:
            self.error.value = error_html(str(err))
            return
        self.error.value = ""
        self.last_view = view
        self.figure.value = figure_png(render_view(view))
        self.stats.value = stats_html(view)  # last: once the numbers change, the figure matches them


def explore(
    run_dir: str | Path | Explorer,
    image_index: int = 0,
    delta: float | None = None,
    fusion: str | None = None,
    tau: float = PAPERS.tau,
    branches: Sequence[str] = ("a", "b", "fused"),
    *,
    sample_size: int = 64,
    device: str = "cpu",
) -> Any:
    """The interactive explorer of a trained run (an ``ipywidgets.VBox``; display it or leave it last in a cell).

    Controls: image index, test-time ``delta`` slider (ACoL runs), ``fusion`` dropdown, ``tau`` slider, branch
    toggles; all sliders have ``continuous_update=False``. Shows the image with GT and predicted boxes, B's
    input, the maps of A, B and the fused map as overlays, and a line with the GT-known loc accuracy over the
    first ``sample_size`` images and the image's IoUs. A bad run directory or knob shows a readable message.
    The returned widget has an ``.explorer_widget`` attribute (:class:`ExplorerWidget`) for scripted use.
    """
    import ipywidgets as w

    explorer = _explorer_or_error(run_dir, sample_size, device)
    if isinstance(explorer, str):
        box = w.VBox([w.HTML(error_html(explorer))])
        box.add_class("wsol-explorer")
        return box
    controller = ExplorerWidget(explorer, Knobs(image_index, delta, fusion, tau, tuple(branches)))
    controller.widget.explorer_widget = controller
    return controller.widget


def explore_comparison(
    run_dirs: Sequence[str | Path],
    image_index: int = 0,
    tau: float = PAPERS.tau,
    *,
    sample_size: int = 64,
    device: str = "cpu",
) -> Any:
    """The second view: an image index box and a ``tau`` slider over :func:`compare_runs` of ``run_dirs``."""
    import ipywidgets as w

    explorers: list[Explorer] = []
    for run_dir in run_dirs:
        explorer = _explorer_or_error(run_dir, sample_size, device)
        if isinstance(explorer, str):
            return w.VBox([w.HTML(error_html(explorer))])
        explorers.append(explorer)
    index = w.IntText(value=image_index, description="image", layout=w.Layout(width="150px"))
    slider = tau_slider(tau)
    error, figure = w.HTML(), w.Image(format="png")

    def update(_change: Any = None) -> None:
        try:
            fig = compare_runs(explorers, index.value, tau=slider.value)
        except ExplorerInputError as err:
            error.value = error_html(str(err))
            return
        error.value, figure.value = "", figure_png(fig)

    index.observe(update, names="value")
    slider.observe(update, names="value")
    update()
    return w.VBox([w.HBox([index, slider]), error, figure])
