"""The CAM / 1x1-conv equivalence (ACoL §3.1, docs/methods.md §1.1): both forms of a class map, compared
numerically on random and trained networks and on real photos, and the panels of notebook 01."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from wsol_utils.data import WSOLBatch, denormalize
from wsol_utils.nets import pretrained
from wsol_utils.nets.maps import normalize_minmax, upsample_maps
from wsol_utils.nets.models import WSOLModel, cam_to_conv1x1

__all__ = [
    "EQUIVALENCE_ATOL",
    "EQUIVALENCE_RTOL",
    "Equivalence",
    "MapPanels",
    "equivalence",
    "equivalence_panels",
    "imagenet_class_names",
    "model_equivalence",
    "photo_cams",
]

#: Float tolerance of the equivalence: |a - b| <= ATOL + RTOL * max|b| (float32 sums over K channels).
EQUIVALENCE_RTOL = 1e-5
EQUIVALENCE_ATOL = 1e-5


@dataclass(frozen=True)
class Equivalence:
    """Largest absolute differences between the CAM form and the 1x1-conv form."""

    max_logit_diff: float
    max_map_diff: float
    within_tolerance: bool

    def check_line(self, what: str) -> str:
        """A fixed-format line whose text depends only on ``within_tolerance`` (for nbval)."""
        return f"{what}: max |Δlogits|, max |Δmaps| at float tolerance: {self.within_tolerance}"


def equivalence(logits_cam: Tensor, maps_cam: Tensor, logits_conv: Tensor, maps_conv: Tensor) -> Equivalence:
    """Compare logits ``(B, C)`` and maps ``(B, C, h, w)`` of the two forms (docs/methods.md §1.1)."""
    if logits_cam.shape != logits_conv.shape or maps_cam.shape != maps_conv.shape:
        raise ValueError(
            f"equivalence: shapes differ: logits {tuple(logits_cam.shape)} vs "
            f"{tuple(logits_conv.shape)}, maps {tuple(maps_cam.shape)} vs {tuple(maps_conv.shape)}"
        )
    logit_diff = float((logits_cam - logits_conv).abs().max())
    map_diff = float((maps_cam - maps_conv).abs().max())
    ok = logit_diff <= EQUIVALENCE_ATOL + EQUIVALENCE_RTOL * float(
        logits_conv.abs().max()
    ) and map_diff <= EQUIVALENCE_ATOL + EQUIVALENCE_RTOL * float(maps_conv.abs().max())
    return Equivalence(logit_diff, map_diff, ok)


def model_equivalence(model: WSOLModel, images: Tensor) -> Equivalence:
    """A ``cam`` :class:`~wsol_utils.nets.models.WSOLModel` (GAP + FC) against its
    :func:`~wsol_utils.nets.models.cam_to_conv1x1` copy on ``images`` ``(B, 3, H, W)``, both in eval mode."""
    converted = cam_to_conv1x1(model).eval()
    model.eval()
    with torch.no_grad():
        cam, conv = model(images), converted(images)
    return equivalence(cam.logits_a, cam.maps_a, conv.logits_a, conv.maps_a)


@dataclass
class MapPanels:
    """Images and same-size maps for :func:`wsol_utils.ui.viz.plot_map_grid`."""

    images: np.ndarray  # (N, H, W, 3) RGB in [0, 1]
    maps: dict[str, np.ndarray]  # column title -> (N, H, W) in [0, 1]
    gt_boxes: list[np.ndarray] | None  # N x (N_i, 4), or None
    labels: list[str]  # one caption per image
    check: Equivalence


def _full_size(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """``(N, h, w)`` raw maps -> ``(N, H, W)`` normalized to [0, 1] at image size (bicubic, as evaluation)."""
    return upsample_maps(normalize_minmax(maps.float()), size)


def _form_panels(maps_cam: Tensor, maps_conv: Tensor, size: tuple[int, int]) -> dict[str, np.ndarray]:
    cam, conv = _full_size(maps_cam, size), _full_size(maps_conv, size)
    return {
        "CAM: sum_k W_ck S_k": cam.numpy(),
        "1x1 conv map": conv.numpy(),
        "|difference|": (cam - conv).abs().numpy(),
    }


def equivalence_panels(model: WSOLModel, batch: WSOLBatch, count: int = 4) -> MapPanels:
    """The GT class's map of a ``cam`` model in both forms (ACoL Figure 2) for the first ``count`` images
    of a :class:`~wsol_utils.data.WSOLBatch`, normalized and upsampled to the image."""
    images, labels = batch.images[:count], batch.labels[:count]
    converted = cam_to_conv1x1(model).eval()
    model.eval()
    with torch.no_grad():
        cam, conv = model(images), converted(images)
    index = torch.arange(len(labels))
    height, width = images.shape[-2:]
    size = (height, width)
    return MapPanels(
        images=denormalize(images).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
        maps=_form_panels(cam.maps_a[index, labels], conv.maps_a[index, labels], size),
        gt_boxes=[b.numpy().reshape(-1, 4) for b in batch.boxes[:count]],
        labels=[f"class {int(c)}" for c in labels],
        check=equivalence(cam.logits_a, cam.maps_a, conv.logits_a, conv.maps_a),
    )


def imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names from torchvision's weight metadata (offline), or None."""
    try:
        from torchvision.models import VGG16_Weights
    except Exception:  # torchvision missing or unusable (CUDA wheel on a CPU torch): names are optional
        return None
    return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def photo_cams(names: list[str], size: int = 224) -> MapPanels | None:
    """CAMs of the top-1 ImageNet class of scikit-image sample photos (``skimage.data.<name>()``) with
    EfficientNet-Lite0, in both forms; ``None`` when the optional ``pretrained`` weights are missing."""
    from skimage import data as samples  # optional (the notebooks extra)

    try:
        model = pretrained.load_efficientnet_lite0()
    except FileNotFoundError:
        return None
    photos = [getattr(samples, name)() for name in names]
    photos = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p[..., :3] for p in photos]
    images = torch.cat([pretrained.preprocess_photo(p, size) for p in photos])
    logits_cam, maps_cam, logits_conv, maps_conv = pretrained.cam_and_conv_forms(model, images)
    top1 = logits_cam.argmax(dim=1)
    index = torch.arange(len(names))
    class_names = imagenet_class_names()
    labels = [f"{name}: {class_names[c] if class_names else c}" for name, c in zip(names, top1.tolist())]
    return MapPanels(
        images=((images * 128 + 127) / 255).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
        maps=_form_panels(maps_cam[index, top1], maps_conv[index, top1], (size, size)),
        gt_boxes=None,
        labels=labels,
        check=equivalence(logits_cam, maps_cam, logits_conv, maps_conv),
    )
