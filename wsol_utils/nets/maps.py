"""Small helpers on class-activation maps shared by erasing, fusion and the metrics.

The one convention lives here: "normalized" means per-map min-max to ``[0, 1]`` over the last two
(spatial) dimensions, and a constant or non-finite map becomes all zeros -- exactly what wsoleval's
``normalize_scoremap`` does (docs/methods.md §2.2, ARCHITECTURE "Conventions").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["UPSAMPLE_MODES", "normalize_minmax", "upsample_maps"]

#: Interpolations :func:`upsample_maps` offers: ``"bicubic"`` (wsoleval's ``cv2.INTER_CUBIC``, in torch) and
#: ``"bilinear"``.
UPSAMPLE_MODES: tuple[str, ...] = ("bicubic", "bilinear")


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


def upsample_maps(maps: Tensor, size: int | tuple[int, int], mode: str = "bicubic") -> Tensor:
    """Maps at feature resolution -> normalized maps at image resolution (docs/methods.md §2.1-§2.2, the first step of
    boxing a map).

    Args:
        maps: ``(B, h, w)`` raw or normalized maps (one per sample).
        size: the image's ``(H, W)``, or one int for a square image.
        mode: ``"bicubic"`` (default; wsoleval resizes with ``cv2.INTER_CUBIC``) or ``"bilinear"``; torch's
            ``F.interpolate`` with ``align_corners=False``, skipped when the size already matches.

    Returns:
        ``(B, H, W)`` in ``[0, 1]``: interpolated, then min-max normalized again (:func:`normalize_minmax`;
        bicubic overshoots), same device.
    """
    if not isinstance(maps, Tensor) or maps.ndim != 3:
        raise ValueError(
            f"upsample_maps: `maps` must be a tensor of shape (B, h, w); got {type(maps).__name__} "
            f"with shape {tuple(getattr(maps, 'shape', ()))}"
        )
    out_size = (size, size) if isinstance(size, int) else tuple(size)
    if len(out_size) != 2 or not all(isinstance(s, int) and s > 0 for s in out_size):
        raise ValueError(f"upsample_maps: `size` must be a positive int or (H, W); got {size!r}")
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"upsample_maps: mode={mode!r}; choose one of {', '.join(UPSAMPLE_MODES)}")
    if not maps.is_floating_point():
        maps = maps.to(torch.get_default_dtype())
    if tuple(maps.shape[-2:]) != out_size:
        maps = F.interpolate(maps[:, None], size=out_size, mode=mode, align_corners=False)[:, 0]
    return normalize_minmax(maps).clamp_(0.0, 1.0)
