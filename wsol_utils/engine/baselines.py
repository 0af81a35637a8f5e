"""Calibration baselines: score maps that use no model, scored by the engine's own code (docs/methods.md §2.4).

Three maps put a trained method's numbers on a scale:

* ``centre_gaussian``: an isotropic 2-D Gaussian centred in the image, the same for every image -- wsoleval's
  "center-gaussian baseline" (Choe et al., CVPR 2020). What a map gets from the data set's centre bias alone.
* ``whole_image``: a map whose box is the whole image ``(0, 0, W - 1, H - 1)`` under both protocols. What
  "predict everything" gets; its PxAP is the share of foreground pixels (chance).
* ``gt_mask``: the ground-truth object mask itself. Its box is the mask's box, so it is the ceiling of what any
  map can reach on boxes (100 where the GT box is the mask's tight box, as in the synthetic set).

Each map is a small function returning ``(B, H, W)`` maps at image resolution; :func:`evaluate_baseline` feeds them
(without logits) to the scorer that scores a model's maps (:class:`wsol_utils.scoring.scorer.MapScorer`), so a
baseline's GT-known loc at ``tau`` (docs/methods.md §2.1) and its MaxBoxAcc / MaxBoxAccV2 / PxAP (docs/methods.md
§2.2) are computed exactly as a model's. Classification metrics are NaN: there is no classifier.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from wsol_utils.data import WSOLBatch, collate
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.distributed import resolve_device
from wsol_utils.engine.evaluate import EvalResult, batch_to_device, head_masks, show_progress
from wsol_utils.nets.maps import upsample_maps
from wsol_utils.scoring.protocol import PAPERS, Protocol
from wsol_utils.scoring.scorer import MapScorer

__all__ = [
    "BASELINES",
    "DEFAULT_SIGMA",
    "Baseline",
    "available_baselines",
    "centre_gaussian_maps",
    "evaluate_baseline",
    "gt_mask_maps",
    "whole_image_maps",
]

#: Default standard deviation of the centre Gaussian, as a fraction of the image's shorter side. wsoleval's text
#: (as recalled, not checked) gives a standard deviation of 1 without a unit; 0.5 reads it on coordinates running
#: from -1 to 1 across the image -- a choice, docs/methods.md §2.4. It changes the fixed-``tau`` numbers only;
#: MaxBoxAcc / V2 / PxAP sweep every threshold and do not depend on it (up to quantization).
DEFAULT_SIGMA = 0.5

#: The branch name the baselines' single map is scored under (as a one-branch method's map).
BRANCH = "a"


def _check_size(height: int, width: int, where: str) -> None:
    if not all(isinstance(v, int) and v > 0 for v in (height, width)):
        raise ValueError(f"{where}: height={height!r} and width={width!r} must be positive ints")


def centre_gaussian_maps(
    batch_size: int,
    height: int,
    width: int,
    sigma: float = DEFAULT_SIGMA,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """wsoleval's centre-Gaussian map (docs/methods.md §2.4): ``exp(-d² / (2 s²))``, the same for every image.

    ``d`` is the distance of a pixel's centre ``(x, y)`` from the image centre ``((W - 1) / 2, (H - 1) / 2)`` in
    pixels and ``s = sigma · min(H, W)``. The value is 1 at the centre (at the four middle pixels' common corner
    for even sides, where those four pixels tie for the maximum), symmetric under horizontal and vertical flips,
    and strictly decreasing with ``d``, so every threshold keeps a centred disc (clipped by the image).

    Args:
        batch_size: ``B >= 1``.
        height, width: the image's ``H``, ``W`` in pixels.
        sigma: standard deviation as a fraction of the shorter side, ``> 0`` (default :data:`DEFAULT_SIGMA`).

    Returns:
        ``(B, H, W)`` raw map in ``(0, 1]`` (not min-max normalized; the engine normalizes).
    """
    _check_size(height, width, "centre_gaussian_maps")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"centre_gaussian_maps: batch_size={batch_size!r} must be a positive int")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"centre_gaussian_maps: sigma={sigma!r} must be a positive fraction of the image side")
    s = float(sigma) * min(height, width)
    ys = torch.arange(height, dtype=torch.float64, device=device) - (height - 1) / 2
    xs = torch.arange(width, dtype=torch.float64, device=device) - (width - 1) / 2
    squared = ys[:, None] ** 2 + xs[None, :] ** 2
    gaussian = torch.exp(-squared / (2.0 * s * s)).to(dtype)
    return gaussian.expand(batch_size, height, width).clone()


def whole_image_maps(
    batch_size: int,
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """A map whose box is the whole image ``(0, 0, W - 1, H - 1)`` (docs/methods.md §2.4): 1 everywhere except
    0 at the top-left pixel.

    A constant map would not do: min-max normalization turns it into zeros, and a zero map has no foreground,
    hence the box ``(0, 0, 0, 0)`` under both protocols (docs/methods.md §2.1 step 5, §2.2 step 6). With one
    pixel at 0, every ``tau`` in ``(0, 1]`` (papers) and every wsoleval threshold (``img > int(t · 255)``,
    ``t < 1``) keeps all pixels but that one: one 8-connected region / one contour whose box is the whole image
    (wsoleval's ``x + w`` end is clipped to ``W - 1``). Needs ``H, W >= 2``.

    Returns:
        ``(B, H, W)`` in ``{0, 1}``.
    """
    _check_size(height, width, "whole_image_maps")
    if height < 2 or width < 2:
        raise ValueError(f"whole_image_maps: the image must be at least 2x2 pixels; got {height}x{width}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"whole_image_maps: batch_size={batch_size!r} must be a positive int")
    maps = torch.ones(batch_size, height, width, dtype=dtype, device=device)
    maps[:, 0, 0] = 0.0
    return maps


def gt_mask_maps(masks: Tensor | np.ndarray | None) -> Tensor:
    """The ground-truth masks as maps (docs/methods.md §2.4): 1 on the object (mask value 1), 0 on the background
    and on ignored pixels (255).

    Args:
        masks: ``(B, H, W)`` uint8 masks (0 / 1 / 255), as :class:`wsol_utils.data.WSOLBatch` carries them.

    Returns:
        ``(B, H, W)`` float32 in ``{0, 1}`` on the masks' device. An image without foreground gets a zero map
        (box ``(0, 0, 0, 0)``).
    """
    if masks is None:
        raise ValueError(
            "gt_mask_maps: this data set has no masks; the gt_mask baseline needs object masks "
            "(the synthetic set, CUB with segmentations/, or a wsoleval mask_dir)"
        )
    tensor = masks if isinstance(masks, Tensor) else torch.from_numpy(np.asarray(masks))
    if tensor.ndim != 3:
        raise ValueError(f"gt_mask_maps: masks must have shape (B, H, W); got {tuple(tensor.shape)}")
    return (tensor == 1).to(torch.float32)


@dataclass(frozen=True)
class Baseline:
    """One calibration baseline: ``maps(batch, sigma)`` -> ``(B, H, W)`` maps at the batch's image resolution."""

    name: str
    label: str
    maps: Callable[[WSOLBatch, float], Tensor]
    needs_masks: bool = False
    description: str = ""


def _batch_size_hw(batch: WSOLBatch) -> tuple[int, int, int]:
    return len(batch.labels), int(batch.images.shape[-2]), int(batch.images.shape[-1])


def _centre_gaussian(batch: WSOLBatch, sigma: float) -> Tensor:
    return centre_gaussian_maps(*_batch_size_hw(batch), sigma, device=batch.images.device)


def _whole_image(batch: WSOLBatch, sigma: float) -> Tensor:
    return whole_image_maps(*_batch_size_hw(batch), device=batch.images.device)


def _gt_mask(batch: WSOLBatch, sigma: float) -> Tensor:
    return gt_mask_maps(batch.masks).to(batch.images.device)


#: The baselines by name (docs/methods.md §2.4).
BASELINES: dict[str, Baseline] = {
    "centre_gaussian": Baseline(
        "centre_gaussian",
        "Centre Gaussian",
        _centre_gaussian,
        description="isotropic Gaussian centred in the image (wsoleval's baseline)",
    ),
    "whole_image": Baseline("whole_image", "Whole image", _whole_image, description="the box covering the whole image"),
    "gt_mask": Baseline(
        "gt_mask",
        "GT mask",
        _gt_mask,
        needs_masks=True,
        description="the ground-truth mask: the ceiling of any map on boxes",
    ),
}


def _dataset(dataset_or_config: Any, split: str) -> tuple[Dataset, str]:
    if isinstance(dataset_or_config, RunConfig):
        return dataset_or_config.dataset_for(split), split
    if isinstance(dataset_or_config, Dataset) and hasattr(dataset_or_config, "__len__"):
        return dataset_or_config, str(getattr(dataset_or_config, "split", split))
    raise ValueError(
        f"evaluate_baseline: expected a data set (wsol_utils.data.load) or a RunConfig; got "
        f"{type(dataset_or_config).__name__}"
    )


def available_baselines(dataset_or_config: Dataset | RunConfig, split: str = "test") -> list[str]:
    """The names of :data:`BASELINES` that can be scored on a data set (docs/methods.md §2.4), in their order: all
    but those that need object masks (``gt_mask``) when its images come without masks (ILSVRC; a wsoleval folder
    read without ``mask_dir``). Notebooks loop over it so that one table code serves every data set.

    Args:
        dataset_or_config: as for :func:`evaluate_baseline` (a data set, or a RunConfig whose ``split`` is read).
        split: the split (with a RunConfig).
    """
    dataset, _ = _dataset(dataset_or_config, split)
    has_masks = len(dataset) > 0 and dataset[0][3] is not None  # type: ignore[arg-type]
    return [name for name, baseline in BASELINES.items() if has_masks or not baseline.needs_masks]


def evaluate_baseline(
    name: str,
    dataset_or_config: Dataset | RunConfig,
    split: str = "test",
    tau: float = PAPERS.tau,
    limit: int | None = None,
    *,
    sigma: float = DEFAULT_SIGMA,
    wsoleval: bool | str = PAPERS.wsoleval,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool | None = None,
) -> EvalResult:
    """Score a calibration baseline's maps on a split with the engine's code (docs/methods.md §2.4).

    Args:
        name: a key of :data:`BASELINES` (``"centre_gaussian"``, ``"whole_image"``, ``"gt_mask"``).
        dataset_or_config: a data set from :func:`wsol_utils.data.load` (then ``split`` is read from it), or a
            :class:`~wsol_utils.engine.RunConfig` whose ``dataset_for(split)`` is scored.
        split: ``"train"``, ``"val"`` or ``"test"`` (with a RunConfig).
        tau: box threshold of the papers' protocol, a fraction of the map's max in ``(0, 1]`` (docs/methods.md §2.1).
        limit: score only the first ``limit`` images.
        sigma: the centre Gaussian's standard deviation as a fraction of the shorter side (ignored by the others).
        wsoleval: also compute MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP (``True`` / ``"main"``: yes).
        batch_size, device, progress: how to iterate (``device`` ``"cpu"``, ``"cuda"`` or ``"auto"``).

    Returns:
        :class:`~wsol_utils.engine.EvalResult` with the keys of :func:`wsol_utils.engine.evaluate`: ``method`` is
        ``"baseline:<name>"``; ``run``, ``fusion``, ``delta`` and ``erase_with`` are ``None``; the flat keys are the
        baseline map's metrics and ``branches`` has the one entry ``"a"``. Classification values (``cls_*``,
        ``loc_*_top1`` / ``top5``) are NaN; ``gt_known_loc_*``, ``maxboxacc``, ``maxboxacc_v2`` (and ``pxap``) are
        real. Records: as :func:`~wsol_utils.engine.evaluate`'s, with ``pred`` -1 and ``correct_top*`` NaN.
    """
    if name not in BASELINES:
        raise ValueError(f"evaluate_baseline: unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
    baseline = BASELINES[name]
    protocol = Protocol(tau=tau, wsoleval=wsoleval)  # erasing and upsampling play no part: no model, maps at size
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate_baseline: batch_size={batch_size!r} must be a positive int")
    if name == "centre_gaussian":
        centre_gaussian_maps(1, 2, 2, sigma)  # check sigma before reading any image
    dataset, split = _dataset(dataset_or_config, split)
    size = len(dataset)  # type: ignore[arg-type]
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"evaluate_baseline: limit={limit!r} must be a positive number of images")
        dataset, size = Subset(dataset, range(min(limit, size))), min(limit, size)
    if size == 0:
        raise ValueError("evaluate_baseline: the data set is empty")
    has_masks = dataset[0][3] is not None
    if baseline.needs_masks and not has_masks:
        gt_mask_maps(None)  # raises the explanation
    torch_device = resolve_device(device)
    scorer = MapScorer(protocol, (BRANCH,), has_masks=has_masks, device=torch_device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate)
    for batch in tqdm(loader, desc=f"baseline {name}", disable=not show_progress(progress), unit="batch"):
        batch = batch_to_device(batch, torch_device)
        size_hw = (int(batch.images.shape[-2]), int(batch.images.shape[-1]))
        full = upsample_maps(baseline.maps(batch, sigma), size_hw)  # same size: the engine's normalization only
        head = head_masks(loader.dataset, scorer.num_images, len(batch.labels), size_hw)
        scorer.add(batch, {BRANCH: full}, head=head)
    branches = scorer.summary()
    summary = {
        "run": None,
        "method": f"baseline:{name}",
        "split": split,
        "fusion": None,
        "delta": None,
        "tau": protocol.tau,
        "erase_with": None,
        "num_images": scorer.num_images,
        **branches[BRANCH],
        "branches": branches,
    }
    return EvalResult(scorer.records(), summary)
