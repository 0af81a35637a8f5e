"""What branch B sees: ACoL threshold erasing and the HCLNet complementary map (docs/methods.md §1.3-§1.4).

Both take the backbone features ``S`` ``(B, K, h, w)`` and the *raw* map of the chosen class from branch A
``(B, h', w')``. The map is min-max normalized per sample (constant -> zeros, see
:func:`wsol_utils.nets.maps.normalize_minmax`) and, when ``(h', w') != (h, w)``, resized bilinearly to the
features' size. The result is broadcast over the ``K`` channels.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from wsol_utils.nets.maps import normalize_minmax

__all__ = [
    "check_delta",
    "complementary_weights",
    "erase_by_threshold",
    "erase_complementary",
    "erasing_mask",
    "normalized_attention",
]


def check_delta(delta: object, where: str = "erasing") -> float:
    """``delta`` as a float if it is a number strictly between 0 and 1 (docs/methods.md §1.3), else a ValueError naming
    ``where`` (the argument, the config field or the knob the user set)."""
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0.0 < float(delta) < 1.0:
        raise ValueError(
            f"{where}: delta={delta!r} must be a number strictly between 0 and 1 (official ACoL 0.6, "
            "wsoleval 0.7; the paper sweeps 0.5-0.9)"
        )
    return float(delta)


def _check_inputs(features: Tensor, maps: Tensor) -> None:
    if not isinstance(features, Tensor) or features.ndim != 4:
        raise ValueError(
            f"erasing: `features` must be a (B, K, h, w) tensor; got shape {tuple(getattr(features, 'shape', ()))}"
        )
    if not isinstance(maps, Tensor) or maps.ndim != 3:
        raise ValueError(
            "erasing: `maps` must be the chosen class's map per sample, shape (B, h', w'); got shape "
            f"{tuple(getattr(maps, 'shape', ()))} (select one class first, e.g. maps[torch.arange(B), labels])"
        )
    if maps.shape[0] != features.shape[0]:
        raise ValueError(
            f"erasing: batch sizes differ: `features` has {features.shape[0]} samples, `maps` has {maps.shape[0]}"
        )


def normalized_attention(features: Tensor, maps: Tensor) -> Tensor:
    """The normalized attention map ``M_A`` at the features' resolution.

    Args:
        features: ``(B, K, h, w)`` backbone features ``S`` (only their size is used).
        maps: ``(B, h', w')`` raw map of the chosen class of branch A.

    Returns:
        ``(B, 1, h, w)`` in ``[0, 1]``: per-sample min-max normalized (constant map -> zeros), then resized
        bilinearly (``align_corners=False``, which keeps values in ``[0, 1]``) when ``(h', w') != (h, w)``.
        Gradient flows back to ``maps``.
    """
    _check_inputs(features, maps)
    attention = normalize_minmax(maps).unsqueeze(1).to(features.dtype)
    if attention.shape[-2:] != features.shape[-2:]:
        attention = F.interpolate(attention, size=features.shape[-2:], mode="bilinear", align_corners=False)
    return attention


def erasing_mask(features: Tensor, maps: Tensor, delta: float) -> Tensor:
    """ACoL's erasing mask ``(M_A < delta)`` (Algorithm 1), detached; also handy for visualisation.

    Args:
        features: ``(B, K, h, w)``; maps: ``(B, h', w')`` raw; delta: threshold in ``(0, 1)``.

    Returns:
        ``(B, 1, h, w)`` of ``features.dtype``: 1 where the cell is kept, 0 where it is erased
        (``M_A >= delta``). Never carries gradient.
    """
    delta = check_delta(delta)
    with torch.no_grad():
        return (normalized_attention(features, maps) < delta).to(features.dtype)


def erase_by_threshold(features: Tensor, maps: Tensor, delta: float) -> Tensor:
    """ACoL erasing: ``S * (M_A < delta)`` broadcast over channels (docs/methods.md §1.3).

    Args:
        features: ``(B, K, h, w)`` backbone features ``S``.
        maps: ``(B, h', w')`` raw map of the chosen class of branch A.
        delta: threshold in ``(0, 1)`` on the normalized map (official ACoL 0.6, wsoleval 0.7).

    Returns:
        ``(B, K, h, w)``: features with the cells where ``M_A >= delta`` set to zero. The mask is detached:
        gradient reaches ``features`` only, never ``maps``.
    """
    return features * erasing_mask(features, maps, delta)


def erase_complementary(features: Tensor, maps: Tensor, detach: bool = True) -> Tensor:
    """HCLNet complementary map (C-CAM): ``S * (1 - M_A)`` broadcast over channels (docs/methods.md §1.4).

    Args:
        features: ``(B, K, h, w)`` backbone features ``S``.
        maps: ``(B, h', w')`` raw map of the chosen class of branch A.
        detach: ``True`` (default, as ACoL) stops the gradient through ``1 - M_A``; ``False`` lets branch B's
            loss reach branch A through the map.

    Returns:
        ``(B, K, h, w)`` soft-erased features.
    """
    return features * complementary_weights(features, maps, detach)


def complementary_weights(features: Tensor, maps: Tensor, detach: bool = True) -> Tensor:
    """``1 - M_A`` at the features' resolution, ``(B, 1, h, w)`` in ``[0, 1]`` (HCLNet's C-CAM weights,
    docs/methods.md §1.4).

    Args:
        features: ``(B, K, h, w)`` (only their size is used); maps: ``(B, h', w')`` raw map of branch A.
        detach: stop the gradient through the map (default, as ACoL).
    """
    attention = normalized_attention(features, maps)
    if detach:
        attention = attention.detach()
    return 1.0 - attention
