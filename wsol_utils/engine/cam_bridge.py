"""Score any CAM library's maps with the suite: :func:`score_extractor` (issue 21).

torchcam and pytorch-grad-cam compute maps (CAM, Grad-CAM, Grad-CAM++, Score-CAM, LayerCAM, ...) but do not say
how well they *localize*. :func:`score_extractor` feeds the maps of any :class:`MapExtractor` through the engine's
own scoring (:func:`wsol_utils.engine.evaluate.score_map_stream`, the code :func:`wsol_utils.engine.evaluate` uses),
so the numbers are those of the suite's tables: GT-known loc at ``tau`` (the papers' protocol, docs/methods.md §2.1),
MaxBoxAcc / MaxBoxAccV2 and, where the data set has masks, PxAP (wsoleval's, §2.2), with per-image records.

Each map is that of the image's GT class (GT-known protocol). A map of any resolution ``(h, w)`` is upsampled to
the image and min-max normalized exactly as the suite's own maps (:func:`wsol_utils.nets.maps.upsample_maps`; bicubic by
default), so a map that equals the suite's CAM up to a positive scale and an offset scores identically.

Adapters (the libraries are optional: ``pip install -e ".[cam]"``, pinned in ``constraints.txt``):

* :class:`SuiteCamExtractor`: the suite's own map of a trained :class:`~wsol_utils.nets.models.WSOLModel`.
* :class:`TorchCamExtractor`: a ``torchcam.methods`` class + ``target_layer``; calls ``extractor(class_idx, scores)``.
* :class:`GradCamExtractor`: a ``pytorch_grad_cam`` class + ``target_layers``; calls it with
  ``targets=[ClassifierOutputTarget(c), ...]``.

The libraries need a module whose forward returns ``(B, C)`` logits; a suite model returns a
:class:`~wsol_utils.nets.models.WSOLOutput`, so it is wrapped in :class:`ClassifierView`, whose ``target_layer`` (branch
A's body: the features the classifier pools) is every adapter's default target.

Rules for what an extractor returns (checked per batch by :func:`check_maps`, errors name the extractor and the
image): a ``(B, h, w)`` tensor (or NumPy array), one map per image; a list or tuple of maps (one per layer) is
an error unless it holds exactly one map: pick one target layer or fuse them. A map holding NaN or inf is scored
as an all-zero map, as wsoleval's ``normalize_scoremap`` does (:func:`wsol_utils.nets.maps.normalize_minmax`), with a
:class:`NonFiniteMapWarning` naming the images, and ``map_finite`` is ``False`` in its record.

Every hook an extractor adds to the model is gone when :func:`score_extractor` returns (also after an error), the
parameters hold no gradient (``.grad`` is ``None``), and the model's train/eval mode is restored.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset

from wsol_utils.data import collate
from wsol_utils.engine.distributed import resolve_device
from wsol_utils.engine.evaluate import EvalResult, score_map_stream, warn_if_unfinished
from wsol_utils.engine.run import load_run
from wsol_utils.nets.maps import normalize_minmax, upsample_maps
from wsol_utils.nets.methods import get_method
from wsol_utils.nets.models import WSOLModel
from wsol_utils.scoring.pipeline import MapBatch, branch_maps, classification_logits
from wsol_utils.scoring.protocol import PAPERS

__all__ = [
    "HOOK_ATTRIBUTES",
    "ClassifierView",
    "GradCamExtractor",
    "MapExtractor",
    "NonFiniteMapWarning",
    "SuiteCamExtractor",
    "TorchCamExtractor",
    "check_maps",
    "extractor_maps",
    "map_difference",
    "model_hooks",
    "score_extractor",
    "score_extractors",
]

#: The per-module dicts of hooks a library may register (``register_forward_hook`` and friends).
HOOK_ATTRIBUTES: tuple[str, ...] = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_full_backward_hooks",  # not a dict in every torch version; read with getattr
)
#: The branch name an extractor's single map is scored under (as a one-branch method's map, like the baselines).
BRANCH = "a"


class NonFiniteMapWarning(UserWarning):
    """An extractor returned maps holding NaN or inf; they were scored as all-zero maps (wsoleval's rule)."""


@runtime_checkable
class MapExtractor(Protocol):
    """Anything that makes one map per image: ``extractor(model, images, classes) -> maps``.

    ``model``: the module the maps are taken from (a :class:`ClassifierView` for a suite model); ``images``:
    ``(B, 3, H, W)`` normalized; ``classes``: ``(B,)`` int64, the class whose map is wanted. Returns ``(B, h, w)``
    maps of any scale (they are min-max normalized afterwards), on any device. ``name`` labels the results.
    """

    name: str

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Any: ...


class ClassifierView(nn.Module):
    """A suite model seen as a classifier: ``forward(images (B, 3, H, W)) -> (B, C)`` logits.

    The logits are :func:`wsol_utils.scoring.pipeline.classification_logits` of ``model(images)`` (two-branch methods:
    the
    sum of both branches, branch B erasing with A's top-1 as no labels are given). ``target_layer`` is branch A's
    body, whose output ``S'`` ``(B, W, h, w)`` the classifier pools (CAM's layer); ``fc_layer`` the classifier
    (``Linear W->C`` for CAM, a ``1x1 conv`` for ACoL / HCLNet).
    """

    def __init__(self, model: WSOLModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: Tensor) -> Tensor:
        return classification_logits(self.model(images))

    @property
    def target_layer(self) -> nn.Module:
        return self.model.branch_a.body

    @property
    def fc_layer(self) -> nn.Module:
        return self.model.branch_a.classifier


# -- adapters ----------------------------------------------------------------------------------------------------
def _default_target(model: nn.Module, who: str) -> nn.Module:
    if isinstance(model, ClassifierView):
        return model.target_layer
    raise ValueError(f"{who}: no target layer given and the model is not a suite model; pass the layer to hook")


@dataclass
class SuiteCamExtractor:
    """The suite's own map (:func:`wsol_utils.scoring.pipeline.branch_maps`) of ``branch`` (``None``: the method's main
    map: ``a`` for CAM, ``fused`` for two-branch methods; ``fusion`` / ``fusion_kwargs``: the fused map's, ``None``
    the method's default); ``(B, h, w)`` in ``[0, 1]`` at feature resolution."""

    branch: str | None = None
    fusion: str | None = None
    fusion_kwargs: dict[str, Any] | None = None
    name: str = "suite CAM"

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Tensor:
        wsol = model.model if isinstance(model, ClassifierView) else model
        if not isinstance(wsol, WSOLModel):
            raise ValueError(f"{self.name}: needs a suite model (WSOLModel); got {type(wsol).__name__}")
        spec = get_method(wsol.method)
        with torch.no_grad():
            output = wsol(images)  # label-free: branch B erased with A's top-1, as evaluate's default (PAPERS)
            maps = branch_maps(output, classes, wsol.method, self.fusion, self.fusion_kwargs)
        return maps[self.branch or spec.main_branch]


@dataclass
class TorchCamExtractor:
    """A torchcam extractor: ``method`` is a ``torchcam.methods`` class (``CAM``, ``GradCAM``, ``GradCAMpp``,
    ``ScoreCAM``, ``LayerCAM``, ...), ``target_layer`` the module (or list of modules) to hook (``None``: the
    :class:`ClassifierView`'s), ``options`` more keyword arguments of its constructor (torchcam's ``CAM`` gets the
    view's ``fc_layer`` by default).

    Per batch: the extractor is built on ``model``, ``scores = model(images)`` with gradients on, then
    ``extractor(classes.tolist(), scores, normalized=False)``; its hooks are removed in every case. Returns the
    ``(B, h, w)`` map of the one layer, or the list of maps (one per layer; :func:`score_extractor` refuses it).
    """

    method: Callable[..., Any]
    target_layer: nn.Module | str | Sequence[nn.Module | str] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"torchcam {getattr(self.method, '__name__', 'extractor')}"

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Tensor | list[Tensor]:
        kwargs = dict(self.options)
        if isinstance(model, ClassifierView) and "fc_layer" in inspect.signature(self.method).parameters:
            kwargs.setdefault("fc_layer", model.fc_layer)
        target: Any = self.target_layer if self.target_layer is not None else _default_target(model, self.name)
        if isinstance(target, Sequence) and not isinstance(target, str):
            target = list(target)  # torchcam takes a list of layers
        extractor = self.method(model, target_layer=target, input_shape=tuple(images.shape[1:]), **kwargs)
        try:
            with torch.enable_grad():
                scores = model(images)
                maps = extractor(classes.tolist(), scores, normalized=False)
        finally:
            extractor.remove_hooks()
            extractor.reset_hooks()  # drop the hooked activations and gradients
        return maps[0] if len(maps) == 1 else list(maps)


@dataclass
class GradCamExtractor:
    """A pytorch-grad-cam extractor: ``method`` is a ``pytorch_grad_cam`` class (``GradCAM``, ``GradCAMPlusPlus``,
    ``ScoreCAM``, ``LayerCAM``, ...), ``target_layers`` the modules to hook (``None``: the :class:`ClassifierView`'s;
    the library averages several layers into one map), ``options`` more keyword arguments of its constructor.

    Per batch: ``method(model=model, target_layers=...)(input_tensor=images, targets=[ClassifierOutputTarget(c),
    ...])``, then the library's hooks are released in every case (not through its ``with`` block, which swallows
    ``IndexError``). Returns ``(B, H, W)`` float32 maps at the image size (the library's bilinear resize and
    min-max scaling, after its ReLU).
    """

    method: Callable[..., Any]
    target_layers: Sequence[nn.Module] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self) -> None:
        self.name = self.name or f"grad-cam {getattr(self.method, '__name__', 'extractor')}"

    def __call__(self, model: nn.Module, images: Tensor, classes: Tensor) -> Tensor:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        layers = list(self.target_layers) if self.target_layers is not None else [_default_target(model, self.name)]
        cam = self.method(model=model, target_layers=layers, **self.options)
        try:
            with torch.enable_grad():
                maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(c)) for c in classes])
        finally:
            cam.activations_and_grads.release()
            cam.activations_and_grads.clear()
            cam.outputs = None  # the logits with their graph
        return torch.from_numpy(np.asarray(maps, dtype=np.float32)).to(images.device)


# -- checks --------------------------------------------------------------------------------------------------------
def _images_named(image_ids: Sequence[str], start: int, positions: Sequence[int]) -> str:
    shown = [f"#{start + i} ({image_ids[i]})" for i in positions[:5]]
    more = f" and {len(positions) - 5} more" if len(positions) > 5 else ""
    return ", ".join(shown) + more


def check_maps(maps: Any, name: str, image_ids: Sequence[str], start: int) -> Tensor:
    """What extractor ``name`` returned for a batch of ``len(image_ids)`` images (data set indices from ``start``)
    as a float ``(B, h, w)`` tensor, or a ``ValueError`` naming the extractor, the image and the fix.

    Accepted: a ``(B, h, w)`` tensor or NumPy array (a list or tuple of one such map: that map). Refused: a list or
    tuple of several maps (one per layer), another number of maps than images, another shape, an empty map.
    NaN / inf values are kept (:func:`score_extractor` scores such maps as zeros).
    """
    count = len(image_ids)
    first = _images_named(image_ids, start, [0])
    if isinstance(maps, (list, tuple)):
        if len(maps) != 1:
            raise ValueError(
                f"extractor {name!r} returned {len(maps)} maps per image batch (one per layer?) for images from "
                f"{first}: pick one target layer, or fuse the layers' maps into one (e.g. torchcam's "
                f"fuse_cams) before scoring"
            )
        maps = maps[0]
    if isinstance(maps, np.ndarray):
        maps = torch.from_numpy(maps)
    if not isinstance(maps, Tensor):
        raise ValueError(
            f"extractor {name!r} returned a {type(maps).__name__} for images from {first}; expected (B, h, w) maps"
        )
    shape = tuple(maps.shape)
    if maps.ndim != 3 or shape[0] != count or min(shape[1:]) < 1:
        hint = " (squeeze the channel dimension)" if maps.ndim == 4 and shape[1] == 1 else ""
        where = first if maps.ndim != 3 or shape[0] == count else f"the batch of {count} images from {first}"
        raise ValueError(
            f"extractor {name!r} returned maps of shape {shape} for {where}; expected ({count}, h, w): "
            f"one non-empty map per image{hint}"
        )
    if maps.is_complex() or maps.dtype == torch.bool:
        raise ValueError(f"extractor {name!r} returned {maps.dtype} maps for images from {first}; expected real")
    return maps.detach().float()


def _warn_non_finite(finite: Tensor, name: str, image_ids: Sequence[str], start: int) -> None:
    bad = [int(i) for i in torch.nonzero(~finite).flatten()]
    if bad:
        warnings.warn(
            f"extractor {name!r} returned maps holding NaN or inf for images {_images_named(image_ids, start, bad)}: "
            "scored as all-zero maps (wsoleval's rule; box (0, 0, 0, 0))",
            NonFiniteMapWarning,
            stacklevel=4,
        )


# -- hooks and gradients ----------------------------------------------------------------------------------------
def model_hooks(model: nn.Module) -> dict[str, dict[str, list[int]]]:
    """The hook ids registered on each module of ``model``: ``{module name: {hook dict: [ids]}}`` (only modules
    with hooks; names as ``named_modules``, ``""`` for the model)."""
    out: dict[str, dict[str, list[int]]] = {}
    for module_name, module in model.named_modules():
        hooks = {attr: list(d) for attr in HOOK_ATTRIBUTES if isinstance(d := getattr(module, attr, None), dict) and d}
        if hooks:
            out[module_name] = hooks
    return out


@contextmanager
def _restored(model: nn.Module) -> Iterator[None]:
    """Run the block with ``model`` in eval mode; afterwards (also after an error) remove every hook the block
    added to any module, set every parameter's ``.grad`` to ``None`` (gradient methods backpropagate; pytorch-grad-cam
    already calls ``model.zero_grad()``, so earlier gradients are lost anyway) and restore train/eval mode."""
    before = model_hooks(model)
    training = model.training
    model.eval()
    try:
        yield
    finally:
        for module_name, module in model.named_modules():
            for attr in HOOK_ATTRIBUTES:
                hooks = getattr(module, attr, None)
                if isinstance(hooks, dict):
                    kept = set(before.get(module_name, {}).get(attr, []))
                    for key in [k for k in hooks if k not in kept]:
                        del hooks[key]
        model.zero_grad(set_to_none=True)
        model.train(training)


# -- scoring ---------------------------------------------------------------------------------------------------------
def _logits(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """``(B, C)`` classification logits ``model(images)``: for a suite model (:class:`ClassifierView`) those
    :func:`wsol_utils.engine.evaluate` computes under :data:`~wsol_utils.scoring.protocol.PAPERS` (branch B erasing with
    branch A's predicted class: no label reaches the model). ``labels`` only checks the batch size."""
    with torch.no_grad():
        logits = model(images)
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != len(labels):
        raise ValueError(
            f"score_extractor: the model must return (B, C) logits; got {type(logits).__name__} of shape "
            f"{tuple(getattr(logits, 'shape', ()))} (wrap a model with another output in a small module)"
        )
    return logits


def _model_and_data(
    run_or_model: str | Path | nn.Module, split: str, dataset: Dataset | None, device: torch.device
) -> tuple[nn.Module, Dataset, str | None]:
    """The model to extract from (a suite model wrapped in :class:`ClassifierView`), the data set, the run folder."""
    if isinstance(run_or_model, (str, Path)):
        config, loaded = load_run(run_or_model, device=device)
        warn_if_unfinished(Path(run_or_model), config.epochs)
        return ClassifierView(loaded), dataset if dataset is not None else config.dataset_for(split), str(run_or_model)
    if not isinstance(run_or_model, nn.Module):
        raise ValueError(f"score_extractor: expected a run folder or an nn.Module; got {type(run_or_model).__name__}")
    if dataset is None:
        raise ValueError("score_extractor: with a model, pass the data set to score on (dataset=...)")
    model: nn.Module = ClassifierView(run_or_model) if isinstance(run_or_model, WSOLModel) else run_or_model
    return model.to(device), dataset, None


def score_extractor(
    run_or_model: str | Path | nn.Module,
    extractor: MapExtractor,
    *,
    split: str = "test",
    dataset: Dataset | None = None,
    tau: float = PAPERS.tau,
    wsoleval: bool = True,
    limit: int | None = None,
    batch_size: int = 32,
    upsample: str = "bicubic",
    device: str = "cpu",
    progress: bool | None = None,
) -> EvalResult:
    """Score ``extractor``'s GT-class maps on a trained run or a model + data set, as the suite scores its own.

    Args:
        run_or_model: a run folder (:func:`wsol_utils.engine.train`; its config's ``dataset_for(split)`` is scored
            unless ``dataset`` is given), or an ``nn.Module``: a suite model, or any classifier returning ``(B, C)``
            logits (then ``dataset`` is required).
        extractor: a :class:`MapExtractor` (:class:`TorchCamExtractor`, :class:`GradCamExtractor`, ...).
        split: ``"train"``, ``"val"`` or ``"test"`` (with a run folder).
        dataset: a data set of :func:`wsol_utils.data.load` (items ``(image, label, boxes, mask, image_id)``).
        tau: the papers' box threshold, a fraction of the map's max in ``(0, 1]`` (docs/methods.md §2.1).
        wsoleval: also compute MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP (docs/methods.md §2.2).
        limit: score only the first ``limit`` images.
        batch_size: images per extractor call.
        upsample: ``"bicubic"`` or ``"bilinear"``: how maps reach the image size
            (:func:`wsol_utils.nets.maps.upsample_maps`).
        device: ``"cpu"``, ``"cuda"``, ..., or ``"auto"`` (CUDA when available; a notebook's ``DEVICE``).

    Returns:
        :class:`~wsol_utils.engine.EvalResult` with :func:`wsol_utils.engine.evaluate`'s keys: ``method`` is
        ``"extractor:<name>"``, the flat keys and ``branches["a"]`` the metrics (``gt_known_loc_acc``, ``maxboxacc``,
        ``maxboxacc_v2``, ``pxap`` with masks, and the classification columns of the model's logits); records as
        :func:`~wsol_utils.engine.evaluate`'s (``a_x0`` .. ``a_iou``, ...) plus ``map_finite``.
    """
    name = str(getattr(extractor, "name", "") or type(extractor).__name__)
    if not callable(extractor):
        raise ValueError(f"score_extractor: extractor {name!r} is not callable (see MapExtractor)")
    protocol = PAPERS.replace(tau=tau, wsoleval=wsoleval, upsample=upsample)  # validates them
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"score_extractor: batch_size={batch_size!r} must be a positive int")
    torch_device = resolve_device(device)
    model, data, run = _model_and_data(run_or_model, split, dataset, torch_device)
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"score_extractor: limit={limit!r} must be a positive number of images")
        data = Subset(data, range(min(limit, len(data))))  # type: ignore[arg-type]
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, collate_fn=collate)
    finite_flags: list[Tensor] = []

    def maps_of(batch: Any, start: int) -> MapBatch:
        size = (int(batch.images.shape[-2]), int(batch.images.shape[-1]))
        maps = check_maps(extractor(model, batch.images, batch.labels), name, list(batch.image_ids), start)
        finite = torch.isfinite(maps).flatten(1).all(dim=1).cpu()
        _warn_non_finite(finite, name, list(batch.image_ids), start)
        finite_flags.append(finite)
        full = upsample_maps(maps.to(batch.images.device), size, upsample)  # non-finite maps -> zeros
        logits = _logits(model, batch.images, batch.labels)
        return MapBatch(low={BRANCH: full}, full={BRANCH: full}, logits=logits, b_input=None)

    with _restored(model):
        records, branches = score_map_stream(
            loader, maps_of, protocol=protocol, device=torch_device, progress=progress, desc=name
        )
    records["map_finite"] = torch.cat(finite_flags).numpy()
    summary = {
        "run": run,
        "method": f"extractor:{name}",
        "split": split if dataset is None else str(getattr(dataset, "split", split)),
        "fusion": None,
        "delta": None,
        "tau": protocol.tau,
        "erase_with": protocol.erase_with,
        "num_images": len(records),
        **branches[BRANCH],
        "branches": branches,
    }
    return EvalResult(records, summary)


def score_extractors(
    runs: Mapping[tuple[Any, ...], str | Path],
    extractors: Mapping[tuple[Any, ...], Sequence[MapExtractor]] | Sequence[MapExtractor],
    **options: Any,
) -> dict[tuple[Any, ...], EvalResult]:
    """:func:`score_extractor` of every extractor on every run with the same ``options`` (``limit``, ``tau``, ...).

    ``runs``: ``{key: run folder}`` with tuple keys, e.g. ``{("cam", 0): path}``; ``extractors``: one list for all
    runs, or ``{key prefix: list}`` giving the runs whose key starts with that prefix their own list (e.g.
    ``{("cam",): [...], ("acol",): [...]}``; a run no prefix matches is an error). Returns ``{key + (extractor
    name,): result}`` in the order of ``runs``, then of the extractors: the input of
    :func:`wsol_utils.studies.analysis.run_frame` with key columns such as ``("model", "seed", "maps")``."""
    results: dict[tuple[Any, ...], EvalResult] = {}
    for key, run in runs.items():
        if isinstance(extractors, Mapping):
            chosen = [list(group) for prefix, group in extractors.items() if key[: len(prefix)] == tuple(prefix)]
            if not chosen:
                raise ValueError(f"score_extractors: no extractors for run {key!r}; key prefixes: {list(extractors)}")
            listed = [extractor for group in chosen for extractor in group]
        else:
            listed = list(extractors)
        for extractor in listed:
            name = str(getattr(extractor, "name", "") or type(extractor).__name__)
            entry = (*key, name)
            if entry in results:
                raise ValueError(f"score_extractors: two extractors named {name!r} for run {key!r}; rename one")
            results[entry] = score_extractor(run, extractor, **options)
    return results


def _first_maps(
    run_or_model: str | Path | nn.Module,
    extractors: Sequence[MapExtractor],
    dataset: Dataset | None,
    split: str,
    count: int,
    device: str,
) -> tuple[Any, list[Tensor]]:
    """The batch of the first ``count`` images and each extractor's checked raw maps ``(B, h, w)`` of them."""
    if count < 1:
        raise ValueError(f"count={count!r} must be a positive number of images")
    torch_device = resolve_device(device)
    model, data, _run = _model_and_data(run_or_model, split, dataset, torch_device)
    batch = collate([data[i] for i in range(min(count, len(data)))])  # type: ignore[arg-type]
    images, labels, ids = batch.images.to(torch_device), batch.labels.to(torch_device), list(batch.image_ids)
    with _restored(model):
        maps = [check_maps(e(model, images, labels), str(getattr(e, "name", e)), ids, 0) for e in extractors]
    return batch, [m.to(torch_device) for m in maps]


def map_difference(
    run_or_model: str | Path | nn.Module,
    first: MapExtractor,
    second: MapExtractor,
    *,
    dataset: Dataset | None = None,
    split: str = "test",
    count: int = 32,
    device: str = "cpu",
) -> float:
    """The largest absolute difference between two extractors' min-max normalized GT-class maps
    (:func:`wsol_utils.nets.maps.normalize_minmax`, ``[0, 1]``) on the first ``count`` images of ``split`` (or
    ``dataset``): the parity check of two implementations of the same map (e.g. torchcam's CAM and the suite's).

    Both maps are compared at their own resolution, which must agree (``(B, h, w)``); a shape mismatch is a
    ``ValueError``. The model's hooks, gradients and mode are restored as by :func:`score_extractor`."""
    _batch, (a, b) = _first_maps(run_or_model, [first, second], dataset, split, count, device)
    if a.shape != b.shape:
        raise ValueError(
            f"map_difference: {getattr(first, 'name', first)!r} gives maps of shape {tuple(a.shape)}, "
            f"{getattr(second, 'name', second)!r} {tuple(b.shape)}; compare extractors of the same resolution"
        )
    return float((normalize_minmax(a) - normalize_minmax(b)).abs().max())


def extractor_maps(
    run_or_model: str | Path | nn.Module,
    extractors: Sequence[MapExtractor],
    *,
    dataset: Dataset | None = None,
    split: str = "test",
    count: int = 6,
    upsample: str = "bicubic",
    device: str = "cpu",
) -> dict[str, np.ndarray]:
    """Each extractor's GT-class maps of the first ``count`` images of ``split`` (or ``dataset``) for figures:
    ``{name: (N, H, W)}`` in ``[0, 1]`` at image size, upsampled and normalized as :func:`score_extractor` scores
    them. The images are those of :func:`wsol_utils.engine.examples.example_maps` with the same ``count`` and split."""
    batch, maps = _first_maps(run_or_model, extractors, dataset, split, count, device)
    size = (int(batch.images.shape[-2]), int(batch.images.shape[-1]))
    names = [str(getattr(extractor, "name", extractor)) for extractor in extractors]
    return {name: upsample_maps(m, size, upsample).cpu().numpy() for name, m in zip(names, maps)}
