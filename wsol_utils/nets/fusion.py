"""Fusing the class maps of branch A and branch B (docs/methods.md §1.5).

Every strategy takes the *raw* maps ``(B, C, H, W)`` of the two branches, min-max normalizes each map per
sample and per class to ``[0, 1]`` (:func:`wsol_utils.nets.maps.normalize_minmax`), and returns the fused maps
``(B, C, H, W)``. The fused maps are not renormalized: ``max`` and ``l1`` stay in ``[0, 1]``, ``add`` lies in
``[0, 2]`` (renormalize, e.g. with :func:`wsol_utils.nets.models.class_map`, before thresholding).

- ``max``: ACoL's elementwise maximum.
- ``add``: HCLNet eq. 1, ``F = f_A + f_B``.
- ``l1``: HCLNet eqs. 2-5: activity ``M_i = sum_c |f_i^c|``, block average over a ``(2r+1)^2`` window, per-pixel
  weights from the two activities, ``F^c = w_A f_A^c + w_B f_B^c``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol_utils.nets.maps import normalize_minmax

__all__ = ["FUSION_METHODS", "L1_WEIGHTS", "fuse", "fuse_add", "fuse_l1", "fuse_max", "l1_fusion_weights"]

L1_WEIGHTS = ("ratio", "softmax")


def _normalized_pair(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Check two raw map stacks ``(B, C, H, W)`` and min-max normalize them per sample and class."""
    for name, maps in (("a", a), ("b", b)):
        if not isinstance(maps, Tensor) or maps.ndim != 4:
            raise ValueError(
                f"fusion: `{name}` must be raw class maps of shape (B, C, H, W); got shape "
                f"{tuple(getattr(maps, 'shape', ()))}"
            )
    if a.shape != b.shape:
        raise ValueError(
            f"fusion: the two branches' maps must have the same shape; got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return normalize_minmax(a), normalize_minmax(b)


def fuse_max(a: Tensor, b: Tensor) -> Tensor:
    """ACoL fusion: elementwise max of the normalized maps. ``(B, C, H, W)`` x2 -> ``(B, C, H, W)`` in ``[0, 1]``."""
    norm_a, norm_b = _normalized_pair(a, b)
    return torch.maximum(norm_a, norm_b)


def fuse_add(a: Tensor, b: Tensor) -> Tensor:
    """HCLNet addition (eq. 1): sum of the normalized maps. ``(B, C, H, W)`` x2 -> ``(B, C, H, W)`` in ``[0, 2]``.

    The released code's mean is the same map up to a factor 1/2, i.e. identical after renormalization.
    """
    norm_a, norm_b = _normalized_pair(a, b)
    return norm_a + norm_b


def _block_activity(maps: Tensor, block_radius: int) -> Tensor:
    """HCLNet eqs. 2-3: ``M(x, y) = sum_c |f^c(x, y)|``, then the mean over the ``(2r+1)^2`` block.

    ``(B, C, H, W)`` -> ``(B, 1, H, W)``. At the border the mean runs over the cells inside the map
    (``count_include_pad=False``); for ``weights="ratio"`` this choice cancels out, since both branches are
    divided by the same count.
    """
    activity = maps.abs().sum(dim=1, keepdim=True)
    if block_radius == 0:
        return activity
    size = 2 * block_radius + 1
    return F.avg_pool2d(activity, size, stride=1, padding=block_radius, count_include_pad=False)


def _weights_from_activity(activity_a: Tensor, activity_b: Tensor, weights: str) -> Tensor:
    """Branch A's weight ``w_A`` (``w_B = 1 - w_A``) from the two block activities ``(B, 1, H, W)``.

    ``ratio`` (eq. 5 as printed): ``M_A / (M_A + M_B)``, 1/2 where both are 0. ``softmax`` (the text and the
    released code): ``exp(M_A) / (exp(M_A) + exp(M_B))`` in the stable form (no overflow with 1000 classes).
    """
    if weights == "ratio":
        total = activity_a + activity_b
        positive = total > 0
        safe_total = torch.where(positive, total, torch.ones_like(total))
        return torch.where(positive, activity_a / safe_total, torch.full_like(total, 0.5))
    return torch.softmax(torch.stack([activity_a, activity_b]), dim=0)[0]


def _check_l1_options(block_radius: int, weights: str) -> None:
    if isinstance(block_radius, bool) or not isinstance(block_radius, int) or block_radius < 0:
        raise ValueError(f"fuse_l1: `block_radius` must be an integer >= 0 (paper: 1); got {block_radius!r}")
    if weights not in L1_WEIGHTS:
        raise ValueError(f"fuse_l1: `weights` must be one of {L1_WEIGHTS}; got {weights!r}")


def _l1_weight(norm_a: Tensor, norm_b: Tensor, block_radius: int, weights: str) -> Tensor:
    """Branch A's ``l1`` weight ``(B, 1, H, W)`` from already normalized maps ``(B, C, H, W)``."""
    _check_l1_options(block_radius, weights)
    return _weights_from_activity(_block_activity(norm_a, block_radius), _block_activity(norm_b, block_radius), weights)


def l1_fusion_weights(a: Tensor, b: Tensor, block_radius: int = 1, weights: str = "ratio") -> Tensor:
    """Per-pixel weight of branch A in the ``l1`` fusion (HCLNet eqs. 2-5); branch B's weight is ``1 - w_A``.

    Args:
        a, b: ``(B, C, H, W)`` raw maps of branches A and B (normalized per sample and class inside).
        block_radius: ``r`` of the ``(2r+1)^2`` block average (paper: 1; 0 = no averaging, the released code).
        weights: ``"ratio"`` (eq. 5) or ``"softmax"`` (text, released code).

    Returns:
        ``(B, 1, H, W)`` in ``[0, 1]``.
    """
    return _l1_weight(*_normalized_pair(a, b), block_radius, weights)


def fuse_l1(a: Tensor, b: Tensor, block_radius: int = 1, weights: str = "ratio") -> Tensor:
    """HCLNet l1-norm fusion (eqs. 2-5): ``F^c = w_A f_A^c + w_B f_B^c`` on the normalized maps.

    Args: as :func:`l1_fusion_weights`. Returns: ``(B, C, H, W)`` in ``[0, 1]``.
    """
    norm_a, norm_b = _normalized_pair(a, b)
    weight_a = _l1_weight(norm_a, norm_b, block_radius, weights)
    return weight_a * norm_a + (1.0 - weight_a) * norm_b


FUSION_METHODS: dict[str, Callable[..., Tensor]] = {"max": fuse_max, "add": fuse_add, "l1": fuse_l1}
_L1_OPTIONS = frozenset({"block_radius", "weights"})


def fuse(a: Tensor, b: Tensor, method: str, **kwargs: Any) -> Tensor:
    """Fuse two branches' raw maps ``(B, C, H, W)`` with ``method`` in ``{"max", "add", "l1"}``.

    ``kwargs`` are the ``l1`` options (``block_radius``, ``weights``); ``max`` and ``add`` accept and ignore them,
    so a caller can pass one set of fusion settings for every method. Any other keyword is a ValueError.
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"fuse: unknown fusion method {method!r}; valid methods: {sorted(FUSION_METHODS)}")
    unknown = set(kwargs) - _L1_OPTIONS
    if unknown:
        raise ValueError(f"fuse: unknown option(s) {sorted(unknown)}; valid options: {sorted(_L1_OPTIONS)} (for 'l1')")
    if method == "l1":
        return fuse_l1(a, b, **kwargs)  # fuse_l1 checks the values
    return FUSION_METHODS[method](a, b)
