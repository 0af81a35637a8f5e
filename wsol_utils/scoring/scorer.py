"""The one map scorer: maps + GT boxes (+ masks, logits) -> boxes, IoUs, per-image records and a protocol's metrics.

Every number the suite reports about a map is computed here, under a :class:`~wsol_utils.scoring.protocol.Protocol`:
:func:`wsol_utils.engine.evaluate` (a model's maps), :func:`wsol_utils.engine.baselines.evaluate_baseline` (maps without
a model), :func:`wsol_utils.engine.evaluate.score_map_stream` (any map source), :func:`wsol_utils.engine.tau_curve`
(:func:`localized_at`) and the explorer (:class:`wsol_utils.ui.widgets.Explorer`) all call it.

Per batch (:meth:`MapScorer.add`): each branch's map ``(B, H, W)`` in ``[0, 1]`` at image resolution is boxed at
``protocol.tau`` (largest 8-connected component, docs/methods.md §2.1, :func:`score_boxes`) and scored by its best
IoU with the GT boxes; a box localizes its object when ``IoU >= protocol.iou_threshold``
(:meth:`~wsol_utils.scoring.protocol.Protocol.localized`). The ``protocol.wsoleval`` branches also stream into
:class:`wsol_utils.scoring.boxeval.BoxEvaluator` (MaxBoxAcc / V2) and, with masks,
:class:`wsol_utils.scoring.boxeval.PxAPEvaluator`
(docs/methods.md §2.2). :meth:`MapScorer.summary` gives, per branch,
:func:`wsol_utils.scoring.metrics.localization_summary`
(GT-known, top-1 and top-5 loc, classification) and the wsoleval metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from wsol_utils.scoring import boxeval, metrics
from wsol_utils.scoring.protocol import Protocol, check_wsoleval

__all__ = [
    "BoxScores",
    "MapScorer",
    "classifier_logits",
    "gt_boxes_numpy",
    "localized_at",
    "mass_fractions",
    "score_boxes",
    "wsoleval_branches",
]


def gt_boxes_numpy(boxes: Sequence[Tensor]) -> list[np.ndarray]:
    """A batch's GT boxes as float64 ``(N_i, 4)`` arrays, as the metrics score them."""
    return [b.detach().cpu().numpy().astype(np.float64).reshape(-1, 4) for b in boxes]


@dataclass
class BoxScores:
    """Boxes and their IoU, per branch."""

    boxes: dict[str, np.ndarray]  # branch -> (B, 4) inclusive pixel boxes
    ious: dict[str, np.ndarray]  # branch -> (B,) best IoU with a GT box


def score_boxes(full: Mapping[str, Tensor], gt_boxes: Sequence[np.ndarray], tau: float) -> BoxScores:
    """Each map ``(B, H, W)`` in ``[0, 1]`` -> its box at ``tau`` of the max (docs/methods.md §2.1) and the best IoU
    with the image's GT boxes ``(N_i, 4)``."""
    boxes = {name: metrics.maps_to_boxes(value, tau) for name, value in full.items()}
    return BoxScores(boxes, {name: metrics.best_iou(value, list(gt_boxes)) for name, value in boxes.items()})


def localized_at(full: Tensor, gt_boxes: Sequence[np.ndarray], protocol: Protocol) -> np.ndarray:
    """Bool ``(T, B)``: whether the box of each map ``(B, H, W)`` at each tau of ``protocol.tau_grid`` localizes
    its object (:meth:`~wsol_utils.scoring.protocol.Protocol.localized`); the maps are normalized once
    (:func:`wsol_utils.scoring.metrics.maps_to_boxes_at`). The mean over ``B`` is the GT-known loc accuracy curve."""
    boxes = metrics.maps_to_boxes_at(full, protocol.tau_grid)
    return np.stack([protocol.localized(metrics.best_iou(at, list(gt_boxes))) for at in boxes])


def mass_fractions(maps: Tensor, regions: Mapping[str, Tensor]) -> dict[str, np.ndarray]:
    """Fraction of each map's mass inside each region: ``sum(map * region) / sum(map)``; ``(B,)`` each.

    ``maps`` ``(B, H, W)`` in ``[0, 1]``; ``regions`` name -> bool ``(B, H, W)``. A zero map gives NaN.
    """
    total = maps.sum(dim=(-2, -1))
    out = {}
    for name, region in regions.items():
        inside = (maps * region.to(maps.dtype)).sum(dim=(-2, -1))
        out[name] = torch.where(total > 0, inside / total.clamp_min(1e-12), torch.nan).cpu().numpy()
    return out


def classifier_logits(logits: Tensor | None) -> Tensor | None:
    """``logits`` ``(B, C)`` as float32 on the CPU, or ``None`` when the maps come without a classifier: logits
    absent, of width 0 or all NaN (a calibration baseline, docs/methods.md §2.4)."""
    if logits is None or logits.numel() == 0 or bool(torch.isnan(logits).all()):
        return None
    return logits.float().cpu()


def wsoleval_branches(wsoleval: bool | str, branches: tuple[str, ...]) -> tuple[str, ...]:
    """The branches scored with MaxBoxAcc / V2 / PxAP: all (``True``), none (``False``) or the method's main map
    (``"main"``: the last branch, ``("a",)`` for one-branch methods, else ``("fused",)``)."""
    if check_wsoleval(wsoleval) == "main":
        return branches[-1:]
    return branches if wsoleval else ()


def _regions(batch: Any, head: Tensor | None, device: torch.device) -> dict[str, Tensor]:
    """Bool ``(B, H, W)`` regions: ``object`` / ``background`` from the masks (ignore pixels in neither), and
    ``head`` when the data set has part masks."""
    regions: dict[str, Tensor] = {}
    if batch.masks is not None:
        masks = batch.masks.to(device)
        regions["object"], regions["background"] = masks == 1, masks == 0
    if head is not None:
        regions["head"] = head.to(device)
    return regions


def _classification_columns(labels: Tensor, logits: Tensor | None) -> dict[str, np.ndarray]:
    """``pred``, ``correct_top1`` and ``correct_top5`` per image (-1 / NaN without a classifier)."""
    if logits is None:
        missing = np.full(len(labels), np.nan)
        return {"pred": np.full(len(labels), -1, dtype=np.int64), "correct_top1": missing, "correct_top5": missing}
    top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
    return {
        "pred": top5[:, 0].numpy(),
        "correct_top1": (top5[:, 0] == labels).numpy(),
        "correct_top5": (top5 == labels[:, None]).any(1).numpy(),
    }


class MapScorer:
    """Streaming scorer of a split's maps under ``protocol`` (see the module docstring).

    Args:
        protocol: the :class:`~wsol_utils.scoring.protocol.Protocol` (``tau``, ``iou_threshold``, ``wsoleval``).
        branches: the branch names every batch brings (``("a",)``, or ``("a", "b", "fused")``).
        has_masks: whether batches carry object masks (then PxAP and the mass columns are computed).
        device: where the PxAP accumulators live.
        keep_low: keep each batch's feature-resolution maps (:meth:`add`'s ``low``) for :attr:`low_maps`.
    """

    def __init__(
        self,
        protocol: Protocol,
        branches: tuple[str, ...],
        *,
        has_masks: bool,
        device: torch.device | str = "cpu",
        keep_low: bool = False,
    ) -> None:
        self.protocol = protocol
        self.branches = tuple(branches)
        self.wsoleval = wsoleval_branches(protocol.wsoleval, self.branches)
        self.keep_low = keep_low
        self.gt_boxes: list[np.ndarray] = []
        self._records: list[pd.DataFrame] = []
        self._logits: list[Tensor] = []
        self._labels: list[Tensor] = []
        self._ious: dict[str, list[np.ndarray]] = {b: [] for b in self.branches}
        self._low: dict[str, list[np.ndarray]] = {b: [] for b in self.branches}
        self._box_evals = {b: boxeval.BoxEvaluator() for b in self.wsoleval}
        self._pxap_evals = {b: boxeval.PxAPEvaluator(device=torch.device(device)) for b in self.wsoleval if has_masks}

    @property
    def num_images(self) -> int:
        """Images added so far."""
        return len(self.gt_boxes)

    def add(
        self,
        batch: Any,
        full: Mapping[str, Tensor],
        *,
        logits: Tensor | None = None,
        low: Mapping[str, Tensor] | None = None,
        head: Tensor | None = None,
    ) -> BoxScores:
        """Score one batch and return its boxes and IoUs.

        Args:
            batch: a :class:`wsol_utils.data.WSOLBatch` (``image_ids``, ``labels`` ``(B,)``, ``boxes``, ``masks``).
            full: branch -> ``(B, H, W)`` map in ``[0, 1]`` at image resolution, one per :attr:`branches`.
            logits: ``(B, C)`` classification logits, or ``None`` / all NaN (no classifier: ``pred`` -1,
                ``correct_top*`` NaN, classification metrics NaN).
            low: branch -> ``(B, h, w)`` feature-resolution maps (kept when ``keep_low``).
            head: bool ``(B, H, W)`` head-part masks (``{branch}_mass_head`` column), or ``None``.
        """
        gt_boxes = gt_boxes_numpy(batch.boxes)
        labels = batch.labels.cpu()
        scores = score_boxes({b: full[b] for b in self.branches}, gt_boxes, self.protocol.tau)
        chosen = classifier_logits(logits)
        columns: dict[str, Any] = {
            "image_id": list(batch.image_ids),
            "label": labels.numpy(),
            **_classification_columns(labels, chosen),
        }
        regions = _regions(batch, head, batch.images.device)
        for name in self.branches:
            boxes, iou = scores.boxes[name], scores.ious[name]
            self._ious[name].append(iou)
            if self.keep_low:
                if low is None:
                    raise ValueError("MapScorer.add: keep_low=True needs the feature-resolution maps (low=...)")
                self._low[name].append(low[name].cpu().numpy().astype(np.float32))
            columns.update({f"{name}_{c}": boxes[:, i] for i, c in enumerate(("x0", "y0", "x1", "y1"))})
            columns[f"{name}_iou"] = iou
            for region, frac in mass_fractions(full[name], regions).items():
                columns[f"{name}_mass_{region}"] = frac
            if name in self._box_evals:
                self._box_evals[name].accumulate_batch(full[name], gt_boxes)  # int() truncation of GT boxes
                if name in self._pxap_evals:
                    self._pxap_evals[name].accumulate(full[name], batch.masks.to(full[name].device))
        if chosen is not None:
            self._logits.append(chosen)
        self._labels.append(labels)
        self.gt_boxes.extend(gt_boxes)
        self._records.append(pd.DataFrame(columns))
        return scores

    def records(self) -> pd.DataFrame:
        """One row per image added: ``image_id``, ``label``, ``pred``, ``correct_top1``, ``correct_top5`` and per
        branch ``{branch}_x0.._y1`` (inclusive box), ``{branch}_iou`` and ``{branch}_mass_{region}``."""
        if not self._records:
            raise ValueError("MapScorer: no images were added")
        return pd.concat(self._records, ignore_index=True)

    def low_maps(self) -> dict[str, np.ndarray]:
        """branch -> ``(N, h, w)`` float32 feature-resolution maps of every image added (``keep_low=True``)."""
        return {b: np.concatenate(self._low[b]) for b in self.branches}

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per branch: the papers' metrics at ``protocol.tau`` (docs/methods.md §2.1) and, for the ``wsoleval``
        branches, MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP (docs/methods.md §2.2); percentages."""
        if not self._labels:
            raise ValueError("MapScorer: no images were added")
        labels = torch.cat(self._labels)
        out = {}
        for name in self.branches:
            summary: dict[str, Any] = self._localization(labels, np.concatenate(self._ious[name]))
            if name in self._box_evals:
                box = self._box_evals[name].compute()
                summary.update({"maxboxacc": box["maxboxacc"], "maxboxacc_v2": box["maxboxacc_v2"]})
                if name in self._pxap_evals:
                    summary["pxap"] = float(self._pxap_evals[name].compute())
            out[name] = summary
        return out

    def _localization(self, labels: Tensor, ious: np.ndarray) -> dict[str, float]:
        """:func:`wsol_utils.scoring.metrics.localization_summary` of the accumulated logits at
        ``protocol.iou_threshold``; without a classifier the same keys, GT-known loc computed by the same function and
        every classification-dependent value NaN."""
        threshold = self.protocol.iou_threshold
        if self._logits:
            logits = torch.cat(self._logits)
            if len(logits) != len(labels):
                raise ValueError(
                    f"MapScorer: {len(logits)} of {len(labels)} images came with logits; score maps "
                    "either all with a classifier or all without (docs/methods.md §2.4)"
                )
            return dict(metrics.localization_summary(logits, labels, ious, threshold))
        blind = metrics.localization_summary(torch.zeros(len(labels), 1), torch.zeros_like(labels), ious, threshold)
        return {key: value if key.startswith("gt_known_loc") else math.nan for key, value in blind.items()}
