"""Small helpers on class-activation maps shared by erasing, fusion and the metrics.

The one convention lives here: "normalized" means per-map min-max to ``[0, 1]`` over the last two
(spatial) dimensions, and a constant or non-finite map becomes all zeros -- exactly what wsoleval's
``normalize_scoremap`` does (SPEC §2.2, ARCHITECTURE "Conventions").
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["normalize_minmax"]


def normalize_minmax(maps: Tensor) -> Tensor:
    """Min-max normalize every map over its last two dimensions.

    Args:
        maps: ``(..., H, W)`` raw scores (any real dtype; integers are promoted to the default float).

    Returns:
        ``(..., H, W)`` in ``[0, 1]``, same floating dtype and device: ``(x - min) / (max - min)`` per map,
        with the same floating-point operations as wsoleval (so the numbers match it bit for bit).
        A map that is constant or holds a NaN/inf becomes all zeros. A map whose finite range overflows
        (``max - min == inf``) is normalized on halved values instead of being zeroed.
        Differentiable; no gradient flows from zeroed maps.
    """
    if not isinstance(maps, Tensor) or maps.ndim < 2:
        raise ValueError(
            f"normalize_minmax: `maps` must be a tensor of shape (..., H, W); got "
            f"{type(maps).__name__} with shape {tuple(getattr(maps, 'shape', ()))}"
        )
    if not maps.is_floating_point():
        maps = maps.to(torch.get_default_dtype())
    flat = maps.flatten(-2)
    finite = torch.isfinite(flat).all(dim=-1, keepdim=True)
    # Zero out non-finite entries so that min/max (and their gradients) stay finite; such maps are zeroed anyway.
    flat = torch.where(finite, flat, torch.zeros_like(flat))
    lo = flat.amin(dim=-1, keepdim=True)
    hi = flat.amax(dim=-1, keepdim=True)
    # Scale by 1 (exact, the wsoleval operations) unless hi - lo overflows; then by 0.5 (exact too).
    scale = torch.where(torch.isfinite(hi - lo), 1.0, 0.5).to(flat.dtype)
    span = hi * scale - lo * scale
    valid = finite & (span > 0)
    safe_span = torch.where(valid, span, torch.ones_like(span))
    normalized = (flat * scale - lo * scale) / safe_span
    normalized = torch.where(valid, normalized, torch.zeros_like(normalized))
    return normalized.reshape(maps.shape)
