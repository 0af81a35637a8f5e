"""Data sets described by a wsoleval metadata folder: CUB, ILSVRC, OpenImages (docs/methods.md §3).

The metadata folder (``image_ids.txt``, ``class_labels.txt``, ``image_sizes.txt``, ``localization.txt``) is
parsed by :func:`wsol_utils.data.metadata.read_wsoleval_metadata`, which checks it line by line. Images are
``<root>/<image_id>``. Labels are taken as written in ``class_labels.txt`` -- no re-ordering (ILSVRC's
sorted-wnid order is wsoleval's; the official ACoL class list uses another order, a known trap).

Masks (for PxAP), optional:

- box-style metadata with ``mask_dir``: ``<mask_dir>/<image_id>.png`` (greyscale, > 127 foreground) and an
  optional ``<mask_dir>/<image_id>.ignore.png`` (> 127 ignored, 255 in the returned mask) -- the layout
  :mod:`wsol_utils.scoring.boxeval` reads and ``python -m wsol_utils data export`` writes;
- mask-style metadata (OpenImages: ``<image_id>,<mask_path>,<ignore_path>`` lines): the listed masks,
  relative to ``mask_dir`` (default ``root``), merged by union; those images get the box around the union
  of their foreground as their single box (``[0, 0, 0, 0]`` for an empty mask), computed when read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wsol_utils.data.base import ImageFileDataset, ImageRecord, WSOLItem, resolve_transform, tight_boxes
from wsol_utils.data.metadata import WsolevalMetadata, read_wsoleval_metadata, utf8_lines, wnid_of
from wsol_utils.data.transforms import BoxTransform

__all__ = ["find_metadata_dir", "is_ilsvrc", "wsoleval_records", "load_wsoleval", "MaskBoxDataset"]


def find_metadata_dir(root: Path, split: str, metadata_dir: str | Path | None) -> Path:
    """``metadata_dir`` if given, else the first of ``root/metadata/<split>``, ``root/<split>`` holding
    ``image_ids.txt``; a ``FileNotFoundError`` listing the places tried otherwise."""
    if metadata_dir is not None:
        return Path(metadata_dir)
    tried = [root / "metadata" / split, root / split]
    for candidate in tried:
        if (candidate / "image_ids.txt").is_file():
            return candidate
    raise FileNotFoundError(
        f"no wsoleval metadata for split {split!r}: looked for image_ids.txt in "
        f"{', '.join(map(str, tried))}; copy wsolevaluation's metadata/<CUB|ILSVRC|OpenImages>/{split}/ to "
        f"{tried[0]} (the suite and RunConfig look there), or pass metadata_dir="
    )


def is_ilsvrc(root: str | Path, split: str = "train", metadata_dir: str | Path | None = None) -> bool:
    """Whether the wsoleval folder at ``root`` is ILSVRC: the first image id of ``split``'s ``image_ids.txt`` names a
    WordNet-id class folder (``train/n01440764/...``). ``False`` when the metadata is missing (loading it later
    raises the error that says where it was looked for)."""
    try:
        folder = find_metadata_dir(Path(root), split, metadata_dir)
    except FileNotFoundError:
        return False
    for _, line in utf8_lines(folder / "image_ids.txt"):
        if line.strip():
            return wnid_of(line.strip()) is not None
    return False


def _check_first_image(records: list[ImageRecord], root: Path, folder: Path) -> None:
    """A wrong ``root`` shows at once: the first listed image must exist (one ``stat``; the others are read later)."""
    if records and not records[0].path.is_file():
        first = records[0].image_id.split("/")[0]
        raise FileNotFoundError(
            f"{records[0].path}: image not found. The ids of {folder / 'image_ids.txt'} are paths relative to the "
            f"image root ({root}): point root (--data-root) at the folder that holds {first}/ (for ILSVRC the "
            "folder with train/ and val/), or fix the id"
        )


def _box_masks(mask_dir: Path | None, image_id: str) -> tuple[tuple[Path, ...], Path | None]:
    if mask_dir is None:
        return (), None
    mask, ignore = mask_dir / f"{image_id}.png", mask_dir / f"{image_id}.ignore.png"
    if not mask.is_file():
        raise FileNotFoundError(f"{mask}: mask of image {image_id!r} not found under mask_dir={mask_dir}")
    return (mask,), ignore if ignore.is_file() else None


def wsoleval_records(meta: WsolevalMetadata, root: Path, mask_dir: Path | None) -> list[ImageRecord]:
    """One :class:`~wsol_utils.data.base.ImageRecord` per image id, in ``image_ids.txt`` order."""
    records = []
    for image_id in meta.image_ids:
        if meta.mask_paths is not None:  # OpenImages style
            base = mask_dir if mask_dir is not None else root
            masks = tuple(base / path for path in meta.mask_paths[image_id])
            ignore = meta.ignore_paths.get(image_id) if meta.ignore_paths else None
            boxes = np.zeros((0, 4), dtype=np.int64)
            ignore_path = base / ignore if ignore else None
        else:
            boxes = meta.boxes[image_id]
            masks, ignore_path = _box_masks(mask_dir, image_id)
        records.append(
            ImageRecord(
                path=root / image_id,
                label=meta.labels[image_id],
                boxes=boxes,
                size=meta.sizes.get(image_id),
                image_id=image_id,
                mask_paths=masks,
                ignore_path=ignore_path,
            )
        )
    return records


class MaskBoxDataset(ImageFileDataset):
    """An :class:`ImageFileDataset` whose images have masks but no boxes (OpenImages): each item's single box
    is the tight box of its transformed foreground (pixels == 1)."""

    def __getitem__(self, index: int) -> WSOLItem:
        image, label, _, mask, image_id = super().__getitem__(index)
        assert mask is not None  # wsoleval_records gives every mask-style record its mask paths
        foreground = (mask == 1).numpy()[None]
        return image, label, torch.from_numpy(tight_boxes(foreground)), mask, image_id


def load_wsoleval(
    root: str | Path,
    split: str = "test",
    transform: str | BoxTransform | None = None,
    image_size: int = 224,
    metadata_dir: str | Path | None = None,
    mask_dir: str | Path | None = None,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
    verify: bool = False,
    generator: torch.Generator | None = None,
) -> ImageFileDataset:
    """A data set from a wsoleval metadata folder; images are ``<root>/<image_id>``.

    Args:
        root: image root folder. split: ``train`` / ``val`` / ``test`` (finds the metadata folder, picks
            the default transform: ``"train"`` for train, ``"test"`` otherwise).
        metadata_dir: the metadata folder (default: ``root/metadata/<split>`` or ``root/<split>``).
        mask_dir: masks for PxAP (see the module docstring); ``None``: no masks for box-style metadata.
        num_classes: number of classes (default ``max(label) + 1``); a label ``>= num_classes`` is an error.
        class_names: display names (default ``"class<k>"``). verify: skip undecodable images (logged, counted
            in ``dataset.skipped``) instead of raising when one is read.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: image root folder not found; give the folder the image ids are relative to (wsoleval's data "
            "set root, with the metadata in <root>/metadata/<split>/)"
        )
    folder = find_metadata_dir(root, split, metadata_dir)
    meta = read_wsoleval_metadata(folder)
    records = wsoleval_records(meta, root, None if mask_dir is None else Path(mask_dir))
    if not verify:  # verify=True skips (and counts) missing images instead
        _check_first_image(records, root, folder)
    largest = max(meta.labels.values(), default=-1)
    num_classes = largest + 1 if num_classes is None else num_classes
    if largest >= num_classes:
        bad = next(i for i in meta.image_ids if meta.labels[i] >= num_classes)
        raise ValueError(
            f"{folder / 'class_labels.txt'}: image {bad!r} has label {meta.labels[bad]}, outside "
            f"0..{num_classes - 1} (num_classes={num_classes})"
        )
    names = class_names if class_names is not None else [f"class{k}" for k in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names for num_classes={num_classes}")
    dataset_type = MaskBoxDataset if meta.mask_paths is not None else ImageFileDataset
    default = "train" if split == "train" else "test"
    return dataset_type(
        records,
        num_classes=num_classes,
        class_names=names,
        split=split,
        transform=resolve_transform(transform, default, image_size, generator),
        verify=verify,
        source=str(folder),
    )
