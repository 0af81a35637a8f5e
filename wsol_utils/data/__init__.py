"""Layer 3, data. Data for WSOL: the built-in synthetic set, CUB-200-2011 and wsoleval metadata folders
(docs/methods.md §3).

One entry point, and one registry of data sets (:func:`register_dataset`, :func:`get_dataset`,
:func:`list_datasets`; like :mod:`wsol_utils.nets.methods` and :mod:`wsol_utils.nets.backbones`)::

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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsol_utils.base.registry import Registry

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
    "DataSource",
    "get_dataset",
    "list_datasets",
    "load",
    "register_dataset",
    "unregister_dataset",
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
]

#: A data set's loader: ``(root, split, transform, image_size, **kwargs) -> WSOLDataset``.
Loader = Callable[..., "WSOLDataset"]


@dataclass(frozen=True)
class DataSource:
    """One registered data set: its loader and what the rest of the suite may rely on.

    ``image_files``: read from image files under ``root`` (``root`` required and must exist; the papers' train /
    test transforms, ten-crop and ImageNet-pretrained backbones apply, docs/methods.md §3-4). Otherwise generated:
    ``root`` is only a cache folder (not part of a run's key) and the set brings its own transforms.
    """

    name: str
    loader: Loader
    image_files: bool

    def default_transform(self, train: bool) -> str | None:
        """The transform a run uses: the papers' ``"train"`` / ``"test"`` for image files, else ``None`` (the
        set's own)."""
        return ("train" if train else "test") if self.image_files else None


_DATASETS: Registry[DataSource] = Registry(
    "data set",
    unknown="unknown data set {name!r}; choose one of {joined}",
    duplicate="data set {name!r} is already registered",
)


def register_dataset(name: str, *, image_files: bool) -> Callable[[Loader], Loader]:
    """Decorator: register ``loader`` as data set ``name`` (a second registration of a name is an error)."""

    def decorate(loader: Loader) -> Loader:
        _DATASETS.add(name, DataSource(name, loader, image_files))
        return loader

    return decorate


def unregister_dataset(name: str) -> None:
    """Remove a registered data set (for tests that register a toy one)."""
    _DATASETS.remove(name)


def get_dataset(name: str) -> DataSource:
    """The registered :class:`DataSource` ``name``; ``ValueError`` naming the registered ones otherwise."""
    return _DATASETS.get(name)


def list_datasets() -> tuple[str, ...]:
    """Names of the registered data sets, in registration order (``synthetic``, ``cub``, ``wsoleval`` first)."""
    return _DATASETS.names()


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
    source = get_dataset(name)
    if source.image_files and root is None:
        raise ValueError(f"load({name!r}) needs root= (the data set's folder on disk)")
    return source.loader(root, split, transform, image_size, **kwargs)


@register_dataset("synthetic", image_files=False)
def load_synthetic(
    root: str | Path | None,
    split: str,
    transform: str | Callable | None,
    image_size: int | None,
    **kwargs: Any,
) -> WSOLDataset:
    """The built-in synthetic set (:class:`~wsol_utils.data.synthetic.SyntheticWSOL`, 64 px by default)."""
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


@register_dataset("cub", image_files=True)
def load_cub(
    root: str | Path, split: str, transform: str | Callable | None, image_size: int | None, **kwargs: Any
) -> WSOLDataset:
    """CUB-200-2011 in the official archive layout (:func:`wsol_utils.data.cub.load_cub`, 224 px by default)."""
    from wsol_utils.data import cub

    return cub.load_cub(root, split, transform, image_size or 224, **kwargs)


@register_dataset("wsoleval", image_files=True)
def load_wsoleval(
    root: str | Path, split: str, transform: str | Callable | None, image_size: int | None, **kwargs: Any
) -> WSOLDataset:
    """A wsoleval metadata folder over an image root (:func:`wsol_utils.data.wsoleval.load_wsoleval`, 224 px)."""
    from wsol_utils.data import wsoleval

    return wsoleval.load_wsoleval(root, split, transform, image_size or 224, **kwargs)
