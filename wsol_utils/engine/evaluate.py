"""``evaluate(run_dir, split) -> EvalResult``: per-image records and the papers' + wsoleval's metrics.

Per batch: one forward pass; for each branch (``a``, ``b`` and the ``fused`` map; CAM has only ``a``) the GT
class's map is normalized (docs/methods.md §1.5), upsampled to the image in torch, normalized again, boxed at ``tau``
(largest 8-connected component, docs/methods.md §2.1) and scored against the GT boxes. MaxBoxAccV2 streams through
:class:`wsol_utils.boxeval.BoxEvaluator` and PxAP through :class:`wsol_utils.boxeval.PxAPEvaluator` when the
data set has masks (docs/methods.md §2.2).

Test-time ``delta`` and ``fusion`` may differ from training's: ``delta`` changes only branch B's input and
``fusion`` only the fused map, so their effect is visible without retraining.

10-crop classification (``ten_crop=True``, as HCLNet reports its classification errors; docs/methods.md §4.1): the
classification columns come from the softmax averaged over the 10 crops (4 corners and the centre, and their mirror
images) of side ``S`` of the image resized to ``R = round(S * 256 / 224)`` (256 for 224,
:func:`wsol_utils.metrics.ten_crop_logits`); the maps and boxes stay those of the single ``S x S`` view. Image files
only (the synthetic set is generated at one size).

Erasing class at test (``erase_with``): ``"gt"`` (default, the official code's choice) or ``"pred"`` (branch A's
top-1). The maps differ only on images whose branch-A top-1 is not the GT class. The classification top-1 of a
two-branch method is that of ``logits_a + logits_b``, and branch B's logits depend on the erased class, so
every classification and localization column can differ.

The per-image maps (at feature resolution) of a run + split + delta + fusion are cached in
``<run>/maps/*.npz``, so :func:`tau_curve` sweeps ``tau`` without re-running the model.

Derived caches (``<run>/maps/*.npz`` and :func:`evaluate_cached`'s ``<run>/suite_eval/<key>.json/.csv``) record
the sha256 of the ``checkpoint.pt`` they were computed from (:func:`wsol_utils.atomic.file_sha256`, taken before the
model is loaded) and their size; an entry is believed only when that digest equals the checkpoint's digest now and
the entry is whole (row count and records digest; a readable, consistent ``.npz``), else it is recomputed and
overwritten. A cache that cannot be written (read-only folder, full disk) is a :class:`CacheWriteWarning` naming
the file; the results are still returned. Evaluating a run that has not finished training (no ``done.json``) is an
:class:`UnfinishedRunWarning` naming the run and its epochs.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from wsol_utils import atomic, boxeval, metrics
from wsol_utils.data import get_dataset
from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.engine.distributed import DistContext, resolve_device
from wsol_utils.engine.run import MAP_CACHE_DIR, load_run
from wsol_utils.engine.train import make_loader
from wsol_utils.erasing import check_delta
from wsol_utils.maps import UPSAMPLE_MODES, upsample_maps
from wsol_utils.methods import get_method
from wsol_utils.pipeline import (
    MapBatch,
    check_fusion,
    classification_logits,
    forward_maps,
    fusion_options,
    gt_boxes_numpy,
    score_boxes,
)

ERASE_WITH: tuple[str, ...] = ("gt", "pred")
#: Key of a suite_eval summary JSON holding what its entry is checked against on read:
#: ``{"checkpoint_sha256", "records_sha256", "num_records"}``.
CACHE_STAMP = "cache"
#: Name of the checkpoint's sha256 in :data:`CACHE_STAMP` and of the 0-d string array in a ``maps/*.npz``.
CHECKPOINT_DIGEST = "checkpoint_sha256"
#: Crops of 10-crop classification (torchvision's ``ten_crop``: 4 corners, centre, and the same of the mirror image).
NUM_CROPS = 10


class CacheWriteWarning(UserWarning):
    """A derived cache (``maps/*.npz``, ``suite_eval/*``) could not be written; the results were still returned."""


class UnfinishedRunWarning(UserWarning):
    """The evaluated run has not finished training: its numbers are those of a partly trained model."""


@dataclass
class EvalResult:
    """``records``: one row per image; ``summary``: the metrics (flat keys = the fused map, as in the papers;
    ``summary["branches"][name]`` = the same metrics for branch ``a``, ``b`` and ``fused``);
    ``checkpoint_sha256``: digest of the run's ``checkpoint.pt`` the numbers came from; ``maps``: the maps
    (``evaluate(..., keep_maps=True)`` only)."""

    records: pd.DataFrame
    summary: dict[str, Any]
    checkpoint_sha256: str | None = None
    maps: MapBundle | None = field(default=None, repr=False, compare=False)

    def table(self) -> pd.DataFrame:
        """One row per branch, one column per metric (percentages)."""
        return pd.DataFrame.from_dict(self.summary["branches"], orient="index")


@dataclass
class MapBundle:
    """Chosen-class maps of a split at feature resolution, with what is needed to score them."""

    maps: dict[str, np.ndarray]  # branch -> (N, h, w) float32 in [0, 1]
    image_size: tuple[int, int]  # (H, W) of the images
    gt_boxes: list[np.ndarray] = field(default_factory=list)  # N x (N_i, 4)
    checkpoint_sha256: str | None = None  # digest of the checkpoint the maps came from (None: not recorded)


# -- map helpers ------------------------------------------------------------------------------------
def mass_fractions(maps: Tensor, regions: dict[str, Tensor]) -> dict[str, np.ndarray]:
    """Fraction of each map's mass inside each region: ``sum(map * region) / sum(map)``; ``(B,)`` each.

    ``maps`` ``(B, H, W)`` in ``[0, 1]``; ``regions`` name -> bool ``(B, H, W)``. A zero map gives NaN.
    """
    total = maps.sum(dim=(-2, -1))
    out = {}
    for name, region in regions.items():
        inside = (maps * region.to(maps.dtype)).sum(dim=(-2, -1))
        out[name] = torch.where(total > 0, inside / total.clamp_min(1e-12), torch.nan).cpu().numpy()
    return out


def _regions(batch: Any, head: Tensor | None, device: torch.device) -> dict[str, Tensor]:
    """Bool ``(B, H, W)`` regions: ``object`` / ``background`` from the masks (ignore pixels in neither), and
    ``head`` when the data set has part masks."""
    regions: dict[str, Tensor] = {}
    if batch.masks is not None:
        masks = batch.masks.to(device)
        regions["object"], regions["background"] = masks == 1, masks == 0
    if head is not None:
        regions["head"] = head.to(device)
    return regions


def head_masks(dataset: Any, start: int, count: int, size: tuple[int, int]) -> Tensor | None:
    """Head-part masks ``(count, H, W)`` bool of items ``start..start+count`` when the data set has
    ``part_masks`` (the synthetic set) and they are aligned with the images (same size), else ``None``."""
    indices = np.arange(start, start + count)
    if isinstance(dataset, Subset):
        indices, dataset = np.asarray(dataset.indices)[indices], dataset.dataset
    if not hasattr(dataset, "part_masks"):
        return None
    head, _body = dataset.part_masks(indices)
    return torch.from_numpy(head) if tuple(head.shape[-2:]) == tuple(size) else None


# -- evaluation --------------------------------------------------------------------------------------
@dataclass
class _Accumulators:
    """Streaming state of one evaluation: of a model's maps (:func:`evaluate`) or of maps made without a model
    (:func:`wsol_utils.baselines.evaluate_baseline`, docs/methods.md §2.4)."""

    branches: tuple[str, ...]
    wsoleval: tuple[str, ...]  # the branches scored with MaxBoxAcc / V2 / PxAP
    has_masks: bool
    device: torch.device
    keep_maps: bool = True  # keep MapBatch.low for the map cache (False: image-resolution baseline maps)
    records: list[pd.DataFrame] = field(default_factory=list)
    logits: list[Tensor] = field(default_factory=list)
    labels: list[Tensor] = field(default_factory=list)
    ious: dict[str, list[np.ndarray]] = field(default_factory=dict)
    box_evals: dict[str, Any] = field(default_factory=dict)
    pxap_evals: dict[str, Any] = field(default_factory=dict)
    cached: dict[str, list[np.ndarray]] = field(default_factory=dict)
    gt_boxes: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        for b in self.branches:
            self.ious[b], self.cached[b] = [], []
            if b in self.wsoleval:
                self.box_evals[b] = boxeval.BoxEvaluator()
                if self.has_masks:
                    self.pxap_evals[b] = boxeval.PxAPEvaluator(device=self.device)


def _classifier_logits(maps: MapBatch) -> Tensor | None:
    """The batch's ``(B, C)`` logits as float32 on the CPU, or ``None`` when the maps come without a classifier:
    logits absent, of width 0 or all NaN (a calibration baseline, docs/methods.md §2.4)."""
    logits: Tensor | None = getattr(maps, "logits", None)
    if logits is None or logits.numel() == 0 or bool(torch.isnan(logits).all()):
        return None
    return logits.float().cpu()


def _score_batch(acc: _Accumulators, batch: Any, maps: MapBatch, tau: float, head: Tensor | None) -> None:
    """Score one batch of maps ``maps.full[branch]`` ``(B, H, W)`` in ``[0, 1]`` against ``batch``'s GT boxes
    (and masks): box at ``tau`` and its IoU (docs/methods.md §2.1), MaxBoxAcc / V2 / PxAP accumulators
    (docs/methods.md §2.2), map mass per region, and the classification columns when ``maps`` has logits
    (otherwise ``pred`` is -1 and ``correct_top1`` / ``correct_top5`` are NaN)."""
    gt_boxes = gt_boxes_numpy(batch.boxes)
    logits = _classifier_logits(maps)
    labels = batch.labels.cpu()
    columns: dict[str, Any] = {"image_id": list(batch.image_ids), "label": labels.numpy()}
    if logits is None:
        columns.update(
            {
                "pred": np.full(len(labels), -1, dtype=np.int64),
                "correct_top1": np.full(len(labels), np.nan),
                "correct_top5": np.full(len(labels), np.nan),
            }
        )
    else:
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        columns.update(
            {
                "pred": top5[:, 0].numpy(),
                "correct_top1": (top5[:, 0] == labels).numpy(),
                "correct_top5": (top5 == labels[:, None]).any(1).numpy(),
            }
        )
    regions = _regions(batch, head, batch.images.device)
    scores = score_boxes(maps.full, gt_boxes, tau)
    for name in acc.branches:
        full, boxes, iou = maps.full[name], scores.boxes[name], scores.ious[name]
        acc.ious[name].append(iou)
        if acc.keep_maps:
            acc.cached[name].append(maps.low[name].cpu().numpy().astype(np.float32))
        columns.update(
            {
                f"{name}_x0": boxes[:, 0],
                f"{name}_y0": boxes[:, 1],
                f"{name}_x1": boxes[:, 2],
                f"{name}_y1": boxes[:, 3],
                f"{name}_iou": iou,
            }
        )
        for region, frac in mass_fractions(full, regions).items():
            columns[f"{name}_mass_{region}"] = frac
        if name in acc.wsoleval:
            acc.box_evals[name].accumulate_batch(full, gt_boxes)  # int() truncation of GT boxes as wsoleval
            if name in acc.pxap_evals:
                acc.pxap_evals[name].accumulate(full, batch.masks.to(full.device))
    if logits is not None:
        acc.logits.append(logits)
    acc.labels.append(labels)
    acc.gt_boxes.extend(gt_boxes)
    acc.records.append(pd.DataFrame(columns))


def score_map_stream(
    loader: DataLoader,
    maps_of: Callable[[Any, int], MapBatch],
    *,
    tau: float = 0.2,
    wsoleval: bool | str = True,
    branches: tuple[str, ...] = ("a",),
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    desc: str = "score",
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Score maps made batch by batch by any source with the code :func:`evaluate` scores a model's maps with.

    For each batch of ``loader`` (moved to ``device``), ``maps_of(batch, start)`` (``start``: the data set index
    of the batch's first image) gives a :class:`~wsol_utils.pipeline.MapBatch` whose ``full[branch]`` are
    ``(B, H, W)`` maps in ``[0, 1]`` at the images' resolution and whose ``logits`` are ``(B, C)`` (all NaN: no
    classifier); each batch is then scored as :func:`evaluate` does (``_score_batch``: box at ``tau``, docs/methods.md
    §2.1; MaxBoxAcc / V2 and PxAP, §2.2).

    Returns:
        ``(records, summaries)``: the per-image records (columns as :func:`evaluate`'s) and, per branch, the metrics
        dict of :func:`evaluate`'s ``summary["branches"]``.
    """
    _check_eval_args(tau, "gt", "bicubic")
    torch_device = torch.device(device)
    acc = _Accumulators(branches, _wsoleval_branches(wsoleval, branches), _has_masks(loader), torch_device, False)
    for batch in tqdm(loader, desc=desc, disable=not _show(progress), unit="batch"):
        batch = _to_device(batch, torch_device)
        start = len(acc.gt_boxes)
        maps = maps_of(batch, start)
        head = head_masks(loader.dataset, start, len(batch.labels), tuple(batch.images.shape[-2:]))
        _score_batch(acc, batch, maps, tau, head)
    if not acc.records:
        raise ValueError(f"{desc}: the data set is empty")
    return pd.concat(acc.records, ignore_index=True), _summaries(acc)


def _localization_summary(acc: _Accumulators, labels: Tensor, ious: np.ndarray) -> dict[str, float]:
    """:func:`wsol_utils.metrics.localization_summary` of the accumulated logits; without a classifier the same
    keys, GT-known loc computed by the same function and every classification-dependent value NaN."""
    if acc.logits:
        logits = torch.cat(acc.logits)
        if len(logits) != len(labels):
            raise ValueError(
                f"evaluate: {len(logits)} of {len(labels)} images came with logits; score maps "
                "either all with a classifier or all without (docs/methods.md §2.4)"
            )
        return dict(metrics.localization_summary(logits, labels, ious))
    blind = metrics.localization_summary(torch.zeros(len(labels), 1), torch.zeros_like(labels), ious)
    return {key: value if key.startswith("gt_known_loc") else math.nan for key, value in blind.items()}


def _summaries(acc: _Accumulators) -> dict[str, dict[str, Any]]:
    """Per branch: the papers' metrics (docs/methods.md §2.1) and, for the ``wsoleval`` branches, MaxBoxAcc,
    MaxBoxAccV2 and (with masks) PxAP (docs/methods.md §2.2)."""
    labels = torch.cat(acc.labels)
    out = {}
    for name in acc.branches:
        summary: dict[str, Any] = _localization_summary(acc, labels, np.concatenate(acc.ious[name]))
        if name in acc.wsoleval:
            box = acc.box_evals[name].compute()
            summary.update({"maxboxacc": box["maxboxacc"], "maxboxacc_v2": box["maxboxacc_v2"]})
            if name in acc.pxap_evals:
                summary["pxap"] = float(acc.pxap_evals[name].compute())
        out[name] = summary
    return out


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    fusion: str | None = None,
    delta: float | None = None,
    tau: float = 0.2,
    wsoleval: bool | str = True,
    limit: int | None = None,
    progress: bool | None = None,
    *,
    erase_with: str = "gt",
    block_radius: int | None = None,
    fusion_weights: str | None = None,
    upsample: str = "bicubic",
    device: str = "auto",
    batch_size: int | None = None,
    cache_maps: bool = True,
    ten_crop: bool = False,
    keep_maps: bool = False,
) -> EvalResult:
    """Evaluate a trained run on ``split``; see the module docstring for the protocol.

    Args:
        run_dir: a directory written by :func:`wsol_utils.engine.train`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fusion, block_radius, fusion_weights: test-time fusion (default: the run config's), docs/methods.md §1.5.
        delta: test-time erasing threshold in (0, 1) (default: training's); changes branch B's input only.
        tau: box threshold as a fraction of the map's max (docs/methods.md §2.1), in (0, 1].
        wsoleval: also compute MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP: ``True`` for every branch,
            ``"main"`` for the main map only (fused; branch A for CAM: a third of the cost), ``False`` for none.
        limit: evaluate only the first ``limit`` images.
        erase_with: ``"gt"`` or ``"pred"``: the class whose branch-A map drives test-time erasing.
        upsample: ``"bicubic"`` (wsoleval's cv2 INTER_CUBIC, in torch) or ``"bilinear"``.
        ten_crop: classification numbers (``cls_*``, ``loc_*_top1`` / ``top5``, ``pred``, ``correct_top*``) from the
            softmax averaged over 10 crops of the ``round(S * 256 / 224)`` px image (see the module docstring);
            boxes and maps unchanged. Image-file data sets only.
        cache_maps: write the maps to ``<run>/maps/*.npz`` for :func:`tau_curve` (a failed write is a
            :class:`CacheWriteWarning`); ``keep_maps``: also return them in ``EvalResult.maps``.

    Returns:
        :class:`EvalResult`. ``records`` columns: image_id, label, pred, correct_top1, correct_top5 and per
        branch ``{branch}_x0.._y1`` (box, inclusive pixels), ``{branch}_iou``, and where the data set has masks
        ``{branch}_mass_object`` / ``_mass_background`` (and ``_mass_head`` with part masks).
    """
    digest = checkpoint_sha256(run_dir)  # before loading: a checkpoint replaced meanwhile leaves a stale-marked cache
    config, model, run_dir = _load_for_eval(run_dir, device, delta)
    warn_if_unfinished(run_dir, config.epochs)
    _check_eval_args(tau, erase_with, upsample)
    fusion = check_fusion(config.fusion if fusion is None else fusion, config.method, "evaluate")
    fusion_kwargs = _fusion_kwargs(fusion, config, block_radius, fusion_weights)
    loader = _eval_loader(config, split, limit, batch_size, model_device(model))
    crops = iter(_ten_crop_loader(config, split, limit, batch_size, model_device(model))) if ten_crop else None
    method = get_method(config.method)
    acc = _Accumulators(
        method.branches, _wsoleval_branches(wsoleval, method.branches), _has_masks(loader), model_device(model)
    )
    for batch in tqdm(loader, desc=f"eval {run_dir.name} [{split}]", disable=not _show(progress), unit="batch"):
        batch = _to_device(batch, model_device(model))
        maps = forward_maps(
            model,
            batch.images,
            batch.labels,
            fusion=fusion,
            fusion_kwargs=fusion_kwargs,
            erase_with=erase_with,
            upsample=upsample,
        )
        if crops is not None:
            outer = next(crops)
            if list(outer.image_ids) != list(batch.image_ids):
                raise RuntimeError("evaluate(ten_crop=True): the crop loader lost step with the test loader")
            labels = batch.labels if erase_with == "gt" else None
            maps.logits = ten_crop_scores(model, outer.images.to(batch.images.device), batch.images.shape[-1], labels)
        head = head_masks(loader.dataset, len(acc.gt_boxes), len(batch.labels), tuple(batch.images.shape[-2:]))
        _score_batch(acc, batch, maps, tau, head)
    branches = _summaries(acc)
    main = branches[method.main_branch]
    summary = {
        "run": str(run_dir),
        "method": config.method,
        "split": split,
        "fusion": fusion,
        "delta": float(model.delta),
        "tau": tau,
        "erase_with": erase_with,
        "num_images": len(acc.gt_boxes),
        **main,
        "branches": branches,
    }
    bundle = None
    if cache_maps or keep_maps:
        bundle = _map_bundle(acc, tuple(loader.dataset[0][0].shape[-2:]), digest)
    if cache_maps and bundle is not None:
        name = _cache_name(split, model.delta, fusion, fusion_kwargs, erase_with, limit)
        _save_map_cache(run_dir / MAP_CACHE_DIR / name, bundle)
    records = pd.concat(acc.records, ignore_index=True)
    return EvalResult(records, summary, digest, bundle if keep_maps else None)


def checkpoint_sha256(run_dir: str | Path) -> str | None:
    """sha256 of ``<run_dir>/checkpoint.pt`` (:func:`wsol_utils.atomic.file_sha256`), ``None`` when there is none:
    what every derived cache of the run records and is checked against."""
    path = Path(run_dir) / ckpt.CHECKPOINT_FILE
    return atomic.file_sha256(path) if path.is_file() else None


def warn_if_unfinished(run_dir: Path, epochs: int) -> None:
    """:class:`UnfinishedRunWarning` naming ``run_dir``, its checkpoint's completed epochs and the config's
    ``epochs`` when training there has not finished (:func:`wsol_utils.engine.checkpoint.is_done`)."""
    if ckpt.is_done(run_dir):
        return
    done = ckpt.load_checkpoint(run_dir / ckpt.CHECKPOINT_FILE).get("epoch", "?")
    warnings.warn(
        f"{run_dir} is an unfinished run: its checkpoint holds epoch {done} of the config's {epochs} epochs "
        f"(no {ckpt.DONE_FILE}), so these are the numbers of a partly trained model; finish it with "
        f"python -m wsol_utils train --config {run_dir / ckpt.CONFIG_FILE} --run-dir {run_dir}",
        UnfinishedRunWarning,
        stacklevel=3,
    )


def _write_cache(path: Path, write: Callable[[Path], object]) -> bool:
    """:func:`wsol_utils.atomic.write_atomic` of a cache file; an ``OSError`` (read-only folder, full disk) is a
    :class:`CacheWriteWarning` naming ``path`` instead. Returns whether the file was written."""
    try:
        atomic.write_atomic(path, write)
    except OSError as err:
        warnings.warn(
            f"could not write the cache file {path} ({err}); the results are returned but not cached",
            CacheWriteWarning,
            stacklevel=4,
        )
        return False
    return True


def _cache_entry(run_dir: Path, cache: str, options: dict[str, Any]) -> tuple[Path, Path, dict[str, Any]]:
    """``(summary .json, records .csv, the keyed options)`` of an evaluation cache entry; ``progress`` and
    ``device`` are not part of the key."""
    keyed = {k: v for k, v in options.items() if k not in ("progress", "device")}
    key = hashlib.sha256(json.dumps(keyed, sort_keys=True, default=str).encode()).hexdigest()[:12]
    summary_path = run_dir / cache / f"{key}.json"
    return summary_path, summary_path.with_suffix(".csv"), keyed


def is_cached(run_dir: str | Path, cache: str = "suite_eval", **options: Any) -> bool:
    """Whether :func:`evaluate_cached` of ``run_dir`` with ``options`` would read its cache entry: one computed
    from the run's current checkpoint (same digest) and whole."""
    run_dir = Path(run_dir)
    summary_path, records_path, _ = _cache_entry(run_dir, cache, options)
    return _read_cache_entry(summary_path, records_path, checkpoint_sha256(run_dir)) is not None


def _read_cache_entry(summary_path: Path, records_path: Path, digest: str | None) -> EvalResult | None:
    """The cached :class:`EvalResult`, or ``None`` when the entry is missing, unreadable, of another checkpoint
    than ``digest`` (``None``: no checkpoint to check against), or not whole: its records file's digest or row
    count differs from what the summary recorded (a truncated CSV)."""
    if digest is None or not (summary_path.is_file() and records_path.is_file()):
        return None
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        stamp = summary.pop(CACHE_STAMP)
        if stamp[CHECKPOINT_DIGEST] != digest or stamp["records_sha256"] != atomic.file_sha256(records_path):
            return None
        records = pd.read_csv(records_path)
        whole = len(records) == int(stamp["num_records"]) == int(summary["num_images"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return EvalResult(records, summary, digest) if whole else None


def _write_cache_entry(summary_path: Path, records_path: Path, result: EvalResult, keyed: dict[str, Any]) -> None:
    """Write the records CSV, then the summary JSON with its :data:`CACHE_STAMP` (checkpoint digest, the CSV's
    digest and row count); a failed write is a :class:`CacheWriteWarning`, and no summary is written without its
    records."""
    text = result.records.to_csv(index=False)
    if not _write_cache(records_path, lambda tmp: tmp.write_text(text, encoding="utf-8")):
        return
    stamp = {
        CHECKPOINT_DIGEST: result.checkpoint_sha256,
        "records_sha256": atomic.file_sha256(records_path),
        "num_records": len(result.records),
    }
    entry = json.dumps({**result.summary, "options": keyed, CACHE_STAMP: stamp}, default=float)
    _write_cache(summary_path, lambda tmp: tmp.write_text(entry, encoding="utf-8"))


def evaluate_cached(run_dir: str | Path, cache: str = "suite_eval", **options: Any) -> EvalResult:
    """:func:`evaluate` of ``run_dir`` with ``options``, cached in ``<run>/<cache>/<hash of options>.json/.csv``.

    Notebooks share evaluations through it as they share runs (and :func:`~wsol_utils.engine.train_many`'s workers
    fill it). An entry is believed only when it records the digest of the run's current checkpoint and is whole
    (:func:`_read_cache_entry`); otherwise it is recomputed and overwritten in place (same key). A failed write is a
    :class:`CacheWriteWarning` and the result is still returned. ``progress`` and ``device`` are passed on but are
    not part of the key.
    """
    run_dir = Path(run_dir)
    summary_path, records_path, keyed = _cache_entry(run_dir, cache, options)
    cached = _read_cache_entry(summary_path, records_path, checkpoint_sha256(run_dir))
    if cached is not None:
        return cached
    passed = {k: v for k, v in options.items() if k not in keyed}
    result = evaluate(run_dir, **passed, **keyed)
    _write_cache_entry(summary_path, records_path, result, keyed)
    return result


def _wsoleval_branches(wsoleval: bool | str, branches: tuple[str, ...]) -> tuple[str, ...]:
    if wsoleval == "main":
        return branches[-1:]  # the method's main map: ("a",) for one-branch methods, else ("fused",)
    if isinstance(wsoleval, bool):
        return branches if wsoleval else ()
    raise ValueError(f"evaluate: wsoleval={wsoleval!r}; choose True, False or 'main'")


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter."""
    return next(model.parameters()).device


def _load_for_eval(run_dir: str | Path, device: str, delta: float | None) -> tuple[Any, Any, Path]:
    run_dir = Path(run_dir)
    if not (run_dir / ckpt.CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir / ckpt.CONFIG_FILE} not found: {run_dir} is not a run directory")
    config, model = load_run(run_dir, device=resolve_device(device))
    if delta is not None:
        model.delta = check_delta(delta, "evaluate")
    return config, model, run_dir


def _fusion_kwargs(fusion: str | None, config: Any, block_radius: int | None, weights: str | None) -> dict[str, Any]:
    """The fusion's options: the given ones, else the run config's."""
    return fusion_options(
        fusion,
        config.block_radius if block_radius is None else block_radius,
        config.fusion_weights if weights is None else weights,
    )


def _check_eval_args(tau: float, erase_with: str, upsample: str) -> None:
    if not 0.0 < float(tau) <= 1.0:
        raise ValueError(f"evaluate: tau={tau!r} must lie in (0, 1] (a fraction of the map's max; papers use 0.2)")
    if erase_with not in ERASE_WITH:
        raise ValueError(f"evaluate: erase_with={erase_with!r}; choose 'gt' or 'pred'")
    if upsample not in UPSAMPLE_MODES:
        raise ValueError(f"evaluate: upsample={upsample!r}; choose one of {', '.join(UPSAMPLE_MODES)}")


def _eval_loader(
    config: Any, split: str, limit: int | None, batch_size: int | None, device: torch.device
) -> DataLoader:
    dataset = config.dataset_for(split)
    if limit is not None:
        if limit <= 0:
            raise ValueError(f"evaluate: limit={limit!r} must be a positive number of images")
        dataset = Subset(dataset, range(min(limit, len(dataset))))
    eval_config = config.replace(batch_size=batch_size or max(config.batch_size, 64))
    return make_loader(dataset, eval_config, DistContext(device=device), shuffle=False)


def ten_crop_outer_size(size: int) -> int:
    """Side ``R`` of the image the 10 crops of side ``size`` are cut from: ``round(size * 256 / 224)`` (256 for
    224), the ``"train"`` / ``"test_crop"`` transforms' resize (docs/methods.md §3.5)."""
    return round(size * 256 / 224)


def ten_crop_scores(model: torch.nn.Module, images: Tensor, size: int, labels: Tensor | None = None) -> Tensor:
    """10-crop class scores: the softmax of the model's classification logits averaged over the 10 crops.

    Args:
        model: a :class:`~wsol_utils.models.WSOLModel` (its :func:`~wsol_utils.pipeline.classification_logits`).
        images: ``(B, 3, R, R)`` normalized images at the outer size (:func:`ten_crop_outer_size`).
        size: crop side ``S <= R``.
        labels: ``(B,)`` class whose branch-A map drives branch B's erasing (``None``: A's top-1), as ``erase_with``.

    Returns:
        ``(B, C)`` mean probabilities (:func:`wsol_utils.metrics.ten_crop_logits` of the ``(B, 10, C)`` logits) on
        the CPU, float32.
    """
    from torchvision.transforms.functional import ten_crop

    if images.shape[-1] < size or images.shape[-2] < size:
        raise ValueError(f"ten_crop_scores: crops of {size} px do not fit {tuple(images.shape[-2:])} images")
    with torch.no_grad():
        logits = [classification_logits(model(crop, labels)).float().cpu() for crop in ten_crop(images, [size, size])]
    return metrics.ten_crop_logits(torch.stack(logits, dim=1), num_crops=NUM_CROPS, softmax=True)


def _ten_crop_loader(
    config: Any, split: str, limit: int | None, batch_size: int | None, device: torch.device
) -> DataLoader:
    """The images of :func:`_eval_loader`, in the same order, resized to :func:`ten_crop_outer_size` (no crop)."""
    if not get_dataset(config.dataset).image_files:
        raise ValueError(
            "evaluate: ten_crop=True needs image files (cub, wsoleval); the synthetic set is generated "
            "at one size, so it has no larger image to crop from"
        )
    return _eval_loader(
        config.replace(image_size=ten_crop_outer_size(config.image_size)), split, limit, batch_size, device
    )


def _has_masks(loader: DataLoader) -> bool:
    return loader.dataset[0][3] is not None


def _to_device(batch: Any, device: torch.device) -> Any:
    return batch._replace(images=batch.images.to(device), labels=batch.labels.to(device))


def _show(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else bool(progress)


# -- cached maps and the tau curve ------------------------------------------------------------------
def _cache_name(
    split: str, delta: float, fusion: str | None, fusion_kwargs: dict[str, Any], erase_with: str, limit: int | None
) -> str:
    options = "-".join(f"{k}{v}" for k, v in sorted(fusion_kwargs.items()))
    parts = [split, f"d{float(delta):.3f}", str(fusion), options, erase_with, f"n{limit}" if limit else "all"]
    return "-".join(p for p in parts if p) + ".npz"


def _map_bundle(acc: _Accumulators, image_size: tuple[int, int], digest: str | None) -> MapBundle:
    """The accumulated feature-resolution maps of every branch, with the GT boxes and the checkpoint digest."""
    maps = {b: np.concatenate(acc.cached[b]) for b in acc.branches}
    return MapBundle(maps, (int(image_size[0]), int(image_size[1])), list(acc.gt_boxes), digest)


def _save_map_cache(path: Path, bundle: MapBundle) -> None:
    """Write ``bundle`` to ``path`` (``.npz``: ``maps_<branch>``, ``box_counts``, ``boxes``, ``image_size`` and
    :data:`CHECKPOINT_DIGEST`, a 0-d string); a failed write is a :class:`CacheWriteWarning`."""
    counts = np.array([len(b) for b in bundle.gt_boxes], dtype=np.int64)
    boxes = np.concatenate(bundle.gt_boxes) if bundle.gt_boxes else np.zeros((0, 4))
    arrays: dict[str, Any] = {f"maps_{b}": m for b, m in bundle.maps.items()}
    arrays[CHECKPOINT_DIGEST] = np.array(bundle.checkpoint_sha256 or "")  # 0-d unicode: no pickle

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:  # a file object: savez would add ".npz" to a path without it
            np.savez_compressed(fh, box_counts=counts, boxes=boxes, image_size=np.array(bundle.image_size), **arrays)

    _write_cache(path, write)


def load_map_cache(path: str | Path) -> MapBundle:
    """Read a ``maps/*.npz`` cache written by :func:`evaluate` (no pickles); a truncated, corrupt or inconsistent
    file (maps and boxes of different image counts) raises ``ValueError`` naming it. ``checkpoint_sha256`` is
    ``None`` for a file that does not record it."""
    try:
        with np.load(path, allow_pickle=False) as data:
            maps = {k.removeprefix("maps_"): data[k] for k in data.files if k.startswith("maps_")}
            counts = data["box_counts"]
            boxes = data["boxes"]
            height, width = (int(v) for v in data["image_size"])
            digest = str(data[CHECKPOINT_DIGEST]) if CHECKPOINT_DIGEST in data.files else None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"map cache {path} is truncated or corrupt ({type(err).__name__}: {err})") from err
    if not maps or any(len(m) != len(counts) for m in maps.values()) or len(boxes) != int(counts.sum()):
        raise ValueError(f"map cache {path} is inconsistent: its maps and boxes count different images")
    splits = np.cumsum(counts)[:-1]
    return MapBundle(maps, (height, width), list(np.split(boxes, splits)), digest or None)


def _fresh_map_cache(path: Path, digest: str | None) -> MapBundle | None:
    """The map cache at ``path`` when it exists, is whole and was computed from the checkpoint of ``digest``;
    else ``None`` (to be recomputed)."""
    if digest is None or not path.is_file():
        return None
    try:
        bundle = load_map_cache(path)
    except ValueError:
        return None
    return bundle if bundle.checkpoint_sha256 == digest else None


def tau_curve(
    run_dir: str | Path,
    taus: Iterable[float] = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2)),
    split: str = "test",
    fusion: str | None = None,
    delta: float | None = None,
    *,
    branches: Sequence[str] | None = None,
    erase_with: str = "gt",
    limit: int | None = None,
    upsample: str = "bicubic",
    batch_size: int = 256,
    progress: bool | None = None,
) -> pd.DataFrame:
    """GT-known loc accuracy (%) vs the box threshold ``tau`` for each branch, from cached maps.

    The maps are computed once by :func:`evaluate` (``wsoleval=False``) and cached in ``<run>/maps``; each
    ``tau`` then only re-boxes them (docs/methods.md §2.1). A cache of another checkpoint (the run trained on since)
    or a damaged one is recomputed; when the cache cannot be written the maps just computed are used.
    Returns columns ``tau``, ``branch``, ``gt_known_loc_acc``.
    """
    run_dir = Path(run_dir)
    config = ckpt.read_config(run_dir)
    fusion = check_fusion(config.fusion if fusion is None else fusion, config.method, "tau_curve")
    delta_used = config.delta if delta is None else float(delta)
    name = _cache_name(split, delta_used, fusion, _fusion_kwargs(fusion, config, None, None), erase_with, limit)
    bundle = _fresh_map_cache(run_dir / MAP_CACHE_DIR / name, checkpoint_sha256(run_dir))
    if bundle is None:
        bundle = evaluate(
            run_dir,
            split,
            fusion=fusion,
            delta=delta,
            wsoleval=False,
            limit=limit,
            progress=progress,
            erase_with=erase_with,
            upsample=upsample,
            keep_maps=True,
        ).maps
        assert bundle is not None  # keep_maps=True
    taus = [float(t) for t in taus]
    rows = []
    for branch in branches or list(bundle.maps):
        if branch not in bundle.maps:
            raise ValueError(f"tau_curve: branch {branch!r} not in this run's maps ({sorted(bundle.maps)})")
        hits = np.zeros(len(taus))
        for start in range(0, len(bundle.gt_boxes), batch_size):
            full = upsample_maps(
                torch.from_numpy(bundle.maps[branch][start : start + batch_size]), bundle.image_size, upsample
            )
            gt = list(bundle.gt_boxes[start : start + batch_size])
            for j, boxes in enumerate(metrics.maps_to_boxes_at(full, taus)):
                hits[j] += (metrics.best_iou(boxes, gt) >= 0.5).sum()
        rows += [
            {"tau": t, "branch": branch, "gt_known_loc_acc": 100.0 * h / len(bundle.gt_boxes)}
            for t, h in zip(taus, hits)
        ]
    return pd.DataFrame(rows)


def summary_json(summary: dict[str, Any]) -> str:
    """The summary as indented JSON: float NaN values (Python or NumPy) become ``null``; strings are untouched."""
    return json.dumps(_nan_to_none(summary), indent=2, default=float)


def _nan_to_none(value: Any) -> Any:
    """``value`` with every float NaN (in nested dicts, lists and tuples) replaced by ``None``; NumPy floats as
    Python floats."""
    if isinstance(value, dict):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    return value
