"""Tiny on-disk data sets for the tests: CUB's archive layout and wsoleval's metadata layout, written from a list of
:class:`TinyImage` (a few small generated JPEGs), and :func:`tiny_run_config`, a synthetic run that trains in about
a second. A plain module (not ``conftest``) so that tests import it by name
even when pytest also collects ``notebooks/``, whose ``conftest.py`` would shadow this folder's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from wsol_utils.engine import RunConfig


def tiny_run_config(tmp_path: Path, **changes: Any) -> RunConfig:
    """A run that trains in about a second: 64 synthetic images of 32 px, 1 epoch, cached under ``tmp_path``."""
    base: dict[str, Any] = dict(
        method="cam",
        epochs=1,
        batch_size=32,
        image_size=32,
        lr=0.01,
        device="cpu",
        data_root=str(tmp_path / "data"),
        dataset_kwargs={"num_train": 64, "num_val": 32, "num_test": 32},
    )
    return RunConfig(**{**base, **changes})


def train_stopped(config: RunConfig, run_dir: Path, completed_epochs: int = 1) -> Path:
    """Train ``config`` in ``run_dir`` and stop it as Ctrl-C would (``KeyboardInterrupt``) when epoch
    ``completed_epochs + 1`` starts: the folder then holds the checkpoint of ``completed_epochs`` epochs and no
    ``done.json``. Returns ``run_dir``."""
    import pytest

    from wsol_utils.engine.train import Trainer, train

    real_train_epoch = Trainer.train_epoch

    def stop(self: Trainer, epoch: int, generator: Any) -> Any:
        if epoch == completed_epochs:
            raise KeyboardInterrupt
        return real_train_epoch(self, epoch, generator)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "train_epoch", stop)
        with pytest.raises(KeyboardInterrupt):
            train(config, run_dir=run_dir, progress=False)
    return run_dir


@dataclass(frozen=True)
class TinyImage:
    """One test image: id (relative path), 0-based label, ``(width, height)``, inclusive int boxes
    ``[(x0, y0, x1, y1), ...]`` in original pixels, and whether it is a training image (CUB split)."""

    image_id: str
    label: int
    size: tuple[int, int]
    boxes: tuple[tuple[int, int, int, int], ...]
    is_train: bool = True


TINY_IMAGES: tuple[TinyImage, ...] = (
    TinyImage("001.Aa/Aa_0001.jpg", 0, (40, 30), ((5, 4, 25, 20),), True),
    TinyImage("003.Cc/Cc_0002.jpg", 2, (50, 60), ((0, 10, 49, 59),), False),
    TinyImage("002.Bb/Bb_0003.jpg", 1, (32, 32), ((3, 3, 12, 12), (16, 18, 30, 31)), True),
    TinyImage("003.Cc/Cc_0004.jpg", 2, (64, 48), ((10, 8, 40, 30),), False),
)


def write_jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    """A small random-colour RGB JPEG of ``size = (width, height)``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=90)


def make_cub_folder(root: Path, images: Sequence[TinyImage] = TINY_IMAGES) -> Path:
    """Write ``root/CUB_200_2011`` in the official archive layout (1-based numbers and labels, ``x y w h``
    boxes with ``w = x1 - x0`` so that wsoleval's ``x + w`` gives back ``x1``; first box only) plus a
    ``segmentations/`` PNG per image (the box area set to 255). Returns the ``CUB_200_2011`` folder."""
    cub = root / "CUB_200_2011"
    lines: dict[str, list[str]] = {"images": [], "image_class_labels": [], "train_test_split": [], "bounding_boxes": []}
    for number, image in enumerate(images, start=1):
        write_jpeg(cub / "images" / image.image_id, image.size, number)
        x0, y0, x1, y1 = image.boxes[0]
        lines["images"].append(f"{number} {image.image_id}")
        lines["image_class_labels"].append(f"{number} {image.label + 1}")
        lines["train_test_split"].append(f"{number} {int(image.is_train)}")
        lines["bounding_boxes"].append(f"{number} {float(x0)} {float(y0)} {float(x1 - x0)} {float(y1 - y0)}")
        segmentation = np.zeros((image.size[1], image.size[0]), dtype=np.uint8)
        segmentation[y0 : y1 + 1, x0 : x1 + 1] = 255
        mask_path = cub / "segmentations" / Path(image.image_id).with_suffix(".png")
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(segmentation).save(mask_path)
    for name, rows in lines.items():
        (cub / f"{name}.txt").write_text("\n".join(rows) + "\n")
    (cub / "classes.txt").write_text("".join(f"{k} {k:03d}.Bird{k}\n" for k in range(1, 201)))
    return cub


def make_wsoleval_folder(root: Path, images: Sequence[TinyImage] = TINY_IMAGES, split: str = "test") -> Path:
    """Write images ``root/<image_id>``, metadata ``root/metadata/<split>/`` (all boxes of each image) and
    masks ``root/masks/<image_id>.png`` (union of the boxes = 255). Returns ``root``."""
    meta = root / "metadata" / split
    meta.mkdir(parents=True, exist_ok=True)
    for number, image in enumerate(images, start=1):
        write_jpeg(root / image.image_id, image.size, 100 + number)
        mask = np.zeros((image.size[1], image.size[0]), dtype=np.uint8)
        for x0, y0, x1, y1 in image.boxes:
            mask[y0 : y1 + 1, x0 : x1 + 1] = 255
        mask_path = root / "masks" / f"{image.image_id}.png"
        mask_path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(mask).save(mask_path)
    (meta / "image_ids.txt").write_text("".join(f"{i.image_id}\n" for i in images))
    (meta / "class_labels.txt").write_text("".join(f"{i.image_id},{i.label}\n" for i in images))
    (meta / "image_sizes.txt").write_text("".join(f"{i.image_id},{i.size[0]},{i.size[1]}\n" for i in images))
    (meta / "localization.txt").write_text(
        "".join(f"{i.image_id},{x0},{y0},{x1},{y1}\n" for i in images for x0, y0, x1, y1 in i.boxes)
    )
    return root
