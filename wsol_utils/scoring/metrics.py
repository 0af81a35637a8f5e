"""From a class map to boxes, and the localization metrics (docs/methods.md §2).

Two protocols live here, side by side:

* **The papers' protocol** (docs/methods.md §2.1; CAM / ACoL / HCLNet tables): upsample the map to the image
  (:func:`upsample_maps`), min-max normalize, keep the pixels ``>= tau * max``, take the bounding box of
  the largest 8-connected component (:func:`map_to_box`, :func:`maps_to_boxes`), score it with the inclusive
  IoU (:func:`best_iou`) and summarize Top-1 / Top-5 / GT-known localization
  (:func:`localization_summary`).
* **The literal wsoleval reference** (docs/methods.md §2.2; "Evaluating WSOL Right", CVPR 2020): MaxBoxAcc,
  MaxBoxAccV2 and PxAP computed one threshold at a time, exactly as the public ``evaluation.py`` does
  (:func:`wsoleval_scoremap`, :func:`wsoleval_boxes`, :func:`reference_box_metrics`, :func:`reference_pxap`). It
  is written for clarity, not speed; the fast evaluator in :mod:`wsol_utils.scoring.boxeval` must reproduce its numbers
  exactly. Map -> contours -> boxes is written here independently of the fast evaluator, so that it is an oracle
  for it; the plumbing both share (IoU, GT rescaling, the threshold list, score-map and box checks, the
  best-threshold summary) is :mod:`wsol_utils.scoring.boxes`.

Where the shorthand ``int(t * 255)`` and the public wsoleval code differ, this module follows the code
(docs/methods.md §2.2 step 5, §6; see :func:`wsoleval_boxes`: the cut-off is ``int(threshold * img.max())``,
which equals ``int(threshold * 255)`` whenever the map reaches 1.0, i.e. for every min-max normalized map).

Boxes are ``(x0, y0, x1, y1)`` with inclusive pixel coordinates (ARCHITECTURE "Conventions").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import zip_longest

import cv2
import numpy as np
import torch
from torch import Tensor

from wsol_utils.nets.maps import normalize_minmax, upsample_maps
from wsol_utils.scoring.boxes import (
    MASK_BACKGROUND,
    MASK_FOREGROUND,
    V1_IOU_LEVEL,
    ZERO_BOX,
    box_iou,
    broadcast_iou,
    check_boxes,
    check_gt_boxes,
    check_iou_levels,
    check_mask,
    check_scoremap,
    max_box_accuracy,
    pxap_bin_edges,
    pxap_from_histograms,
    quantize_scoremap,
    threshold_list,
    to_numpy,
)
from wsol_utils.scoring.protocol import check_tau

__all__ = [
    "normalize_minmax",
    "upsample_maps",
    "map_to_box",
    "maps_to_boxes",
    "maps_to_boxes_at",
    "best_iou",
    "topk_correct",
    "localization_summary",
    "ten_crop_logits",
    "wsoleval_scoremap",
    "wsoleval_boxes",
    "reference_box_metrics",
    "reference_pxap",
]

ArrayLike = Tensor | np.ndarray


# ----------------------------------------------------------------------------------------------------------
# Input checks (bad input -> ValueError naming the argument and the fix; the shared ones are in
# wsol_utils.scoring.boxes)
# ----------------------------------------------------------------------------------------------------------


def _paired(first: Iterable, second: Iterable, names: tuple[str, str]) -> Iterator[tuple]:
    """``zip`` that raises a ValueError naming both arguments when their lengths differ."""
    missing = object()
    for index, (a, b) in enumerate(zip_longest(first, second, fillvalue=missing)):
        if a is missing or b is missing:
            raise ValueError(f"`{names[0]}` and `{names[1]}` have different lengths (one ends at item {index})")
        yield a, b


# ----------------------------------------------------------------------------------------------------------
# The papers' protocol (docs/methods.md §2.1)
# ----------------------------------------------------------------------------------------------------------


def _largest_component(foreground: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """``(labels, stats, label)`` of ``cv2.connectedComponentsWithStats`` (8-connected) of a non-empty bool mask, and
    the label of its largest component. Ties in pixel count go to the first label (the component whose first pixel
    comes first in row-major order)."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(foreground.astype(np.uint8), connectivity=8)
    return labels, stats, 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))  # label 0 is the background


def _largest_component_box(foreground: np.ndarray) -> np.ndarray:
    """Inclusive box ``(x0, y0, x1, y1)`` of the largest 8-connected component of a non-empty bool mask
    (:func:`_largest_component`)."""
    _, stats, label = _largest_component(foreground)
    x0, y0 = stats[label, cv2.CC_STAT_LEFT], stats[label, cv2.CC_STAT_TOP]
    width, height = stats[label, cv2.CC_STAT_WIDTH], stats[label, cv2.CC_STAT_HEIGHT]
    return np.array([x0, y0, x0 + width - 1, y0 + height - 1], dtype=np.float64)


def maps_to_boxes(scoremaps: Tensor | np.ndarray, tau: float = 0.2) -> np.ndarray:
    """One box per map by the papers' rule (docs/methods.md §2.1): normalize, keep ``>= tau * max``, largest component.

    Steps, per map: min-max normalize (:func:`normalize_minmax`); foreground = pixels with
    ``value >= tau * max`` (``>=``, not ``>``, so that for every ``tau`` in ``(0, 1]`` the maximum pixel is
    foreground and an informative map always yields a box; the CAM paper says "above 20% of the max" and
    leaves equality open); the bounding box of the largest 8-connected foreground component, inclusive.

    A map that carries no information -- constant, all zeros, or holding NaN/inf (all of which normalize to
    zeros) -- gets the zero box ``(0, 0, 0, 0)``, as wsoleval's no-contour case: such a map never earns
    credit by "predicting" the whole image.

    Args:
        scoremaps: ``(B, H, W)`` maps at image resolution (raw or normalized; any real dtype).
        tau: fraction of the max in ``(0, 1]``; the CAM default 0.2.

    Returns:
        ``(B, 4)`` float64 boxes ``(x0, y0, x1, y1)``, inclusive pixel coordinates inside the map.
    """
    return maps_to_boxes_at(scoremaps, [tau])[0]


def maps_to_boxes_at(scoremaps: Tensor | np.ndarray, taus: Sequence[float]) -> np.ndarray:
    """:func:`maps_to_boxes` at several thresholds, the maps normalized once: ``(T, B, 4)`` float64 boxes."""
    taus = [check_tau(tau, "maps_to_boxes_at") for tau in taus]
    if isinstance(scoremaps, Tensor):
        maps = scoremaps
    else:
        array = to_numpy(scoremaps, "scoremaps")
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
            raise ValueError(f"`scoremaps` must hold real numbers; got dtype {array.dtype}")
        maps = torch.tensor(array)
    if maps.ndim != 3 or maps.shape[-1] == 0 or maps.shape[-2] == 0:
        raise ValueError(f"`scoremaps` must have shape (B, H, W) with H, W > 0; got {tuple(maps.shape)}")
    normalized = normalize_minmax(maps.detach()).cpu().numpy()
    boxes = np.zeros((len(taus), len(normalized), 4), dtype=np.float64)
    for i, norm in enumerate(normalized):
        peak = norm.max()
        if peak > 0:  # otherwise: no information, keep the zero box
            for j, tau in enumerate(taus):
                boxes[j, i] = _largest_component_box(norm >= tau * peak)
    return boxes


def box_steps(scoremap: np.ndarray | Tensor, tau: float = 0.2) -> dict[str, np.ndarray]:
    """The papers' box rule of one map (docs/methods.md §2.1, :func:`maps_to_boxes`) step by step, for a figure:
    ``"map"`` the min-max normalized ``(H, W)`` map in [0, 1], ``"foreground"`` the bool mask ``map >= tau * max``,
    ``"component"`` its largest 8-connected component (bool), ``"box"`` the ``(4,)`` inclusive box around that
    component, equal to :func:`map_to_box` (all zeros, with empty masks, for a map without information)."""
    box = map_to_box(scoremap, tau)
    values = torch.as_tensor(np.asarray(scoremap, dtype=np.float64) if not isinstance(scoremap, Tensor) else scoremap)
    normalized = normalize_minmax(values.detach()[None].double())[0].cpu().numpy()
    peak = normalized.max()
    foreground = normalized >= check_tau(tau) * peak if peak > 0 else np.zeros(normalized.shape, dtype=bool)
    component = np.zeros_like(foreground)
    if foreground.any():
        labels, _, label = _largest_component(foreground)
        component = labels == label
    return {"map": normalized, "foreground": foreground, "component": component, "box": box}


def map_to_box(scoremap: np.ndarray | Tensor, tau: float = 0.2) -> np.ndarray:
    """The papers' box of one map (docs/methods.md §2.1); see :func:`maps_to_boxes` for the exact rule.

    Args:
        scoremap: ``(H, W)`` map at image resolution.
        tau: fraction of the max in ``(0, 1]``.

    Returns:
        ``(4,)`` float64 box ``(x0, y0, x1, y1)`` inclusive; ``(0, 0, 0, 0)`` for a constant or NaN map.
    """
    shape = tuple(getattr(scoremap, "shape", ()))
    if len(shape) != 2:
        raise ValueError(f"`scoremap` must be a 2-D (H, W) map; got shape {shape}")
    return maps_to_boxes(scoremap[None], tau)[0]


def _gt_array(boxes: ArrayLike, name: str) -> np.ndarray:
    """One image's GT boxes as an ``(N, 4)`` array (``(0, 4)`` when empty); a wrong shape raises naming it."""
    array = to_numpy(boxes, name)
    if array.size == 0:
        return np.zeros((0, 4))
    return array if array.ndim == 2 and array.shape[1] == 4 else check_boxes(array, name)


def best_iou(pred_boxes: ArrayLike, gt_boxes: Sequence[ArrayLike]) -> np.ndarray:
    """Per image, the best inclusive IoU of its predicted box against any of its GT boxes (docs/methods.md §2.1).

    Args:
        pred_boxes: ``(B, 4)`` one predicted box per image.
        gt_boxes: ``B`` arrays/tensors ``(N_i, 4)``, ``N_i >= 1`` (same coordinates as the predictions).

    Returns:
        ``(B,)`` float64 IoU in ``[0, 1]``.
    """
    preds = check_boxes(pred_boxes, "pred_boxes")
    if len(gt_boxes) != len(preds):
        raise ValueError(f"`gt_boxes` has {len(gt_boxes)} entries but `pred_boxes` has {len(preds)} boxes")
    gts = [_gt_array(boxes, f"gt_boxes[{i}]") for i, boxes in enumerate(gt_boxes)]
    counts = np.array([len(boxes) for boxes in gts], dtype=np.int64)
    if (counts == 0).any():
        raise ValueError(
            f"`gt_boxes[{int(np.argmin(counts))}]` is empty; every evaluated image needs at least one GT box"
        )
    if not len(preds):
        return np.empty(0, dtype=np.float64)
    flat = check_boxes(np.concatenate(gts), "gt_boxes (all images, in order)")  # (sum N_i, 4)
    owner = np.repeat(np.arange(len(preds)), counts)
    return np.maximum.reduceat(broadcast_iou(preds[owner], flat), np.cumsum(counts) - counts)


# ----------------------------------------------------------------------------------------------------------
# Classification and localization summary (docs/methods.md §2.1)
# ----------------------------------------------------------------------------------------------------------


def _check_logits_labels(logits: Tensor, labels: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[1] == 0:
        raise ValueError(
            f"`logits` must be a tensor of shape (B, C), C >= 1; got {tuple(getattr(logits, 'shape', ()))}"
        )
    if not isinstance(labels, Tensor) or labels.shape != (logits.shape[0],) or labels.is_floating_point():
        raise ValueError(
            f"`labels` must be an integer tensor of shape ({logits.shape[0]},); got "
            f"{type(labels).__name__} {tuple(getattr(labels, 'shape', ()))}"
        )
    if labels.numel() and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"`labels` must lie in [0, {logits.shape[1] - 1}]; got min {labels.min()}, max {labels.max()}")


def topk_correct(logits: Tensor, labels: Tensor, k: int) -> Tensor:
    """Whether the label is among the ``k`` highest logits (docs/methods.md §2.1, Top-k classification).

    Args:
        logits: ``(B, C)`` class scores; labels: ``(B,)`` integer labels in ``[0, C)``.
        k: ``>= 1``; with fewer classes than ``k`` the top-``min(k, C)`` are used (then always correct).

    Returns:
        ``(B,)`` bool tensor on the logits' device.
    """
    _check_logits_labels(logits, labels)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"`k` must be a positive int; got {k!r}")
    top = logits.topk(min(k, logits.shape[1]), dim=1).indices
    return (top == labels.to(top.device)[:, None]).any(dim=1)


def localization_summary(
    logits: Tensor, labels: Tensor, gt_known_iou: ArrayLike, iou_threshold: float = 0.5
) -> dict[str, float]:
    """Classification and localization accuracy/error in percent (docs/methods.md §2.1; error = 100 - accuracy).

    * ``cls_*_top1`` / ``cls_*_top5``: label is the top-1 / among the top-5 logits.
    * ``loc_*_top1``: top-1 correct AND the GT class's box has IoU >= ``iou_threshold``.
    * ``loc_*_top5``: label among the top-5 AND the GT class's box has IoU >= ``iou_threshold``.
    * ``gt_known_loc_*``: the GT class's box has IoU >= ``iou_threshold``, whatever the prediction.

    Only the GT class's box is needed: when the top-1 (or one of the top-5) is the GT class, "its box" is the
    GT class's box. With fewer than 5 classes, top-5 means top-``C`` (every label counts as in the top-5).

    Args:
        logits: ``(B, C)``; labels: ``(B,)`` integers in ``[0, C)``.
        gt_known_iou: ``(B,)`` best IoU of the GT class's box per image (e.g. :func:`best_iou`).
        iou_threshold: IoU needed for a correct box, in ``(0, 1]``.

    Returns:
        ``{"cls_err_top1", "cls_err_top5", "loc_err_top1", "loc_err_top5", "gt_known_loc_err",
        "cls_acc_top1", "cls_acc_top5", "loc_acc_top1", "loc_acc_top5", "gt_known_loc_acc"}`` -> float.
    """
    _check_logits_labels(logits, labels)
    if len(labels) == 0:
        raise ValueError("localization_summary: the batch is empty; pass at least one image")
    if not 0.0 < float(iou_threshold) <= 1.0:
        raise ValueError(f"`iou_threshold` must be in (0, 1]; got {iou_threshold!r}")
    ious = to_numpy(gt_known_iou, "gt_known_iou").astype(np.float64)
    if ious.shape != (len(labels),) or np.isnan(ious).any():
        raise ValueError(f"`gt_known_iou` must be ({len(labels)},) without NaN; got shape {ious.shape}")
    box_ok = ious >= iou_threshold
    top1 = topk_correct(logits, labels, 1).cpu().numpy()
    top5 = topk_correct(logits, labels, 5).cpu().numpy()
    accuracies = {
        "cls_acc_top1": top1,
        "cls_acc_top5": top5,
        "loc_acc_top1": top1 & box_ok,
        "loc_acc_top5": top5 & box_ok,
        "gt_known_loc_acc": box_ok,
    }
    summary: dict[str, float] = {}
    for key, correct in accuracies.items():
        acc = 100.0 * float(correct.mean())
        summary[key] = acc
        summary[key.replace("_acc", "_err")] = 100.0 - acc
    return summary


def ten_crop_logits(logits: Tensor, num_crops: int = 10, softmax: bool = True) -> Tensor:
    """Average the scores of the crops of each image (10-crop classification, docs/methods.md §2.1 option).

    Args:
        logits: ``(B * num_crops, C)`` with the crops of one image consecutive (what flattening
            ``torchvision.transforms.TenCrop``'s ``(B, num_crops, 3, H, W)`` batch gives), or ``(B, num_crops, C)``.
        num_crops: crops per image.
        softmax: average class probabilities (default) instead of raw logits.

    Returns:
        ``(B, C)`` averaged probabilities (``softmax=True``) or logits.
    """
    if not isinstance(logits, Tensor) or logits.ndim not in (2, 3):
        raise ValueError(
            f"`logits` must be (B * num_crops, C) or (B, num_crops, C); got {tuple(getattr(logits, 'shape', ()))}"
        )
    if logits.ndim == 2:
        if num_crops < 1 or logits.shape[0] % num_crops:
            raise ValueError(f"`logits` has {logits.shape[0]} rows, not a multiple of num_crops={num_crops}")
        logits = logits.reshape(-1, num_crops, logits.shape[-1])
    scores = logits.softmax(dim=-1) if softmax else logits
    return scores.mean(dim=1)


# ----------------------------------------------------------------------------------------------------------
# The literal wsoleval reference (docs/methods.md §2.2)
# ----------------------------------------------------------------------------------------------------------


def wsoleval_scoremap(raw_map: ArrayLike, size: int | tuple[int, int] = (224, 224)) -> np.ndarray:
    """A raw class map as wsoleval scores it (docs/methods.md §2.2; wsoleval ``inference.py``).

    ``cv2.resize(map, (W, H), interpolation=cv2.INTER_CUBIC)`` in float64 (wsoleval's ``t2n`` casts to
    float64 first), then min-max normalization (:func:`normalize_minmax`: the same float operations as
    wsoleval's ``normalize_scoremap``; constant or NaN -> zeros; inf -> zeros, where wsoleval would fail).

    Args:
        raw_map: ``(h, w)`` raw class map.
        size: output ``(H, W)`` or an int for a square. (wsoleval passes the image's ``(H, W)`` where
            OpenCV expects ``(W, H)``; the two agree for its square 224x224 inputs.)

    Returns:
        ``(H, W)`` float64 map in ``[0, 1]``.
    """
    arr = to_numpy(raw_map, "raw_map")
    if arr.ndim != 2 or 0 in arr.shape or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"`raw_map` must be a real 2-D (h, w) map; got shape {arr.shape}, dtype {arr.dtype}")
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    resized = cv2.resize(arr.astype(np.float64), (width, height), interpolation=cv2.INTER_CUBIC)
    return normalize_minmax(torch.tensor(resized)).numpy()


def _contours_at(image: np.ndarray, threshold: float) -> Sequence[np.ndarray]:
    """Contours of ``image > int(threshold * image.max())`` (``cv2.THRESH_BINARY`` is strict), RETR_TREE."""
    cutoff = int(threshold * np.max(image))
    _, binary = cv2.threshold(image, cutoff, 255, cv2.THRESH_BINARY)
    contours, _ = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    return contours


def _contour_boxes(contours: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """``cv2.boundingRect`` of each contour as ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]``; none -> zero box."""
    if len(contours) == 0:
        return np.array([ZERO_BOX], dtype=np.int64)
    boxes = []
    for contour in contours:
        x, y, w, h = cv2.boundingRect(contour)
        boxes.append([x, y, min(x + w, width - 1), min(y + h, height - 1)])
    return np.array(boxes, dtype=np.int64)


def _largest_contour(contours: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The contour with the largest ``cv2.contourArea`` (ties: the first), as a one-element list."""
    return [max(contours, key=cv2.contourArea)] if len(contours) else []


def wsoleval_boxes(scoremap: ArrayLike, threshold: float, multi_contour: bool) -> np.ndarray:
    """Boxes of one map at one threshold, literally as wsoleval (docs/methods.md §2.2,
    ``compute_bboxes_from_scoremaps``).

    1. ``img = (scoremap * 255).astype(np.uint8)`` (truncation, in float64);
    2. ``binary = img > int(threshold * img.max())`` (``cv2.threshold(..., THRESH_BINARY)``, strict). The shorthand
       ``int(threshold * 255)`` (docs/methods.md §2.2, step 5) differs: the public code uses ``img.max()``, which
       is 255 for any map that reaches 1.0 (every min-max normalized, non-constant map), so the two differ only
       for maps whose max is below 1 -- and an all-zero map then has no foreground at any threshold;
    3. ``cv2.findContours(binary, RETR_TREE, CHAIN_APPROX_SIMPLE)``; none -> one box ``[0, 0, 0, 0]``;
    4. V1 (``multi_contour=False``): only the contour with the largest ``cv2.contourArea`` (ties: the first);
       V2 (``multi_contour=True``): every contour, hole contours included;
    5. ``x, y, w, h = cv2.boundingRect(c)`` -> ``[x, y, min(x + w, W - 1), min(y + h, H - 1)]`` (note: one
       pixel wider than the inclusive box of the contour, except where clipped -- wsoleval's convention).

    Args:
        scoremap: ``(H, W)`` float map in ``[0, 1]`` (NaN or out-of-range values -> ValueError).
        threshold: the map threshold in ``[0, 1)``, normally a value of ``np.arange(0, 1, interval)``.
        multi_contour: False for MaxBoxAcc (V1), True for MaxBoxAccV2.

    Returns:
        ``(K, 4)`` int64 boxes ``(x0, y0, x1, y1)``, ``K >= 1``.
    """
    image = quantize_scoremap(scoremap)
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"`threshold` must be in [0, 1]; got {threshold!r}")
    contours = _contours_at(image, threshold)
    if not multi_contour:
        contours = _largest_contour(contours)
    return _contour_boxes(contours, *image.shape)


def reference_box_metrics(
    scoremaps: Iterable[ArrayLike],
    gt_boxes: Iterable[ArrayLike],
    *,
    interval: float = 0.001,
    iou_levels: Sequence[int] = (30, 50, 70),
) -> dict:
    """MaxBoxAcc and MaxBoxAccV2, one image and one threshold at a time (docs/methods.md §2.2; wsoleval
    ``BoxEvaluator``).

    For every image and every threshold ``t`` of ``np.arange(0, 1, interval)``, the boxes of
    :func:`wsoleval_boxes` are scored by their best inclusive IoU against the image's GT boxes; the image is
    correct at IoU level ``L`` when that IoU is ``>= L / 100``.

    * ``maxboxacc`` (V1): largest contour only, IoU level 50, max over thresholds of the accuracy.
    * ``maxboxacc_v2``: all contours; for each level in ``iou_levels`` the max over thresholds (its own best
      threshold), then the mean over levels.

    Args:
        scoremaps: ``(H, W)`` float maps in ``[0, 1]`` (e.g. :func:`wsoleval_scoremap`); NaN -> ValueError.
        gt_boxes: per image ``(N_i, 4)`` inclusive boxes in the map's pixel coordinates (e.g.
            :func:`wsol_utils.scoring.boxes.rescale_boxes`); fractional coordinates are truncated with ``int()`` as
            wsoleval's ``resize_bbox`` does. Negative coordinates or ``x1 < x0`` -> ValueError (wsoleval refuses them
            too); coordinates beyond the map are kept as they are (wsoleval does not clip).
        interval: threshold step in ``(0, 1)``.
        iou_levels: integer IoU percentages for V2.

    Returns:
        The ARCHITECTURE result dict: ``num_images``, ``interval``, ``iou_levels``, ``maxboxacc``,
        ``maxboxacc_threshold``, ``maxboxacc_v2`` and ``v2_per_iou`` (``{"30": {"accuracy", "threshold"}, ...}``);
        accuracies in percent, thresholds the first value of ``np.arange(0, 1, interval)`` reaching the max.
    """
    thresholds = threshold_list(interval)
    levels = check_iou_levels(iou_levels)
    correct_v1 = np.zeros(len(thresholds))
    correct_v2 = np.zeros((len(levels), len(thresholds)))
    num_images = 0
    for index, (scoremap, boxes) in enumerate(_paired(scoremaps, gt_boxes, ("scoremaps", "gt_boxes"))):
        image = quantize_scoremap(scoremap, f"scoremaps[{index}]")
        gts = check_gt_boxes(boxes, f"gt_boxes[{index}]")
        for t_index, threshold in enumerate(thresholds):
            contours = _contours_at(image, threshold)
            iou_v1 = box_iou(_contour_boxes(_largest_contour(contours), *image.shape), gts).max()
            iou_v2 = box_iou(_contour_boxes(contours, *image.shape), gts).max()
            correct_v1[t_index] += iou_v1 >= V1_IOU_LEVEL / 100
            for l_index, level in enumerate(levels):
                correct_v2[l_index, t_index] += iou_v2 >= level / 100
        num_images += 1
    if num_images == 0:
        raise ValueError("reference_box_metrics: no score maps were given")
    return max_box_accuracy(correct_v1, correct_v2, num_images, interval, levels)


def reference_pxap(scoremaps: Iterable[ArrayLike], masks: Iterable[ArrayLike], *, interval: float = 0.001) -> float:
    """PxAP: area under the pixel precision-recall curve over the whole data set (docs/methods.md §2.2;
    ``MaskEvaluator``).

    Histograms of the float scores of foreground (mask 1) and background (mask 0) pixels over the bin edges
    ``np.arange(0, 1, interval) + [1.0, 2.0, 3.0]`` (``np.histogram``: left-closed bins, the last closed),
    summed over images; ignore pixels (255) count in neither. Then, from the highest bin down,
    ``tp = hist_fg[::-1].cumsum()``, ``fp = hist_bg[::-1].cumsum()``, ``precision = tp / (tp + fp)``,
    ``recall = tp / num_fg``, and ``PxAP = 100 * sum(precision[1:] * diff(recall))`` over the entries with
    ``tp + fp != 0``.

    Args:
        scoremaps: ``(H, W)`` float maps in ``[0, 1]``.
        masks: ``(H, W)`` uint8 masks with values 0 / 1 / 255, one per map.
        interval: threshold step in ``(0, 1)``.

    Returns:
        PxAP in percent.
    """
    edges = pxap_bin_edges(interval)
    hist_fg = np.zeros(len(edges) - 1, dtype=np.float64)
    hist_bg = np.zeros(len(edges) - 1, dtype=np.float64)
    for index, (scoremap, mask) in enumerate(_paired(scoremaps, masks, ("scoremaps", "masks"))):
        checked = check_scoremap(scoremap, f"scoremaps[{index}]")
        labels = check_mask(mask, checked.shape, f"masks[{index}]")
        hist_fg += np.histogram(checked[labels == MASK_FOREGROUND], bins=edges)[0]
        hist_bg += np.histogram(checked[labels == MASK_BACKGROUND], bins=edges)[0]
    return pxap_from_histograms(hist_bg, hist_fg)
