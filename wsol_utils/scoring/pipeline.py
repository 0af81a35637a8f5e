"""The one map pipeline: model output -> chosen maps -> upsampled, normalized -> boxes -> scores.

:func:`wsol_utils.engine.evaluate`, the suite's example figures (:func:`wsol_utils.engine.examples.example_maps`)
and the explorer (:class:`wsol_utils.ui.widgets.Explorer`) all call these functions, so a map is made and boxed one
way only:

1. :func:`forward_maps`: one forward pass; the GT (or given) class's map of each branch the method has
   (``a``, and for two-branch methods ``b`` and the ``fused`` map, docs/methods.md §1.5), normalized per sample
   at feature resolution, then upsampled to the image and normalized again (:func:`wsol_utils.nets.maps.upsample_maps`);
   optionally what branch B's features were multiplied by (:meth:`wsol_utils.nets.methods.MapMethod.branch_b_weights`).
2. :func:`wsol_utils.scoring.scorer.score_boxes` (re-exported here): the box at ``tau`` of the max (largest 8-connected
   component, docs/methods.md §2.1) and its best IoU with the GT boxes; :class:`wsol_utils.scoring.scorer.MapScorer`
   turns them into a protocol's metrics.

Test-time options (``delta``, ``erase_with``, fusion, upsampling) are arguments of :func:`forward_maps`, never
attributes set on the model; the caller validates them once (:func:`wsol_utils.nets.erasing.check_delta`,
:class:`wsol_utils.scoring.protocol.Protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol_utils.nets.fusion import FUSION_METHODS
from wsol_utils.nets.maps import upsample_maps
from wsol_utils.nets.methods import get_method
from wsol_utils.nets.models import WSOLModel, WSOLOutput, class_map
from wsol_utils.scoring.protocol import PAPERS
from wsol_utils.scoring.scorer import BoxScores, gt_boxes_numpy, score_boxes

__all__ = [
    "BoxScores",
    "MapBatch",
    "branch_maps",
    "check_fusion",
    "classification_logits",
    "forward_maps",
    "fusion_options",
    "gt_boxes_numpy",
    "score_boxes",
]


def classification_logits(output: WSOLOutput) -> Tensor:
    """Logits used for classification ``(B, C)``: ``logits_a + logits_b`` for two-branch methods, else ``logits_a``.

    (The two branches are averaged as in the HCLNet tables, where the C-CAM branch changes cls err.)
    """
    return output.logits_a if output.logits_b is None else output.logits_a + output.logits_b


def check_fusion(fusion: str | None, method: str, where: str = "fusion") -> str | None:
    """``fusion`` for ``method``: ``None`` for one-branch methods; for two-branch ones ``None`` gives the method's
    default and any other value must be a fusion of :data:`wsol_utils.nets.fusion.FUSION_METHODS` (a ValueError
    naming ``where`` otherwise)."""
    spec = get_method(method)
    if not spec.two_branch:
        return None
    fusion = spec.default_fusion if fusion is None else fusion
    if fusion not in FUSION_METHODS:
        raise ValueError(f"{where}: fusion={fusion!r} is unknown; choose one of {', '.join(FUSION_METHODS)}")
    return fusion


def fusion_options(fusion: str | None, block_radius: int, weights: str) -> dict[str, Any]:
    """Keyword options of ``fusion``: the l1 fusion's ``block_radius`` and ``weights`` (docs/methods.md §1.5),
    nothing for the others."""
    return {"block_radius": block_radius, "weights": weights} if fusion == "l1" else {}


def branch_maps(
    output: WSOLOutput,
    classes: Tensor,
    method: str,
    fusion: str | None = None,
    fusion_kwargs: dict[str, Any] | None = None,
) -> dict[str, Tensor]:
    """The normalized ``(B, h, w)`` map of ``classes`` ``(B,)`` for each branch of ``method``: ``a``, and for
    two-branch methods ``b`` and the ``fused`` map (:func:`wsol_utils.nets.models.class_map`; ``fusion=None``: the
    method's default)."""
    spec = get_method(method)
    maps = {"a": class_map(output, classes, branch="a")}
    if spec.two_branch:
        fused_with = check_fusion(fusion, method) or "max"
        maps["b"] = class_map(output, classes, branch="b")
        maps["fused"] = class_map(output, classes, fusion=fused_with, branch="fused", **(fusion_kwargs or {}))
    return maps


@dataclass
class MapBatch:
    """What :func:`forward_maps` gives for one batch."""

    low: dict[str, Tensor]  # branch -> (B, h, w) in [0, 1] at feature resolution
    full: dict[str, Tensor]  # branch -> (B, H, W) in [0, 1] at image resolution
    logits: Tensor  # (B, C) classification logits (classification_logits)
    b_input: Tensor | None  # (B, H, W) in [0, 1]: what branch B's features were multiplied by (nearest
    # upsampling); None for one-branch methods or when not asked for


def forward_maps(
    model: WSOLModel,
    images: Tensor,
    labels: Tensor,
    *,
    delta: float | None = None,
    fusion: str | None = None,
    fusion_kwargs: dict[str, Any] | None = None,
    erase_with: str = PAPERS.erase_with,
    upsample: str = PAPERS.upsample,
    with_b_input: bool = False,
) -> MapBatch:
    """Steps 1 of the pipeline for a batch ``images`` ``(B, 3, H, W)`` with GT ``labels`` ``(B,)``, without gradient.

    Args:
        model: a :class:`~wsol_utils.nets.models.WSOLModel`.
        labels: the GT classes: their maps are returned; they reach branch B only with ``erase_with="gt"``.
        delta: test-time erasing threshold in ``(0, 1)`` (``None``: the model's training delta), already validated
            (:func:`wsol_utils.nets.erasing.check_delta`); changes branch B's input only.
        fusion, fusion_kwargs: test-time fusion (``None``: the method's default) and its options.
        erase_with: ``"pred"`` (branch A's top-1, label-free, the default) or ``"gt"`` (the official code's choice,
            label-informed): the class whose branch-A map drives erasing.
        upsample: ``"bicubic"`` or ``"bilinear"`` (:func:`wsol_utils.nets.maps.upsample_maps`).
        with_b_input: also return what branch B's features were multiplied by (figures, explorer).

    Returns:
        :class:`MapBatch` on the model's device; maps are always those of the GT class.
    """
    size = (int(images.shape[-2]), int(images.shape[-1]))
    with torch.no_grad():
        output = model(images, labels if erase_with == "gt" else None, delta=delta)
        low = branch_maps(output, labels, model.method, fusion, fusion_kwargs)
        full = {name: upsample_maps(value, size, upsample) for name, value in low.items()}
        b_input = None
        spec = get_method(model.method)
        if with_b_input and spec.two_branch and output.features is not None:
            chosen = labels if erase_with == "gt" else output.logits_a.argmax(dim=1)
            chosen_map = output.maps_a[torch.arange(len(labels), device=labels.device), chosen]
            weights = spec.branch_b_weights(output.features, chosen_map, model.options_at(delta))
            b_input = F.interpolate(weights.float(), size=size, mode="nearest")[:, 0]
    return MapBatch(low, full, classification_logits(output), b_input)
