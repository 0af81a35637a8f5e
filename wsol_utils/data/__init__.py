"""Data for WSOL: the built-in synthetic set, CUB-200-2011 and wsoleval metadata folders (docs/methods.md §3).

One entry point::

    from wsol_utils.data import load, collate
    train = load("synthetic", split="train")                       # generated (and cached) offline
    test = load("cub", root="~/data/CUB_200_2011", split="test")     # the official archive layout
    val = load("wsoleval", root="~/data/ILSVRC", split="val",       # a wsoleval metadata folder
               metadata_dir="wsolevaluation/metadata/ILSVRC/val")
    loader = torch.utils.data.DataLoader(test, batch_size=32, collate_fn=collate)

Items are ``(image (3, H, W) normalized, label int, boxes (N, 4) float inclusive x0,y0,x1,y1,
mask (H, W) uint8 | None, image_id str)``; :func:`collate` makes a :class:`WSOLBatch`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wsol_utils.data.base import ImageDecodeError, WSOLBatch, WSOLDataset, collate
    from wsol_utils.data.metadata import WsolevalMetadata, read_wsoleval_metadata, write_wsoleval_metadata
    from wsol_utils.data.transforms import denormalize, make_transform, normalize

#: The module each public name comes from, imported on first use (PEP 562): the wsoleval metadata reader and the
#: evaluator (``python -m wsol_utils evaluate`` and its workers) import ``wsol_utils.data.metadata`` without
#: importing torch, which ``base`` and ``transforms`` need.
_EXPORTS: dict[str, str] = {
    "ImageDecodeError": "base",
    "WSOLBatch": "base",
    "WSOLDataset": "base",
    "collate": "base",
    "WsolevalMetadata": "metadata",
    "read_wsoleval_metadata": "metadata",
    "write_wsoleval_metadata": "metadata",
    "denormalize": "transforms",
    "make_transform": "transforms",
    "normalize": "transforms",
}
_SUBMODULES = frozenset({"base", "cli", "cub", "metadata", "synthetic", "transforms", "wsoleval"})

__all__ = [
    "load",
    "collate",
    "WSOLBatch",
    "WSOLDataset",
    "denormalize",
    "normalize",
    "make_transform",
    "read_wsoleval_metadata",
    "write_wsoleval_metadata",
    "WsolevalMetadata",
    "ImageDecodeError",
    "SOURCES",
]

SOURCES = ("synthetic", "cub", "wsoleval")


def __getattr__(name: str) -> Any:
    """A public name of :data:`_EXPORTS` or a submodule, imported when first asked for (then kept as a global)."""
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def load(
    name: str,
    root: str | Path | None = None,
    split: str = "train",
    transform: str | Callable | None = None,
    image_size: int | None = None,
    **kwargs: Any,
) -> WSOLDataset:
    """Load a data set by name: ``"synthetic"``, ``"cub"`` or ``"wsoleval"``.

    Args:
        name: the source.
        root: synthetic: cache folder for the generated ``.npz`` (default ``$DATA_ROOT/synthetic`` or
            ``~/.cache/wsol_repro/synthetic``); cub: the ``CUB_200_2011`` folder; wsoleval: the image root.
        split: ``"train"``, ``"val"`` or ``"test"``.
        transform: a protocol name (``"train"``, ``"test"``, ``"test_crop"``, ``"identity"``, ``"flip"``; see
            :mod:`wsol_utils.data.transforms`), a callable ``(image, boxes, mask) -> (tensor, boxes, mask)``,
            or ``None`` for the source's default (synthetic: flip for train, identity otherwise; files:
            ``"train"`` for train, ``"test"`` otherwise).
        image_size: output side (synthetic: the generated size, default 64; files: default 224).
        **kwargs: synthetic: any :class:`~wsol_utils.data.synthetic.SyntheticConfig` field plus
            ``use_cache``, ``progress``, ``generator``; cub: ``val_per_class``, ``seed``, ``verify``,
            ``generator``; wsoleval: ``metadata_dir``, ``mask_dir``, ``num_classes``, ``class_names``,
            ``verify``, ``generator``.

    Returns:
        A :class:`WSOLDataset` with ``num_classes`` and ``class_names``.
    """
    if name == "synthetic":
        return _load_synthetic(root, split, transform, image_size, kwargs)
    if root is None:
        raise ValueError(f"load({name!r}) needs root= (the data set's folder on disk)")
    if name == "cub":
        from wsol_utils.data.cub import load_cub

        return load_cub(root, split, transform, image_size or 224, **kwargs)
    if name == "wsoleval":
        from wsol_utils.data.wsoleval import load_wsoleval

        return load_wsoleval(root, split, transform, image_size or 224, **kwargs)
    raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(SOURCES)}")


def _load_synthetic(
    root: str | Path | None,
    split: str,
    transform: str | Callable | None,
    image_size: int | None,
    kwargs: dict[str, Any],
) -> WSOLDataset:
    import dataclasses

    from wsol_utils.data.synthetic import SyntheticConfig, SyntheticWSOL

    fields = {field.name for field in dataclasses.fields(SyntheticConfig)}
    options = {"use_cache", "progress", "generator"}
    unknown = set(kwargs) - fields - options
    if unknown:
        raise ValueError(
            f"load('synthetic'): unknown option(s) {sorted(unknown)}; knobs are {sorted(fields)} and {sorted(options)}"
        )
    config = SyntheticConfig(image_size=image_size or 64, **{k: v for k, v in kwargs.items() if k in fields})
    return SyntheticWSOL(config, split, transform, cache_dir=root, **{k: v for k, v in kwargs.items() if k in options})
