"""CUB-200-2011 from its official archive layout (docs/methods.md §3).

``root`` is the ``CUB_200_2011`` folder (or its parent) holding

- ``images.txt``              ``<image_number> <relative path under images/>``
- ``image_class_labels.txt``  ``<image_number> <class_number>``  (1-based on disk -> 0-based in memory)
- ``train_test_split.txt``    ``<image_number> <is_training_image>``  (1 train, 0 test)
- ``bounding_boxes.txt``      ``<image_number> <x> <y> <width> <height>``  (float pixels, one box per image)
- ``classes.txt`` (optional)  ``<class_number> <class name>``
- ``images/`` and, optional, ``segmentations/<relative path with .png>`` (greyscale; > 127 is foreground,
  the majority of CUB's annotators) for PxAP.

Boxes follow wsoleval's conversion of CUB (checked against ``clovaai/wsolevaluation``'s
``metadata/CUB/*/localization.txt``, e.g. image 2 ``139.0 30.0 153.0 264.0`` -> ``139,30,292,294``):
``(x0, y0, x1, y1) = (int(x), int(y), int(x + width), int(y + height))``, used as inclusive boxes.

Splits: ``"train"`` and ``"test"`` are the official ones. CUB has no official validation split:
``"val"`` needs ``val_per_class > 0`` and then holds that many training images of each class (chosen
with ``seed``); ``"train"`` then excludes them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from wsol_utils.data.base import ImageFileDataset, ImageRecord, resolve_transform
from wsol_utils.data.metadata import check_relative_id, utf8_lines
from wsol_utils.data.transforms import BoxTransform

__all__ = ["CUB_FILES", "find_cub_root", "read_cub_records", "load_cub"]

CUB_FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "bounding_boxes.txt")
NUM_CUB_CLASSES = 200


def find_cub_root(root: str | Path) -> Path:
    """``root`` itself or ``root/CUB_200_2011``, whichever holds ``images.txt``; clear errors otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: CUB root folder not found (expected the extracted CUB_200_2011 archive)")
    for candidate in (root, root / "CUB_200_2011"):
        if (candidate / "images.txt").is_file():
            return candidate
    raise FileNotFoundError(
        f"{root}: no images.txt here or in {root / 'CUB_200_2011'}; point root at the extracted CUB_200_2011 folder"
    )


def _read_table(
    path: Path, columns: int, parse: Callable[[str], object], *, holds_paths: bool = False
) -> dict[int, list]:
    """``<image_number> <columns values>`` per line -> ``{image_number: [values]}``, errors name file:line.

    The file must be UTF-8; ``holds_paths``: the value is a relative path, checked by
    :func:`~wsol_utils.data.metadata.check_relative_id` (no absolute path, no ``..``)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: missing CUB metadata file (the archive holds {', '.join(CUB_FILES)}); extract "
            "CUB_200_2011.tgz whole and point root at its CUB_200_2011 folder"
        )
    table: dict[int, list] = {}
    for number, raw in utf8_lines(path):
        fields = raw.strip().split(maxsplit=columns)
        if not fields:
            continue
        if len(fields) != columns + 1:
            raise ValueError(f"{path}:{number}: expected an image number and {columns} value(s), got {raw.strip()!r}")
        try:
            key, values = int(fields[0]), [parse(value) for value in fields[1:]]
        except ValueError:
            raise ValueError(f"{path}:{number}: cannot parse {raw.strip()!r}") from None
        if key in table:
            raise ValueError(f"{path}:{number}: image number {key} appears twice")
        if holds_paths:  # images.txt: joined to images/ and segmentations/, so they must stay inside them
            check_relative_id(str(values[0]), path, number, "image path")
        table[key] = values
    return table


def _check_same_ids(reference: dict[int, list], other: dict[int, list], path: Path) -> None:
    missing, extra = sorted(set(reference) - set(other)), sorted(set(other) - set(reference))
    if missing or extra:
        raise ValueError(
            f"{path}: image numbers differ from images.txt (missing {missing[:5]}, extra {extra[:5]}); "
            "the archive's metadata files must list the same images"
        )


def _class_names(root: Path) -> list[str]:
    path = root / "classes.txt"
    if not path.is_file():
        return [f"class{k:03d}" for k in range(1, NUM_CUB_CLASSES + 1)]
    names = _read_table(path, 1, str)
    return [names.get(k, [f"class{k:03d}"])[0] for k in range(1, NUM_CUB_CLASSES + 1)]


def _cub_box(values: list[float], path: Path, image_number: int) -> np.ndarray:
    x, y, width, height = values
    if width <= 0 or height <= 0 or x < 0 or y < 0:
        raise ValueError(f"{path}: image {image_number}: box x={x} y={y} w={width} h={height} is empty or negative")
    return np.array([[int(x), int(y), int(x + width), int(y + height)]], dtype=np.int64)


def read_cub_records(root: str | Path, split: str, val_per_class: int = 0, seed: int = 0) -> list[ImageRecord]:
    """Parse the CUB archive metadata into :class:`~wsol_utils.data.base.ImageRecord` s of one split.

    Raises ``FileNotFoundError`` for a missing root/file, ``ValueError`` (naming file and line or image
    number) for unparsable lines, labels outside 1..200, disagreeing image lists, empty boxes.
    """
    root = find_cub_root(root)
    paths = _read_table(root / "images.txt", 1, str, holds_paths=True)
    labels = _read_table(root / "image_class_labels.txt", 1, int)
    is_train = _read_table(root / "train_test_split.txt", 1, int)
    boxes = _read_table(root / "bounding_boxes.txt", 4, float)
    for name, table in (
        ("image_class_labels.txt", labels),
        ("train_test_split.txt", is_train),
        ("bounding_boxes.txt", boxes),
    ):
        _check_same_ids(paths, table, root / name)
    for image_number, (label,) in labels.items():
        if not 1 <= label <= NUM_CUB_CLASSES:
            raise ValueError(
                f"{root / 'image_class_labels.txt'}: image {image_number}: label {label} is outside "
                f"1..{NUM_CUB_CLASSES} (labels are 1-based on disk)"
            )
    numbers = _split_numbers(labels, is_train, split, val_per_class, seed, root)
    segmentations = root.parent / "segmentations" if not (root / "segmentations").is_dir() else root / "segmentations"
    records = []
    for image_number in numbers:
        relative = paths[image_number][0]
        mask = segmentations / Path(relative).with_suffix(".png")
        records.append(
            ImageRecord(
                path=root / "images" / relative,
                label=labels[image_number][0] - 1,
                boxes=_cub_box(boxes[image_number], root / "bounding_boxes.txt", image_number),
                size=None,
                image_id=relative,
                mask_paths=(mask,) if mask.is_file() else (),
            )
        )
    return records


def _split_numbers(
    labels: dict[int, list], is_train: dict[int, list], split: str, val_per_class: int, seed: int, root: Path
) -> list[int]:
    """Image numbers of ``split`` in file order (see the module docstring for ``val``)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if split == "test":
        return [k for k in sorted(is_train) if is_train[k][0] == 0]
    train = [k for k in sorted(is_train) if is_train[k][0] == 1]
    if split == "val" and val_per_class <= 0:
        raise ValueError(
            f"{root}: CUB has no official validation split; pass val_per_class=N (> 0) to hold out "
            "N training images per class as 'val'"
        )
    rng = np.random.default_rng(seed)
    held = set()
    for label in sorted({labels[k][0] for k in train}):
        members = [k for k in train if labels[k][0] == label]
        held.update(rng.permutation(members)[:val_per_class].tolist())
    return [k for k in train if (k in held) == (split == "val")]


def load_cub(
    root: str | Path,
    split: str = "train",
    transform: str | BoxTransform | None = None,
    image_size: int = 224,
    val_per_class: int = 0,
    seed: int = 0,
    verify: bool = False,
    generator: torch.Generator | None = None,
) -> ImageFileDataset:
    """CUB-200-2011 as a :class:`~wsol_utils.data.base.ImageFileDataset` (200 classes, labels 0..199).

    ``transform`` defaults to ``"train"`` for the train split and ``"test"`` (wsoleval's resize) otherwise.
    ``verify=True`` decodes every image once and skips (logging each, with a summary count in
    ``dataset.skipped``) the ones that fail; otherwise a corrupt image raises a clear error when read.
    """
    records = read_cub_records(root, split, val_per_class, seed)
    cub_root = find_cub_root(root)
    if records and not verify and not records[0].path.is_file():  # verify=True skips (and counts) missing images
        raise FileNotFoundError(
            f"{records[0].path}: image not found; {cub_root} must hold the archive's images/ folder next to "
            "images.txt (extract CUB_200_2011.tgz whole), or load with verify=True to skip missing images"
        )
    default = "train" if split == "train" else "test"
    return ImageFileDataset(
        records,
        num_classes=NUM_CUB_CLASSES,
        class_names=_class_names(cub_root),
        split=split,
        transform=resolve_transform(transform, default, image_size, generator),
        verify=verify,
        source=str(cub_root),
    )
