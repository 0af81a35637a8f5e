"""Box and score-map plumbing shared by the scorers (docs/methods.md §2): written once, used by the papers' protocol
and the literal wsoleval reference (:mod:`wsol_utils.scoring.metrics`) and by the fast evaluator
(:mod:`wsol_utils.scoring.boxeval`).

* conversion and checks: :func:`to_numpy`, :func:`check_boxes`, :func:`check_gt_boxes`, :func:`check_scoremap`,
  :func:`check_mask`, :func:`check_iou_levels`;
* boxes: :func:`box_overlap`, :func:`broadcast_iou` (unchecked, any leading shape), :func:`box_iou` (checked,
  pairwise), :func:`rescale_boxes` (wsoleval's ``resize_bbox``);
* wsoleval's grid and summaries: :func:`threshold_list`, :func:`pxap_bin_edges`, :func:`quantize_scoremap`,
  :func:`best_threshold`, :func:`max_box_accuracy` (per-threshold counts -> the result dict),
  :func:`pxap_from_histograms`.

What turns a map into boxes (contours, components) is *not* here: the reference and the fast evaluator each do it
their own way, so that one is an oracle for the other (tests/test_boxeval.py). Boxes are ``(x0, y0, x1, y1)`` with
inclusive pixel coordinates (docs/ARCHITECTURE.md "Conventions"). Imports numpy only (no torch: the fast
evaluator's worker processes must start without it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "V1_IOU_LEVEL",
    "MASK_BACKGROUND",
    "MASK_FOREGROUND",
    "MASK_IGNORE",
    "ZERO_BOX",
    "to_numpy",
    "check_boxes",
    "check_gt_boxes",
    "check_scoremap",
    "check_same_shape",
    "check_mask",
    "check_iou_levels",
    "box_overlap",
    "broadcast_iou",
    "box_iou",
    "rescale_boxes",
    "threshold_list",
    "pxap_bin_edges",
    "quantize_scoremap",
    "best_threshold",
    "max_box_accuracy",
    "pxap_from_histograms",
]

#: MaxBoxAcc (V1) is reported at IoU 50 (wsoleval ``evaluate_wsol``: ``performance[iou_threshold_list.index(50)]``).
V1_IOU_LEVEL = 50
#: Mask values (docs/ARCHITECTURE.md "Conventions"): background, foreground, ignored (counted in neither).
MASK_BACKGROUND, MASK_FOREGROUND, MASK_IGNORE = 0, 1, 255
#: wsoleval's box where there is nothing to box (a binary image without contours, a constant or NaN map): it scores
#: like any box, and its IoU with a GT box is ``1 / area(GT)`` where the GT box holds the pixel ``(0, 0)``, else 0.
ZERO_BOX = (0, 0, 0, 0)


# ----------------------------------------------------------------------------------------------------------
# Conversion and checks (bad input -> ValueError naming the argument and the fix)
# ----------------------------------------------------------------------------------------------------------


def to_numpy(x: Any, name: str = "array") -> np.ndarray:
    """Tensor (any device, detached) / array / nested sequence -> numpy array (no copy when already numpy).

    A torch Tensor can only exist once torch is imported, so torch is looked up in ``sys.modules`` and never
    imported here.
    """
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"`{name}` must be an array or tensor; got {type(x).__name__}") from err


def check_boxes(boxes: Any, name: str) -> np.ndarray:
    """Validate ``(N, 4)`` finite real boxes with ``x1 >= x0`` and ``y1 >= y0``; return them as float64 ``(N, 4)``."""
    arr = to_numpy(boxes, name)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"`{name}` must have shape (N, 4) as (x0, y0, x1, y1); got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"`{name}` must hold real numbers; got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"`{name}` holds NaN or inf coordinates; remove or fix those boxes")
    bad = np.flatnonzero((arr[:, 2] < arr[:, 0]) | (arr[:, 3] < arr[:, 1]))
    if bad.size:
        raise ValueError(
            f"`{name}` row {int(bad[0])} = {arr[bad[0]].tolist()} has x1 < x0 or y1 < y0; boxes must be "
            "(x0, y0, x1, y1) with x1 >= x0 and y1 >= y0"
        )
    return arr


def check_gt_boxes(boxes: Any, name: str) -> np.ndarray:
    """One image's GT boxes as wsoleval scores them: :func:`check_boxes`, at least one box, non-negative (wsoleval
    refuses negative boxes), truncated with ``int()`` (wsoleval's ``resize_bbox``); int64 ``(N, 4)``, ``N >= 1``.
    Coordinates beyond the map are kept (wsoleval does not clip)."""
    arr = check_boxes(boxes, name)
    if len(arr) == 0 or (arr < 0).any():
        raise ValueError(
            f"`{name}` must hold at least one GT box, with non-negative coordinates; got {arr.tolist()[:3]}"
        )
    return np.trunc(arr).astype(np.int64)


def check_scoremap(scoremap: Any, name: str = "scoremap") -> np.ndarray:
    """wsoleval's ``check_scoremap_validity``: a non-empty 2-D real map in ``[0, 1]`` without NaN; returned as float64.

    wsoleval insists on float64 input; a float32 map is converted losslessly here (what a user of wsoleval
    would do with ``.astype(np.float64)``), so ``map * 255`` is then computed in float64 as wsoleval does.
    """
    arr = to_numpy(scoremap, name)
    if arr.ndim != 2:
        raise ValueError(f"{name}: a score map must be 2-D (H, W), got shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(f"{name}: a score map must be a float array in [0, 1], got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError(f"{name}: empty score map of shape {tuple(arr.shape)}; it needs at least one pixel")
    arr = arr.astype(np.float64, copy=False)
    if np.isnan(arr).any():
        raise ValueError(
            f"{name}: score map holds NaN; normalize it first (wsoleval's normalize_scoremap: NaN -> zeros)"
        )
    if arr.min() < 0 or arr.max() > 1:
        raise ValueError(
            f"{name}: score map values must lie in [0, 1] (wsoleval's check), got "
            f"[{float(arr.min()):.4g}, {float(arr.max()):.4g}]; min-max normalize it first"
        )
    return arr


def check_same_shape(shape: tuple[int, ...], map_shape: tuple[int, ...], name: str) -> None:
    """A mask's shape must be its score map's."""
    if tuple(shape) != tuple(map_shape):
        raise ValueError(f"`{name}` has shape {tuple(shape)} but its score map has shape {tuple(map_shape)}")


def check_mask(mask: Any, map_shape: tuple[int, ...] | None, name: str) -> np.ndarray:
    """A mask of values 0 (background), 1 (foreground) and 255 (ignore), of shape ``map_shape`` unless ``None``."""
    arr = to_numpy(mask, name)
    if map_shape is not None:
        check_same_shape(arr.shape, map_shape, name)
    if not np.isin(arr, (MASK_BACKGROUND, MASK_FOREGROUND, MASK_IGNORE)).all():
        raise ValueError(f"`{name}` must hold only 0 (background), 1 (foreground) and 255 (ignore)")
    return arr


def check_iou_levels(iou_levels: Sequence[int]) -> tuple[int, ...]:
    """MaxBoxAccV2's IoU levels: a non-empty sequence of integer percentages in ``(0, 100]``."""
    levels = list(iou_levels)
    if not levels or not all(isinstance(v, (int, np.integer)) and 0 < v <= 100 for v in levels):
        raise ValueError(
            f"`iou_levels` must be a non-empty list of integer percentages in (0, 100]; got {iou_levels!r}"
        )
    return tuple(int(v) for v in levels)


# ----------------------------------------------------------------------------------------------------------
# Boxes (docs/methods.md §2.1-§2.2)
# ----------------------------------------------------------------------------------------------------------


def box_overlap(a: np.ndarray, b: np.ndarray, inclusive: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(intersection, area_a, area_b)`` of boxes ``a (..., 4)`` and ``b (..., 4)`` that broadcast, unchecked.

    Inclusive (``+1``) convention: ``(x0, y0, x1, y1)`` covers ``(x1 - x0 + 1) * (y1 - y0 + 1)`` pixels and the
    intersection is ``max(0, min(x1) - max(x0) + 1) * max(0, min(y1) - max(y0) + 1)``; ``inclusive=False`` drops
    the ``+1`` (continuous coordinates). Integer boxes give integer counts (exact); float boxes float64.
    """
    one = 1 if inclusive else 0
    inter_w = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + one)
    inter_h = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + one)
    area_a = (a[..., 2] - a[..., 0] + one) * (a[..., 3] - a[..., 1] + one)
    area_b = (b[..., 2] - b[..., 0] + one) * (b[..., 3] - b[..., 1] + one)
    return inter_w * inter_h, area_a, area_b


def broadcast_iou(a: np.ndarray, b: np.ndarray, inclusive: bool = True) -> np.ndarray:
    """IoU of boxes ``a (..., 4)`` and ``b (..., 4)`` that broadcast, unchecked (wsoleval ``calculate_multiple_iou``).

    ``intersection / (area_a + area_b - intersection)`` in float64 (:func:`box_overlap`); where the union is
    ``<= 0`` (degenerate boxes) the IoU is 0. ``a[:, None]`` and ``b[None]`` give the ``(N, M)`` matrix.
    """
    intersection, area_a, area_b = box_overlap(a, b, inclusive)
    union = area_a + area_b - intersection
    degenerate = union <= 0
    return np.where(degenerate, 0.0, intersection / np.where(degenerate, 1, union))


def box_iou(boxes_a: Any, boxes_b: Any, inclusive: bool = True) -> np.ndarray:
    """Pairwise IoU of checked boxes (docs/methods.md §2.2, wsoleval ``calculate_multiple_iou``).

    With ``inclusive=True`` a box ``(x0, y0, x1, y1)`` covers ``(x1 - x0 + 1) * (y1 - y0 + 1)`` pixels
    (the ``+1`` convention), the intersection is ``max(0, x1 - x0 + 1) * max(0, y1 - y0 + 1)`` of the
    overlap. With ``inclusive=False`` the ``+1`` is dropped (continuous coordinates). Where the union
    is ``<= 0`` the IoU is 0. Boxes are not clipped to any image.

    Args:
        boxes_a: ``(N, 4)``; boxes_b: ``(M, 4)`` -- arrays or tensors, finite, ``x1 >= x0``, ``y1 >= y0``.

    Returns:
        ``(N, M)`` float64 IoU in ``[0, 1]``.
    """
    a = check_boxes(boxes_a, "boxes_a")
    b = check_boxes(boxes_b, "boxes_b")
    return broadcast_iou(a[:, None, :], b[None, :, :], inclusive)


def rescale_boxes(boxes: Any, image_size: tuple[int, int], map_size: int | tuple[int, int] = 224) -> np.ndarray:
    """GT boxes from the original image to the map, truncated with ``int()`` (wsoleval ``resize_bbox``).

    ``x' = int(float(x) * new_w / w)`` (same float operations in the same order), likewise for y.

    Args:
        boxes: ``(N, 4)`` inclusive ``(x0, y0, x1, y1)`` in the original image, non-negative.
        image_size: the original ``(width, height)`` (wsoleval's ``image_sizes.txt`` order).
        map_size: the map's ``(width, height)``, or an int for a square.

    Returns:
        ``(N, 4)`` int64 boxes.
    """
    arr = check_boxes(boxes, "boxes")
    if (arr < 0).any():
        raise ValueError("`boxes` has negative coordinates; wsoleval requires non-negative boxes")
    width, height = map(float, image_size)
    new_width, new_height = map(float, (map_size, map_size) if isinstance(map_size, int) else map_size)
    if min(width, height, new_width, new_height) <= 0:
        raise ValueError(f"`image_size` {image_size!r} and `map_size` {map_size!r} must be positive (width, height)")
    scaled = arr * np.array([new_width, new_height, new_width, new_height])
    scaled = scaled / np.array([width, height, width, height])
    return np.trunc(scaled).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------
# wsoleval's threshold grid, quantisation and summaries (docs/methods.md §2.2)
# ----------------------------------------------------------------------------------------------------------


def threshold_list(interval: float) -> np.ndarray:
    """wsoleval's CAM thresholds ``np.arange(0, 1, interval)``, float64 ``(T,)`` (``T = 1000`` at 0.001)."""
    if not (isinstance(interval, (int, float, np.floating)) and 0.0 < float(interval) < 1.0):
        raise ValueError(f"interval must be in (0, 1), got {interval!r} (a number; wsoleval's default is 0.001)")
    return np.arange(0, 1, interval)


def pxap_bin_edges(interval: float) -> np.ndarray:
    """PxAP's histogram edges ``threshold_list(interval) + [1, 2, 3]``, ``(T + 3,)`` (wsoleval ``MaskEvaluator``):
    bins ``[t_0, t_1), ..., [t_{T-1}, 1), [1, 2), [2, 3]`` as ``np.histogram`` reads them (the last bin closed)."""
    return np.append(threshold_list(interval), [1.0, 2.0, 3.0])


def quantize_scoremap(scoremap: Any, name: str = "scoremap") -> np.ndarray:
    """wsoleval's quantisation ``(scoremap * 255).astype(np.uint8)`` (truncation) of a :func:`check_scoremap`-checked
    ``(H, W)`` map, the product in float64; uint8 ``(H, W)``."""
    return (check_scoremap(scoremap, name) * 255).astype(np.uint8)


def best_threshold(num_correct: np.ndarray, num_images: int, thresholds: np.ndarray) -> dict[str, float]:
    """Max over thresholds of the accuracy ``num_correct * 100 / num_images`` (percent) and the first threshold
    reaching it: ``{"accuracy", "threshold"}``. ``num_correct``, ``thresholds``: ``(T,)``."""
    accuracies = num_correct * 100.0 / float(num_images)
    best = int(np.argmax(accuracies))
    return {"accuracy": float(accuracies[best]), "threshold": float(thresholds[best])}


def max_box_accuracy(
    correct_v1: np.ndarray, correct_v2: np.ndarray, num_images: int, interval: float, iou_levels: Sequence[int]
) -> dict[str, Any]:
    """The result dict of MaxBoxAcc and MaxBoxAccV2 (docs/ARCHITECTURE.md) from per-threshold correct counts.

    Args:
        correct_v1: ``(T,)`` images whose largest contour's box reaches IoU 50, per threshold.
        correct_v2: ``(L, T)`` images whose best box reaches ``iou_levels[l]`` percent, per threshold.
        num_images: images counted, ``>= 1``.
        interval: the threshold step (thresholds :func:`threshold_list`).
        iou_levels: the ``L`` IoU percentages.

    Returns:
        ``num_images``, ``interval``, ``iou_levels``, ``maxboxacc`` (V1: max over thresholds), ``maxboxacc_threshold``,
        ``maxboxacc_v2`` (the mean over levels of each level's max over thresholds) and ``v2_per_iou``
        (``{"30": {"accuracy", "threshold"}, ...}``); accuracies in percent.
    """
    thresholds = threshold_list(interval)
    v1 = best_threshold(correct_v1, num_images, thresholds)
    per_iou = {
        str(level): best_threshold(counts, num_images, thresholds) for level, counts in zip(iou_levels, correct_v2)
    }
    return {
        "num_images": num_images,
        "interval": float(interval),
        "iou_levels": [int(level) for level in iou_levels],
        "maxboxacc": v1["accuracy"],
        "maxboxacc_threshold": v1["threshold"],
        "maxboxacc_v2": float(np.mean([entry["accuracy"] for entry in per_iou.values()])),
        "v2_per_iou": per_iou,
    }


def pxap_from_histograms(background: np.ndarray, foreground: np.ndarray) -> float:
    """PxAP in percent from background and foreground pixel histograms ``(T + 2,)`` over :func:`pxap_bin_edges`.

    From the highest bin down, ``tp = foreground[::-1].cumsum()``, ``fp = background[::-1].cumsum()``,
    ``precision = tp / (tp + fp)``, ``recall = tp / num_fg``, and ``PxAP = 100 * sum(precision[1:] *
    diff(recall))`` over the entries with ``tp + fp != 0`` (wsoleval ``MaskEvaluator.compute``).
    """
    foreground = np.asarray(foreground, dtype=np.float64)
    num_fg = foreground.sum()
    if num_fg <= 0:
        raise ValueError("PxAP: no foreground pixel (mask value 1) in the evaluated masks")
    tp = foreground[::-1].cumsum()
    fp = np.asarray(background, dtype=np.float64)[::-1].cumsum()
    nonzero = (tp + fp) != 0
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
    recall = tp / num_fg
    return float(100 * (precision[1:] * np.diff(recall))[nonzero[1:]].sum())
