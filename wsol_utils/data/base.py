"""The item and batch types shared by every data source, and the image-file data set (ARCHITECTURE.md).

An item is ``(image, label, boxes, mask, image_id)``:

- ``image``: ``(3, H, W)`` float32, ImageNet-normalized (:func:`wsol_utils.data.transforms.normalize`);
- ``label``: int in ``[0, num_classes)``;
- ``boxes``: ``(N, 4)`` float32, inclusive ``x0, y0, x1, y1`` in the returned image's pixels;
- ``mask``: ``(H, W)`` uint8 (0 background, 1 foreground, 255 ignore) or ``None``;
- ``image_id``: str (the wsoleval image id, e.g. a relative path).

:func:`collate` stacks a list of items into a :class:`WSOLBatch`, keeping the variable box counts as a list.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset

from wsol_utils.data.transforms import BoxTransform

__all__ = [
    "WSOLItem",
    "WSOLBatch",
    "collate",
    "WSOLDataset",
    "ImageRecord",
    "ImageFileDataset",
    "ImageDecodeError",
    "read_rgb",
    "read_mask",
    "resolve_transform",
    "tight_boxes",
]

LOGGER = logging.getLogger("wsol_utils.data")

WSOLItem = tuple[Tensor, int, Tensor, "Tensor | None", str]


class WSOLBatch(NamedTuple):
    """A collated batch: ``images (B, 3, H, W)``, ``labels (B,)`` int64, ``boxes`` list of ``(N_i, 4)``,
    ``masks (B, H, W)`` uint8 or ``None`` (when any item has no mask), ``image_ids`` list of str."""

    images: Tensor
    labels: Tensor
    boxes: list[Tensor]
    masks: Tensor | None
    image_ids: list[str]


def collate(batch: Sequence[WSOLItem]) -> WSOLBatch:
    """Stack items ``(image, label, boxes, mask, image_id)`` into a :class:`WSOLBatch`.

    Images must share one size; masks are stacked only when every item has one (else ``None``).
    """
    if not batch:
        raise ValueError("collate() got an empty batch")
    images, labels, boxes, masks, image_ids = zip(*batch)
    sizes = {tuple(image.shape) for image in images}
    if len(sizes) != 1:
        raise ValueError(f"collate(): images differ in size {sorted(sizes)}; use a transform with a fixed size")
    stacked_masks = None if any(mask is None for mask in masks) else torch.stack(list(masks))
    return WSOLBatch(
        images=torch.stack(list(images)),
        labels=torch.as_tensor(labels, dtype=torch.int64),
        boxes=list(boxes),
        masks=stacked_masks,
        image_ids=list(image_ids),
    )


class WSOLDataset(Dataset):
    """Base class of the data sets returned by :func:`wsol_utils.data.load`.

    Attributes:
        num_classes: number of classes (labels lie in ``[0, num_classes)``).
        class_names: one display name per class.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    num_classes: int
    class_names: list[str]
    split: str

    def __len__(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def __getitem__(self, index: int) -> WSOLItem:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def labels(self) -> np.ndarray:  # pragma: no cover - abstract
        """``(len(self),)`` int64 labels, without decoding any image."""
        raise NotImplementedError


def tight_boxes(masks: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` boolean masks -> ``(N, 4)`` float32 tight inclusive boxes ``x0, y0, x1, y1``.

    An empty mask gives ``[0, 0, 0, 0]``.
    """
    masks = np.asarray(masks, dtype=bool)
    cols, rows = np.any(masks, axis=1), np.any(masks, axis=2)
    width, height = masks.shape[2], masks.shape[1]
    x0, y0 = cols.argmax(axis=1), rows.argmax(axis=1)
    x1, y1 = width - 1 - cols[:, ::-1].argmax(axis=1), height - 1 - rows[:, ::-1].argmax(axis=1)
    boxes = np.stack([x0, y0, x1, y1], axis=1).astype(np.float32)
    boxes[~cols.any(axis=1)] = 0.0
    return boxes


class ImageDecodeError(ValueError):
    """An image file is missing or cannot be decoded."""


def read_rgb(path: Path) -> np.ndarray:
    """Decode an image file into ``(H, W, 3)`` uint8 RGB; :class:`ImageDecodeError` names the file."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise ImageDecodeError(f"{path}: image file not found") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(
            f"{path}: cannot decode image ({error}); replace the file, or load with verify=True to skip "
            "undecodable images"
        ) from None


def read_mask(path: Path, threshold: int = 127) -> np.ndarray:
    """Read a greyscale mask PNG as ``(H, W)`` uint8 0/1 (``value > threshold`` is foreground)."""
    try:
        with Image.open(path) as image:
            grey = np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: mask file not found") from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(f"{path}: cannot decode mask ({error})") from None
    return (grey > threshold).astype(np.uint8)


def _is_decodable(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.load()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def _check_boxes_inside(boxes: np.ndarray, width: int, height: int, record: ImageRecord) -> None:
    """Raise ``ValueError`` for a box outside the decoded image (one pixel past the edge is allowed, as in
    wsoleval, for boxes converted from ``x + w``)."""
    outside = (boxes[:, :2] < 0).any(axis=1) | (boxes[:, 2] > width) | (boxes[:, 3] > height)
    if outside.any():
        raise ValueError(
            f"{record.path}: box {boxes[outside][0].tolist()} of image {record.image_id!r} lies "
            f"outside the {width}x{height} image; fix its box in the metadata"
        )


@dataclass(frozen=True)
class ImageRecord:
    """One image on disk: its path, label, boxes in *original* pixels ``(N, 4)`` inclusive, original
    ``(width, height)`` (``None``: read from the decoded image), optional mask path(s) and its id."""

    path: Path
    label: int
    boxes: np.ndarray
    size: tuple[int, int] | None
    image_id: str
    mask_paths: tuple[Path, ...] = ()
    ignore_path: Path | None = None


class ImageFileDataset(WSOLDataset):
    """A data set of image files described by :class:`ImageRecord` s (CUB and wsoleval use it).

    Boxes are given in original pixels; when the decoded image's size differs from the record's ``size``
    (wsoleval's ``image_sizes.txt``), boxes are first rescaled to the decoded size, then moved by the transform.
    Several masks of one image are merged (union); an ignore mask sets its pixels to 255.
    """

    def __init__(
        self,
        records: Sequence[ImageRecord],
        *,
        num_classes: int,
        class_names: list[str],
        split: str,
        transform: BoxTransform,
        verify: bool = False,
        source: str = "",
    ) -> None:
        self.num_classes = num_classes
        self.class_names = class_names
        self.split = split
        self.transform = transform
        self.skipped: list[Path] = []
        self.records = self._verified(records, source) if verify else list(records)

    def _verified(self, records: Sequence[ImageRecord], source: str) -> list[ImageRecord]:
        """Drop (and log) records whose image does not decode; the count goes to ``self.skipped``."""
        kept = []
        for record in records:
            if _is_decodable(record.path):
                kept.append(record)
            else:
                LOGGER.warning("skipping %s: the image does not decode", record.path)
                self.skipped.append(record.path)
        if self.skipped:
            LOGGER.warning(
                "%s: skipped %d of %d images that failed to decode",
                source or "data set",
                len(self.skipped),
                len(records),
            )
        return kept

    def __len__(self) -> int:
        return len(self.records)

    @property
    def labels(self) -> np.ndarray:
        return np.array([record.label for record in self.records], dtype=np.int64)

    def __getitem__(self, index: int) -> WSOLItem:
        record = self.records[index]
        image = read_rgb(record.path)
        height, width = image.shape[:2]
        boxes = record.boxes.astype(np.float32)
        if record.size is not None and record.size != (width, height):
            sx, sy = width / record.size[0], height / record.size[1]
            boxes = boxes * np.array([sx, sy, sx, sy], dtype=np.float32)
        _check_boxes_inside(boxes, width, height, record)
        mask = self._mask(record, (height, width))
        image_t, boxes_t, mask_t = self.transform(image, boxes, mask)
        return image_t, record.label, boxes_t, mask_t, record.image_id

    @staticmethod
    def _mask(record: ImageRecord, shape: tuple[int, int]) -> np.ndarray | None:
        if not record.mask_paths:
            return None
        mask = np.zeros(shape, dtype=np.uint8)
        for path in record.mask_paths:
            part = read_mask(path)
            if part.shape != shape:
                raise ValueError(
                    f"{path}: mask is {part.shape[1]}x{part.shape[0]}, image {record.path} is "
                    f"{shape[1]}x{shape[0]}; masks must match their image's size"
                )
            mask |= part
        if record.ignore_path is not None:
            ignore = read_mask(record.ignore_path)
            if ignore.shape != shape:
                raise ValueError(f"{record.ignore_path}: ignore mask size differs from image {record.path}")
            mask[ignore > 0] = 255
        return mask


def resolve_transform(
    transform: str | BoxTransform | None, default: str, image_size: int, generator: torch.Generator | None = None
) -> BoxTransform:
    """A transform from a protocol name (see :func:`~wsol_utils.data.transforms.make_transform`), a callable,
    or ``None`` (then ``default``)."""
    from wsol_utils.data.transforms import make_transform

    if transform is None:
        transform = default
    if isinstance(transform, str):
        return make_transform(transform, image_size, generator)
    if not callable(transform):
        raise ValueError(f"transform must be a protocol name or a callable, got {type(transform).__name__}")
    return transform
