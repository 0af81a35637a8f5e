"""Fast MaxBoxAcc / MaxBoxAccV2 / PxAP that give wsoleval's numbers exactly (docs/methods.md §2.2, issue 7).

wsoleval scores a map by thresholding it at every CAM threshold ``t`` of ``np.arange(0, 1, interval)``
(1,000 thresholds at the default interval) and running ``cv2.findContours`` on each binary image. The map is
first quantised, ``img = (map * 255).astype(uint8)``, and the binary image at ``t`` is ``img > int(t * peak)``
with ``peak = img.max()`` (255 for a min-max normalized map: the shorthand ``int(t * 255)`` of docs/methods.md §2.2). So

- at most 255 distinct cut-offs ``c = int(t * peak)`` exist, and
- two cut-offs with no pixel value between them give the same binary image: the binary for ``c`` is
  ``img >= v`` where ``v`` is the smallest pixel value above ``c``.

:func:`image_threshold_ious` therefore traces each *distinct binary image* once (at most one per distinct pixel
value, plus the empty one), all of a map's binary images stacked in one ``findContours`` call, skips those whose
bounding rectangle cannot hold a box reaching the lowest IoU any count needs (an exact bound), derives every
contour's bounding box and polygon area with vectorized numpy (integer shoelace = ``cv2.contourArea`` exactly;
``boundingRect`` = min/max of the points), computes all IoUs at once with wsoleval's float formula, and maps the
results back to the requested thresholds.

:class:`BoxEvaluator` needs less: whether the largest contour reaches IoU 50 (V1) and whether any contour reaches
each V2 level. :func:`image_threshold_hits` gets every binary image's contour *boxes* without tracing, from the
component tree (``_component_tree.c``, compiled at install where a C compiler is): an outer contour's box is its
8-connected component's bounding rectangle, a hole contour's is its hole's (a 4-connected background component
away from the border) grown by one pixel, and two union-find passes over the pixels sorted by value give every
level's components at once. That decides V2 exactly, and V1 wherever a binary image's contours agree about IoU 50;
only the binary images whose contours disagree (about a quarter of those the bound leaves) are traced, for the
largest one's area. Without the compiled tree every binary image is traced (the same counts, 1.7x slower for the
whole ``evaluate`` command on 1,000 maps; benchmarks/results/profile_boxeval.txt and bench_boxeval_process.md);
tests/test_boxeval.py checks the two against each other and both against wsoleval's literal code.

Per-threshold correct counts are integer arrays, so evaluators over disjoint image sets
:meth:`~BoxEvaluator.merge` exactly. :class:`PxAPEvaluator` keeps integer pixel histograms on the maps' torch
device. A folder of wsoleval ``.npy`` maps is streamed through worker processes by
:func:`wsol_utils.data.scoremaps.evaluate_scoremaps` (the files are read in the data layer).

Result dict (``BoxEvaluator.compute``; accuracies in percent)::

    {"num_images": 1000, "interval": 0.001, "iou_levels": [30, 50, 70],
     "maxboxacc": 63.2, "maxboxacc_threshold": 0.12,            # V1: largest contour, IoU 50
     "maxboxacc_v2": 57.4,                                       # all contours, mean over iou_levels
     "v2_per_iou": {"30": {"accuracy": 80.1, "threshold": 0.08}, ...},
     "pxap": 61.0}                                               # only when masks are given

A threshold is the value of ``np.arange(0, 1, interval)`` at which the best accuracy is first reached.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from wsol_utils.scoring.boxes import (
    MASK_BACKGROUND,
    MASK_FOREGROUND,
    V1_IOU_LEVEL,
    ZERO_BOX,
    box_overlap,
    broadcast_iou,
    check_gt_boxes,
    check_iou_levels,
    check_same_shape,
    max_box_accuracy,
    pxap_bin_edges,
    pxap_from_histograms,
    quantize_scoremap,
    threshold_list,
    to_numpy,
)

if TYPE_CHECKING:  # imported lazily: worker processes that only score boxes never load torch, so they start in a
    import torch  # fraction of a second

try:  # compiled by setup.py at install where a C compiler is; without it every binary image is traced instead
    from wsol_utils.scoring import _component_tree
except ImportError:  # pragma: no cover (the test environment has a compiler; see test_component_tree_is_built)
    _component_tree = None  # type: ignore[assignment]


__all__ = [
    "BoxEvaluator",
    "PxAPEvaluator",
    "component_tree_available",
    "image_threshold_ious",
    "image_threshold_hits",
]


@dataclass(frozen=True)
class _Contours:
    """All contours of several binary images, flattened.

    ``boxes`` ``(K, 4)`` int64 clipped bounding boxes, ``areas2`` ``(K,)`` int64 twice the polygon area,
    ``starts`` ``(L,)`` index of each binary image's first contour (every image has >= 1 row: an image
    without contours holds :data:`ZERO_BOX`, wsoleval's placeholder).
    """

    boxes: np.ndarray
    areas2: np.ndarray
    starts: np.ndarray


def _level_windows(img: np.ndarray, lows: np.ndarray) -> np.ndarray:
    """``(L, 4)`` int64 ``[x0, y0, x1, y1]``: the bounding rectangle of the pixels ``img >= v`` for each ``v`` in
    ``lows`` (meaningless where ``v > img.max()``: no pixel); :func:`_iou_bound` and :func:`_contours_of_levels`
    read it."""
    height, width = img.shape
    row_peak, col_peak = img.max(axis=1), img.max(axis=0)
    top = np.searchsorted(np.maximum.accumulate(row_peak), lows)  # first row holding a pixel >= v
    bottom = height - 1 - np.searchsorted(np.maximum.accumulate(row_peak[::-1]), lows)
    left = np.searchsorted(np.maximum.accumulate(col_peak), lows)
    right = width - 1 - np.searchsorted(np.maximum.accumulate(col_peak[::-1]), lows)
    return np.stack([left, top, right, bottom], axis=1).astype(np.int64)


def _iou_bound(windows: np.ndarray, gt_boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """``(L,)`` an upper bound of the IoU with the GT boxes of any contour box at each level: every such box
    lies inside ``[x0, y0, min(x1 + 1, W - 1), min(y1 + 1, H - 1)]`` of the level's window, and a box ``b``
    inside ``R`` has ``IoU(b, g) <= |R & g| / |g|``. Float64 division is monotone, so the bound also holds for
    wsoleval's float IoU."""
    reach = windows.copy()
    reach[:, 2] = np.minimum(reach[:, 2] + 1, width - 1)
    reach[:, 3] = np.minimum(reach[:, 3] + 1, height - 1)
    intersection, _, area_g = box_overlap(reach[:, None, :], gt_boxes[None, :, :])
    covered = np.where(area_g > 0, intersection / np.where(area_g > 0, area_g, 1), np.inf)
    return covered.max(axis=1)


def _contours_of_levels(img: np.ndarray, lows: np.ndarray, window: np.ndarray) -> _Contours:
    """Every contour of ``cv2.findContours(img >= v, RETR_TREE, CHAIN_APPROX_SIMPLE)`` for each ``v`` in ``lows``
    (ascending): its ``boundingRect`` box ``[x, y, min(x+w, W-1), min(y+h, H-1)]`` and twice its ``contourArea``;
    a binary image without contours (``v > img.max()``) gets :data:`ZERO_BOX` (area 0).

    ``window``: ``[x0, y0, x1, y1]``, the pixel window of ``img >= lows[0]`` (:func:`_level_windows`), which holds
    every binary image's pixels (the images of ascending levels are nested). The binary images, cut to it, are
    stacked in one tall image, one background row below each, and traced by one ``findContours`` call. OpenCV
    treats the outside of an image as background, 8-connected components cannot touch across a background row,
    and the scan visits each image's rows in order, so each image's contours, points and order are those of
    tracing it alone, uncut (a stable sort by image keeps that order). Boxes and areas are computed with
    vectorized numpy (integer shoelace = ``contourArea``; ``boundingRect`` = min/max of the points).
    """
    height, width = img.shape
    x0, y0, x1, y1 = (int(v) for v in window)
    cut = img[y0 : y1 + 1, x0 : x1 + 1]
    lit = lows[lows <= img.max()].astype(np.uint8)  # the levels with pixels, as uint8: numpy's fast uint8 loop
    stack = np.empty((len(lit), cut.shape[0] + 1, cut.shape[1]), dtype=np.uint8)
    stack[:, -1] = 0  # the background row below each image
    np.greater_equal(cut, lit[:, None, None], out=stack[:, :-1].view(np.bool_))
    found = (
        cv2.findContours(stack.reshape(-1, cut.shape[1]), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0] if len(lit) else ()
    )
    counts: np.ndarray = np.zeros(len(lows), dtype=np.int64)
    boxes: np.ndarray = np.zeros((0, 4), dtype=np.int64)
    areas2: np.ndarray = np.zeros(0, dtype=np.int64)
    if found:
        lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
        first = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        points = np.concatenate(found).reshape(-1, 2).astype(np.int64)
        image = points[first, 1] // stack.shape[1]  # the binary image of each contour
        x = points[:, 0] + x0
        y = points[:, 1] + np.repeat(y0 - image * stack.shape[1], lengths)
        previous = np.arange(len(points)) - 1
        previous[first] = first + lengths - 1  # the polygon closes: point 0 follows the last point
        order = np.argsort(image, kind="stable")
        boxes = np.stack(
            [
                np.minimum.reduceat(x, first),
                np.minimum.reduceat(y, first),
                np.minimum(np.maximum.reduceat(x, first) + 1, width - 1),
                np.minimum(np.maximum.reduceat(y, first) + 1, height - 1),
            ],
            axis=1,
        )[order]
        areas2 = np.abs(np.add.reduceat(x[previous] * y - y[previous] * x, first))[order]
        counts = np.bincount(image, minlength=len(lows))
    empty = np.flatnonzero(counts == 0)  # one placeholder row each, where its contours would start
    at = np.cumsum(counts)[empty] - counts[empty]
    boxes = np.insert(boxes, at, ZERO_BOX, axis=0)
    areas2 = np.insert(areas2, at, 0)
    starts = np.cumsum(np.maximum(counts, 1)) - np.maximum(counts, 1)
    return _Contours(boxes=boxes, areas2=areas2, starts=starts)


def _first_argmax_per_segment(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Index of the first maximum of each segment ``values[starts[i]:starts[i+1]]`` (Python's ``max``)."""
    segment_max = np.maximum.reduceat(values, starts)
    sizes = np.diff(np.append(starts, len(values)))
    is_max = np.flatnonzero(values == np.repeat(segment_max, sizes))
    return is_max[np.searchsorted(is_max, starts)]


@dataclass(frozen=True)
class _Levels:
    """A map's distinct binary images (docs/methods.md §2.2).

    ``img`` ``(H, W)`` uint8, the quantised map; ``lows`` ``(L,)`` int64 ascending, binary image ``l`` is
    ``img >= lows[l]`` (``lows[l] > img.max()``: the empty image); ``position`` ``(T,)`` the binary image of each
    threshold; ``windows`` ``(L, 4)`` each image's pixel window (:func:`_level_windows`).
    """

    img: np.ndarray
    lows: np.ndarray
    position: np.ndarray
    windows: np.ndarray


def _levels_of(scoremap: np.ndarray, thresholds: np.ndarray) -> _Levels:
    """The distinct binary images of ``scoremap`` at ``thresholds`` (module docstring: at most one per pixel value)."""
    img = quantize_scoremap(scoremap)
    values = np.flatnonzero(np.bincount(img.ravel(), minlength=256))  # distinct pixel values, ascending
    cutoffs = (thresholds * img.max()).astype(np.int64)  # int(t * max(img)), as wsoleval
    # binary(c) = img > c = img >= values[k] with k = #values <= c; k == len(values) is the empty image
    level_of_threshold = np.searchsorted(values, cutoffs, side="right")
    levels, position = np.unique(level_of_threshold, return_inverse=True)
    lows = np.append(values, 256)[levels]  # img >= 256 is the empty binary image
    return _Levels(img=img, lows=lows, position=position, windows=_level_windows(img, lows))


def image_threshold_ious(
    scoremap: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray, floor: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Best IoU with the GT boxes at every CAM threshold, for one map (docs/methods.md §2.2), by tracing.

    Args:
        scoremap: ``(H, W)`` float map in ``[0, 1]``.
        gt_boxes: ``(N, 4)`` int inclusive boxes in the map's pixel coordinates, N >= 1.
        thresholds: ``(T,)`` CAM thresholds in ``[0, 1)``.
        floor: IoUs below it may be returned as 0: a binary image none of whose possible boxes can reach
            ``floor`` (:func:`_iou_bound`) is not traced. Whether an IoU is ``>= level`` is exact for every
            ``level >= floor``; ``0`` (the default) traces every binary image.

    Returns:
        ``(iou_largest (T,), iou_all (T,))``: max IoU over GT boxes of the largest contour's box (V1),
        and of every contour's box (V2), at each threshold.
    """
    found_levels = _levels_of(scoremap, thresholds)
    img, lows, windows = found_levels.img, found_levels.lows, found_levels.windows
    gt = check_gt_boxes(gt_boxes, "gt_boxes")
    traced = (lows > img.max()) | (_iou_bound(windows, gt, *img.shape) >= floor)  # the empty image is cheap
    iou_largest, iou_all = np.zeros(len(lows)), np.zeros(len(lows))
    if traced.any():
        found = _contours_of_levels(img, lows[traced], windows[traced][0])
        best_iou = broadcast_iou(found.boxes[:, None, :], gt[None, :, :]).max(axis=1)
        iou_all[traced] = np.maximum.reduceat(best_iou, found.starts)
        iou_largest[traced] = best_iou[_first_argmax_per_segment(found.areas2, found.starts)]
    return iou_largest[found_levels.position], iou_all[found_levels.position]


def component_tree_available() -> bool:
    """Whether the compiled component tree (``_component_tree.c``) was built at install (setup.py)."""
    return _component_tree is not None


def _tree_contour_boxes(img: np.ndarray, lows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The boxes of every contour of ``findContours(img >= v, RETR_TREE)`` for each ``v`` in ``lows`` (ascending,
    each ``<= img.max()``), from the component tree, untraced (module docstring); their order within a binary
    image is not OpenCV's. Returns ``boxes (K, 4)`` int64 (clipped as :func:`_contours_of_levels`) and
    ``starts (L,)``, the first row of each binary image (each has at least one contour: its pixels)."""
    if _component_tree is None:
        raise RuntimeError(
            "the component tree (wsol_utils/scoring/_component_tree.c) is not compiled: reinstall with a C "
            "compiler (`make install`, or `pip install -e .`), or pass component_tree=False"
        )
    image = np.ascontiguousarray(img, dtype=np.uint8)
    levels = np.ascontiguousarray(lows, dtype=np.int32)
    packed = _component_tree.level_contour_boxes(image.data, image.shape[0], image.shape[1], levels.data)
    records = np.frombuffer(packed, dtype=np.int32).reshape(-1, 5)  # (level index, x0, y0, x1, y1)
    by_level = records[np.argsort(records[:, 0], kind="stable")]
    return by_level[:, 1:].astype(np.int64), np.searchsorted(by_level[:, 0], np.arange(len(lows)))


def image_threshold_hits(
    scoremap: np.ndarray,
    gt_boxes: np.ndarray,
    thresholds: np.ndarray,
    iou_levels: Sequence[int] = (30, 50, 70),
    component_tree: bool | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """What MaxBoxAcc and MaxBoxAccV2 count for one map at every CAM threshold (docs/methods.md §2.2).

    The same counts as :func:`image_threshold_ious` compared with the levels, found with the component tree where
    it is compiled (module docstring): V2 from every contour's box, V1 from the boxes wherever a binary image's
    contours agree about IoU 50, tracing only the binary images whose contours disagree.

    Args:
        scoremap: ``(H, W)`` float map in ``[0, 1]``.
        gt_boxes: ``(N, 4)`` int inclusive boxes in the map's pixel coordinates, N >= 1.
        thresholds: ``(T,)`` CAM thresholds in ``[0, 1)``.
        iou_levels: MaxBoxAccV2's IoU levels in percent (:func:`check_iou_levels`).
        component_tree: ``None`` uses it where compiled, ``False`` traces every binary image, ``True`` requires it.

    Returns:
        ``(hit_v1 (T,), hit_v2 (L, T))`` bool: the largest contour's box reaches IoU ``V1_IOU_LEVEL`` %, and some
        contour's box reaches ``iou_levels[l]`` %.
    """
    v1_level = V1_IOU_LEVEL / 100
    v2_levels = np.asarray(check_iou_levels(iou_levels), dtype=np.float64)[:, None] / 100
    floor = min(v1_level, float(v2_levels.min()))
    if component_tree is False or (component_tree is None and _component_tree is None):
        iou_largest, iou_all = image_threshold_ious(scoremap, gt_boxes, thresholds, floor)
        return iou_largest >= v1_level, iou_all[None, :] >= v2_levels
    found_levels = _levels_of(scoremap, thresholds)
    img, lows, windows = found_levels.img, found_levels.lows, found_levels.windows
    gt = check_gt_boxes(gt_boxes, "gt_boxes")
    lit = lows <= img.max()
    empty_iou = float(broadcast_iou(np.array(ZERO_BOX, dtype=np.int64), gt).max())
    iou_all = np.where(lit, 0.0, empty_iou)
    hit_v1 = np.where(lit, False, empty_iou >= v1_level)
    traced = np.flatnonzero(lit & (_iou_bound(windows, gt, *img.shape) >= floor))
    if len(traced):
        boxes, starts = _tree_contour_boxes(img, lows[traced])
        best_iou = broadcast_iou(boxes[:, None, :], gt[None, :, :]).max(axis=1)
        iou_all[traced] = np.maximum.reduceat(best_iou, starts)
        reaches = best_iou >= v1_level
        every_reaches = np.minimum.reduceat(reaches, starts)
        hit_v1[traced] = every_reaches
        disagree = traced[np.maximum.reduceat(reaches, starts) != every_reaches]  # the largest contour decides
        if len(disagree):
            found = _contours_of_levels(img, lows[disagree], windows[disagree[0]])
            largest = _first_argmax_per_segment(found.areas2, found.starts)
            hit_v1[disagree] = broadcast_iou(found.boxes[largest][:, None, :], gt[None, :, :]).max(axis=1) >= v1_level
    return hit_v1[found_levels.position], iou_all[found_levels.position][None, :] >= v2_levels


class BoxEvaluator:
    """Streaming MaxBoxAcc (V1) and MaxBoxAccV2 with wsoleval's exact numbers (docs/methods.md §2.2).

    Args:
        interval: CAM threshold step; thresholds are ``np.arange(0, 1, interval)``.
        iou_levels: IoU levels in percent for MaxBoxAccV2 (mean of the per-level maxima).
            V1 always uses IoU 50 and the largest contour.
        component_tree: :func:`image_threshold_hits`'s choice (``None``: the compiled component tree where it
            is built); the counts do not depend on it.
    """

    def __init__(
        self, interval: float = 0.001, iou_levels: Sequence[int] = (30, 50, 70), component_tree: bool | None = None
    ) -> None:
        self.interval = float(interval)
        self.iou_levels = check_iou_levels(iou_levels)
        self.thresholds = threshold_list(self.interval)
        self.component_tree = component_tree
        self.num_images = 0
        self.correct_v1 = np.zeros(len(self.thresholds), dtype=np.int64)  # (T,)
        self.correct_v2 = np.zeros((len(self.iou_levels), len(self.thresholds)), dtype=np.int64)  # (L, T)

    def accumulate(self, scoremap: np.ndarray, gt_boxes: np.ndarray) -> None:
        """Add one ``(H, W)`` map in ``[0, 1]`` and its ``(N, 4)`` int GT boxes in map pixels (inclusive)."""
        self._add(*self._hits(to_numpy(scoremap, "scoremap"), to_numpy(gt_boxes, "gt_boxes")))

    def _hits(self, scoremap: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:func:`image_threshold_hits` of one map at this evaluator's thresholds and IoU levels."""
        return image_threshold_hits(scoremap, gt, self.thresholds, self.iou_levels, self.component_tree)

    def _add(self, hit_v1: np.ndarray, hit_v2: np.ndarray) -> None:
        """Count one image's per-threshold hits (from :func:`image_threshold_hits`)."""
        self.correct_v1 += hit_v1
        self.correct_v2 += hit_v2
        self.num_images += 1

    def accumulate_batch(self, scoremaps: Any, gt_boxes: Sequence[Any], threads: int = 1) -> None:
        """Add ``(B, H, W)`` maps (numpy array or torch Tensor, any device) and B ``(N_i, 4)`` box arrays.

        ``threads > 1`` scores the images on that many threads and adds the counts in order, so the result equals
        one :meth:`accumulate` per image. The default is one: only ``cv2.findContours`` and the component tree
        release the GIL, and on 64 px maps two threads took 1.5x the CPU time of one for no gain in wall time (1.1x
        at 224 px, measured before the component tree); separate processes (:func:`evaluate_scoremaps`, the
        engine's workers) are what scale.
        """
        maps = to_numpy(scoremaps, "scoremaps")
        if maps.ndim != 3 or len(maps) != len(gt_boxes):
            raise ValueError(
                f"scoremaps must be (B, H, W) with one box array per map, got {tuple(maps.shape)} "
                f"and {len(gt_boxes)} box arrays"
            )
        gts = [check_gt_boxes(boxes, f"gt_boxes[{index}]") for index, boxes in enumerate(gt_boxes)]
        if threads <= 1:
            for hits in map(self._hits, maps, gts):
                self._add(*hits)
            return
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for hits in pool.map(self._hits, maps, gts):
                self._add(*hits)

    def merge(self, other: BoxEvaluator) -> BoxEvaluator:
        """Add the counts of ``other`` (same interval and IoU levels) into ``self``; returns ``self``."""
        if (other.interval, other.iou_levels) != (self.interval, self.iou_levels):
            raise ValueError("merge: evaluators differ in interval or iou_levels")
        self.num_images += other.num_images
        self.correct_v1 += other.correct_v1
        self.correct_v2 += other.correct_v2
        return self

    def compute(self) -> dict[str, Any]:
        """The result dict (module docstring): accuracies ``count * 100. / n`` as wsoleval."""
        if self.num_images == 0:
            raise ValueError("BoxEvaluator.compute: no image was accumulated")
        return max_box_accuracy(self.correct_v1, self.correct_v2, self.num_images, self.interval, self.iou_levels)


class PxAPEvaluator:
    """Pixel average precision (PxAP) from integer score histograms (docs/methods.md §2.2).

    Bins are wsoleval's: ``[t_0, t_1), ..., [t_{T-1}, 1), [1, 2), [2, 3]`` with ``t = arange(0, 1, interval)``
    (as ``np.histogram``: left-closed, the last bin closed), compared in float64. Counts are int64, so sums
    are exact and evaluators merge. Torch Tensors are binned on their own device (the GPU when the maps are
    there; ``torch.bucketize`` + ``torch.bincount``); numpy arrays are binned with numpy (same bins), so that
    worker processes never need to import torch.

    Args:
        interval: CAM threshold step.
        device: if given, every input (numpy included) is moved there and binned with torch.
    """

    def __init__(self, interval: float = 0.001, device: str | torch.device | None = None) -> None:
        self.interval = float(interval)
        self.edges = pxap_bin_edges(self.interval)  # (T + 3,)
        self.device = device
        self._host_counts = np.zeros((2, len(self.edges) - 1), dtype=np.int64)  # (background, foreground)
        self._device_counts: torch.Tensor | None = None  # (2, T + 2) int64 on the maps' device
        self._has_masks = False

    def _torch_counts(self, scoremaps: Any, masks: Any) -> torch.Tensor:
        """``(2, T + 2)`` background / foreground counts, binned with torch on the maps' (or ``device``'s) device."""
        import torch

        values = torch.as_tensor(scoremaps)
        values = values.to(self.device or values.device, torch.float64)
        labels = torch.as_tensor(masks).to(values.device)
        check_same_shape(tuple(labels.shape), tuple(values.shape), "masks")
        edges = torch.as_tensor(self.edges, dtype=torch.float64, device=values.device)
        bins = torch.bucketize(values, edges, right=True) - 1
        bins = torch.where(values == edges[-1], len(self.edges) - 2, bins)  # the last bin is closed
        inside = (bins >= 0) & (bins < len(self.edges) - 1)
        return torch.stack(
            [
                torch.bincount(bins[inside & (labels == label)], minlength=len(self.edges) - 1)
                for label in (MASK_BACKGROUND, MASK_FOREGROUND)
            ]
        )

    def _numpy_counts(self, scoremaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The same counts as :meth:`_torch_counts`, with numpy on the host."""
        values = np.asarray(scoremaps, dtype=np.float64)
        labels = np.asarray(masks)
        check_same_shape(labels.shape, values.shape, "masks")
        bins = np.searchsorted(self.edges, values, side="right") - 1
        bins[values == self.edges[-1]] = len(self.edges) - 2
        inside = (bins >= 0) & (bins < len(self.edges) - 1)
        return np.stack(
            [
                np.bincount(bins[inside & (labels == label)], minlength=len(self.edges) - 1)
                for label in (MASK_BACKGROUND, MASK_FOREGROUND)
            ]
        )

    def accumulate(self, scoremaps: Any, masks: Any) -> None:
        """Add maps ``(B, H, W)`` or ``(H, W)`` in ``[0, 1]`` and masks of the same shape, uint8
        0 background / 1 foreground / 255 ignore (ignored pixels count in neither histogram)."""
        if isinstance(scoremaps, np.ndarray) and self.device is None:
            self._host_counts += self._numpy_counts(scoremaps, masks)
        else:
            counts = self._torch_counts(scoremaps, masks)
            self._device_counts = counts if self._device_counts is None else self._device_counts + counts
        self._has_masks = True

    def merge(self, other: PxAPEvaluator) -> PxAPEvaluator:
        """Add ``other``'s histograms (same interval) into ``self``; returns ``self``."""
        if other.interval != self.interval:
            raise ValueError("merge: PxAP evaluators differ in interval")
        if other._has_masks:
            background, foreground = other.histograms()
            self._host_counts += np.stack([background, foreground]).astype(np.int64)
            self._has_masks = True
        return self

    def histograms(self) -> tuple[np.ndarray, np.ndarray]:
        """``(background, foreground)`` float64 histograms ``(T + 2,)`` in ascending score order."""
        if not self._has_masks:
            raise ValueError("PxAPEvaluator: no mask was accumulated")
        counts = self._host_counts.copy()
        if self._device_counts is not None:
            counts += self._device_counts.cpu().numpy()
        return counts[0].astype(np.float64), counts[1].astype(np.float64)

    def compute(self) -> float:
        """PxAP in percent: area under the pixel precision-recall curve, wsoleval's formula."""
        return pxap_from_histograms(*self.histograms())
