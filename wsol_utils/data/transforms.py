"""Image transforms that carry boxes and masks along (docs/methods.md §3, ARCHITECTURE.md "Conventions").

Every transform takes an RGB image ``(H, W, 3) uint8``, its boxes ``(N, 4)`` float in the inclusive
``x0, y0, x1, y1`` pixel convention and an optional mask ``(H, W) uint8`` (0 / 1 / 255 ignore), and returns the
image as a ``(3, H', W')`` float tensor with ImageNet normalization, the boxes ``(N, 4)`` float32 moved exactly
the way the pixels moved, and the mask ``(H', W')`` uint8 (or ``None``).

Box arithmetic (never rounded here; metrics truncate with ``int()`` where wsoleval does):

- resize ``W -> W'``:   ``x' = x * W' / W`` (and ``y' = y * H' / H``);
- crop at ``(left, top)`` of size ``(w, h)``: ``x' = clip(x - left, 0, w - 1)``;
- horizontal flip of width ``W``: ``(x0, x1) -> (W - 1 - x1, W - 1 - x0)`` (inclusive pixel columns).

The three named protocols (``make_transform``), for a target side ``S`` (224 in the papers):

- ``"train"``: resize to ``R x R`` with ``R = round(S * 256 / 224)``, random ``S x S`` crop, random
  horizontal flip (p = 0.5) -- the official ACoL / wsoleval training transform;
- ``"test"``: resize to ``S x S``, no crop -- wsoleval's test protocol;
- ``"test_crop"``: resize to ``R x R``, center ``S x S`` crop -- the official ACoL test protocol;
- ``"identity"`` / ``"flip"``: resize to ``S x S`` only where the image is not already that size, then
  (``"flip"``) a random flip -- the defaults of the built-in synthetic set, which is generated at its size.

Images are resized with PIL's bilinear filter (what torchvision's ``Resize`` uses), masks with nearest.
Randomness comes only from the ``generator`` given to the transform (``None``: torch's default generator,
which a ``DataLoader`` seeds per worker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WSOLTransform",
    "TRANSFORM_NAMES",
    "make_transform",
    "normalize",
    "denormalize",
    "resize_boxes",
    "crop_boxes",
    "hflip_boxes",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRANSFORM_NAMES = ("train", "test", "test_crop", "identity", "flip")

TransformOutput = tuple[Tensor, Tensor, "Tensor | None"]
BoxTransform = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], TransformOutput]


def normalize(images: Tensor) -> Tensor:
    """ImageNet-normalize ``(..., 3, H, W)`` RGB floats in ``[0, 1]``: ``(x - mean) / std`` per channel."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images - mean) / std


def denormalize(images: Tensor) -> Tensor:
    """Undo :func:`normalize`: ``(..., 3, H, W)`` normalized -> RGB in ``[0, 1]`` (clipped), for display."""
    mean = images.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = images.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return (images * std + mean).clamp(0.0, 1.0)


def resize_boxes(boxes: np.ndarray, old_size: tuple[int, int], new_size: tuple[int, int]) -> np.ndarray:
    """Scale ``(N, 4)`` boxes from an image of ``old_size = (W, H)`` to ``new_size = (W', H')``.

    ``x' = x * W'/W``, ``y' = y * H'/H``; returns float32 ``(N, 4)``, no rounding.
    """
    sx = new_size[0] / old_size[0]
    sy = new_size[1] / old_size[1]
    return (np.asarray(boxes, dtype=np.float64) * np.array([sx, sy, sx, sy])).astype(np.float32)


def crop_boxes(boxes: np.ndarray, left: int, top: int, width: int, height: int) -> np.ndarray:
    """Move ``(N, 4)`` boxes into a crop at ``(left, top)`` of size ``width x height``, clipped to the crop.

    A box that falls wholly outside the crop collapses onto the crop's border (it is kept, not dropped,
    so that the number of boxes per image never changes).
    """
    moved = np.asarray(boxes, dtype=np.float64) - np.array([left, top, left, top])
    limits = np.array([width - 1, height - 1, width - 1, height - 1], dtype=np.float64)
    return np.clip(moved, 0.0, limits).astype(np.float32)


def hflip_boxes(boxes: np.ndarray, width: int) -> np.ndarray:
    """Mirror ``(..., 4)`` inclusive boxes in an image ``width`` pixels wide: ``x -> width - 1 - x``."""
    boxes = np.asarray(boxes, dtype=np.float32)
    flipped = boxes.copy()
    flipped[..., 0] = width - 1 - boxes[..., 2]
    flipped[..., 2] = width - 1 - boxes[..., 0]
    return flipped


def _resize_image(image: np.ndarray, side: int) -> np.ndarray:
    if image.shape[0] == side and image.shape[1] == side:
        return image
    return np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.BILINEAR))


def _resize_mask(mask: np.ndarray, side: int) -> np.ndarray:
    if mask.shape[0] == side and mask.shape[1] == side:
        return mask
    return np.asarray(Image.fromarray(mask).resize((side, side), Image.Resampling.NEAREST))


def _randint(high: int, generator: torch.Generator | None) -> int:
    """A uniform int in ``[0, high)`` from ``generator`` (torch's default generator when ``None``)."""
    return int(torch.randint(high, (1,), generator=generator).item())


@dataclass
class WSOLTransform:
    """Resize -> crop -> flip -> tensor -> normalize, moving boxes and mask with the pixels.

    Attributes:
        resize: side of the square resize (``None``: keep the size).
        crop: side of the square crop (``None``: no crop); must be ``<= resize``.
        random_crop: random crop position (train) instead of the center (test_crop).
        flip: random horizontal flip with probability 0.5.
        generator: source of randomness for crop and flip (``None``: torch's default generator).
    """

    resize: int | None = None
    crop: int | None = None
    random_crop: bool = False
    flip: bool = False
    generator: torch.Generator | None = None

    def __post_init__(self) -> None:
        if self.crop is not None and self.resize is not None and self.crop > self.resize:
            raise ValueError(f"crop={self.crop} is larger than resize={self.resize}; choose crop <= resize")

    def __call__(self, image: np.ndarray, boxes: np.ndarray, mask: np.ndarray | None = None) -> TransformOutput:
        """Apply to ``image (H, W, 3) uint8``, ``boxes (N, 4)``, ``mask (H, W) uint8 | None``."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3) RGB uint8, got shape {tuple(image.shape)}")
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        image, boxes, mask = self._resize(image, boxes, mask)
        image, boxes, mask = self._crop(image, boxes, mask)
        if self.flip and _randint(2, self.generator) == 1:
            boxes = hflip_boxes(boxes, image.shape[1])
            image = image[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        tensor = torch.from_numpy(np.array(image, dtype=np.uint8)).permute(2, 0, 1).float().div_(255.0)
        mask_tensor = None if mask is None else torch.from_numpy(np.array(mask, dtype=np.uint8))
        return normalize(tensor), torch.from_numpy(boxes), mask_tensor

    def batch(self, images: np.ndarray, boxes: np.ndarray, masks: np.ndarray | None = None) -> list[TransformOutput]:
        """The outputs of one call per image, for ``images (B, H, W, 3) uint8`` already at the output size
        (``resize`` is ``None`` or the size, no ``crop``), ``boxes (B, N, 4)`` and ``masks (B, H, W)``: the
        images are flipped, converted and normalized as one array, the random draws are the per-image ones in
        order, so the result equals ``[self(images[i], boxes[i], masks[i]) for i in range(B)]``.

        Raises ``ValueError`` when a resize or a crop is needed (call the transform per image then).
        """
        if not self.batchable(images.shape[1:3]):
            raise ValueError(f"{self!r}.batch: images of size {images.shape[1:3]} need a resize or a crop")
        flips = np.array([self.flip and _randint(2, self.generator) == 1 for _ in range(len(images))], dtype=bool)
        images, masks = images.copy(), None if masks is None else masks.copy()
        images[flips] = images[flips][:, :, ::-1]
        boxes = np.asarray(boxes, dtype=np.float32).copy()
        boxes[flips] = hflip_boxes(boxes[flips], images.shape[2])
        if masks is not None:
            masks[flips] = masks[flips][:, :, ::-1]
        tensors = normalize(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().float().div_(255.0))
        mask_tensors = None if masks is None else torch.from_numpy(masks)
        return [
            (tensors[i], torch.from_numpy(boxes[i]), None if mask_tensors is None else mask_tensors[i])
            for i in range(len(tensors))
        ]

    def batchable(self, size: tuple[int, int]) -> bool:
        """Whether :meth:`batch` applies to images of ``size (H, W)`` (no resize or crop changes them)."""
        return self.crop is None and (self.resize is None or tuple(size) == (self.resize, self.resize))

    def _resize(
        self, image: np.ndarray, boxes: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self.resize is None:
            return image, boxes, mask
        height, width = image.shape[:2]
        boxes = resize_boxes(boxes, (width, height), (self.resize, self.resize))
        mask = None if mask is None else _resize_mask(mask, self.resize)
        return _resize_image(image, self.resize), boxes, mask

    def _crop(
        self, image: np.ndarray, boxes: np.ndarray, mask: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        if self.crop is None:
            return image, boxes, mask
        height, width = image.shape[:2]
        if self.crop > min(height, width):
            raise ValueError(f"crop={self.crop} is larger than the image ({width}x{height}); resize first")
        if self.random_crop:
            top = _randint(height - self.crop + 1, self.generator)
            left = _randint(width - self.crop + 1, self.generator)
        else:  # torchvision's CenterCrop rounding
            top, left = round((height - self.crop) / 2.0), round((width - self.crop) / 2.0)
        window = (slice(top, top + self.crop), slice(left, left + self.crop))
        boxes = crop_boxes(boxes, left, top, self.crop, self.crop)
        return image[window], boxes, None if mask is None else mask[window]


def make_transform(name: str, image_size: int = 224, generator: torch.Generator | None = None) -> WSOLTransform:
    """The named protocol (see the module docstring) for square outputs of side ``image_size``.

    Raises ``ValueError`` for an unknown name or a non-positive size.
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    outer = round(image_size * 256 / 224)
    recipes: dict[str, dict[str, Any]] = {
        "train": dict(resize=outer, crop=image_size, random_crop=True, flip=True),
        "test": dict(resize=image_size),
        "test_crop": dict(resize=outer, crop=image_size),
        "identity": dict(resize=image_size),
        "flip": dict(resize=image_size, flip=True),
    }
    if name not in recipes:
        raise ValueError(f"transform {name!r} is unknown; choose one of {', '.join(TRANSFORM_NAMES)} or a callable")
    return WSOLTransform(generator=generator, **recipes[name])
