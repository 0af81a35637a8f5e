"""``evaluate(run_dir, split) -> EvalResult``: per-image records and the papers' + wsoleval's metrics.

Per batch: one forward pass; for each branch (``a``, ``b`` and the ``fused`` map; CAM has only ``a``) the GT
class's map is normalized (docs/methods.md §1.5), upsampled to the image in torch, normalized again and scored by
:class:`wsol_utils.scoring.scorer.MapScorer` under a :class:`wsol_utils.scoring.protocol.Protocol`: boxed at ``tau``
(largest 8-connected component, docs/methods.md §2.1) and scored against the GT boxes; MaxBoxAccV2 streams through
:class:`wsol_utils.scoring.boxeval.BoxEvaluator` and PxAP through :class:`wsol_utils.scoring.boxeval.PxAPEvaluator`
when the data set has masks (docs/methods.md §2.2).

Test-time ``delta`` and ``fusion`` may differ from training's: ``delta`` changes only branch B's input and
``fusion`` only the fused map, so their effect is visible without retraining.

10-crop classification (``ten_crop=True``, as HCLNet reports its classification errors; docs/methods.md §4.1): the
classification columns come from the softmax averaged over the 10 crops (4 corners and the centre, and their mirror
images) of side ``S`` of the image resized to ``R = round(S * 256 / 224)`` (256 for 224,
:func:`wsol_utils.scoring.metrics.ten_crop_logits`); the maps and boxes stay those of the single ``S x S`` view. Image
files only (the synthetic set is generated at one size).

Erasing class at test (``erase_with``): ``"pred"`` (default: branch A's top-1, label-free) or ``"gt"`` (the
official code's choice: the ground-truth class, so the label reaches branch B). The maps differ only on images whose
branch-A top-1 is not the GT class. The classification top-1 of a two-branch method is that of
``logits_a + logits_b``, and branch B's logits depend on the erased class, so every classification and localization
column can differ; GT-erased numbers are label-informed and labelled so
(:meth:`wsol_utils.scoring.protocol.Protocol.label`).

The per-image maps (at feature resolution) of a run + split + delta + fusion are cached in
``<run>/maps/*.npz``, so :func:`tau_curve` sweeps ``tau`` without re-running the model.

Derived caches (``<run>/maps/*.npz`` and :func:`evaluate_cached`'s ``<run>/suite_eval/<key>.json/.csv``) record
the sha256 of the ``checkpoint.pt`` they were computed from (:func:`wsol_utils.base.atomic.file_sha256`, taken before
the model is loaded) and their size; an entry is believed only when that digest equals the checkpoint's digest now and
the entry is whole (row count and records digest; a readable, consistent ``.npz``), else it is recomputed and
overwritten. A cache that cannot be written (read-only folder, full disk) is a :class:`CacheWriteWarning` naming
the file; the results are still returned. Evaluating a run that has not finished training (no ``done.json``) is an
:class:`UnfinishedRunWarning` naming the run and its epochs.
"""

from __future__ import annotations

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

from wsol_utils.base import atomic
from wsol_utils.base.digest import canonical_digest
from wsol_utils.data import get_dataset
from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.engine.distributed import DistContext, resolve_device
from wsol_utils.engine.run import MAP_CACHE_DIR, load_run
from wsol_utils.engine.train import make_loader
from wsol_utils.nets.erasing import check_delta
from wsol_utils.nets.maps import upsample_maps
from wsol_utils.nets.methods import get_method
from wsol_utils.scoring import metrics
from wsol_utils.scoring.pipeline import MapBatch, check_fusion, classification_logits, forward_maps, fusion_options
from wsol_utils.scoring.protocol import PAPERS, Protocol
from wsol_utils.scoring.scorer import MapScorer, localized_at

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
def score_map_stream(
    loader: DataLoader,
    maps_of: Callable[[Any, int], MapBatch],
    *,
    protocol: Protocol = PAPERS,
    branches: tuple[str, ...] = ("a",),
    device: torch.device | str = "cpu",
    progress: bool | None = None,
    desc: str = "score",
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Score maps made batch by batch by any source with the scorer :func:`evaluate` scores a model's maps with.

    For each batch of ``loader`` (moved to ``device``), ``maps_of(batch, start)`` (``start``: the data set index
    of the batch's first image) gives a :class:`~wsol_utils.scoring.pipeline.MapBatch` whose ``full[branch]`` are
    ``(B, H, W)`` maps in ``[0, 1]`` at the images' resolution and whose ``logits`` are ``(B, C)`` (all NaN: no
    classifier); each batch is then scored by :class:`wsol_utils.scoring.scorer.MapScorer` under ``protocol`` (box at
    ``protocol.tau``, docs/methods.md §2.1; MaxBoxAcc / V2 and PxAP on ``protocol.wsoleval``'s branches, §2.2).

    Returns:
        ``(records, summaries)``: the per-image records (columns as :func:`evaluate`'s) and, per branch, the metrics
        dict of :func:`evaluate`'s ``summary["branches"]``.
    """
    torch_device = torch.device(device)
    scorer = MapScorer(protocol, branches, has_masks=_has_masks(loader), device=torch_device)
    for batch in tqdm(loader, desc=desc, disable=not show_progress(progress), unit="batch"):
        batch = batch_to_device(batch, torch_device)
        start = scorer.num_images
        maps = maps_of(batch, start)
        head = head_masks(loader.dataset, start, len(batch.labels), tuple(batch.images.shape[-2:]))
        scorer.add(batch, maps.full, logits=maps.logits, head=head)
    if not scorer.num_images:
        raise ValueError(f"{desc}: the data set is empty")
    return scorer.records(), scorer.summary()


def evaluate(
    run_dir: str | Path,
    split: str = "test",
    fusion: str | None = None,
    delta: float | None = None,
    tau: float = PAPERS.tau,
    wsoleval: bool | str = PAPERS.wsoleval,
    limit: int | None = None,
    progress: bool | None = None,
    *,
    erase_with: str = PAPERS.erase_with,
    block_radius: int | None = None,
    fusion_weights: str | None = None,
    upsample: str = PAPERS.upsample,
    device: str = "auto",
    batch_size: int | None = None,
    cache_maps: bool = True,
    ten_crop: bool = False,
    keep_maps: bool = False,
) -> EvalResult:
    """Evaluate a trained run on ``split``; see the module docstring for the protocol.

    ``tau``, ``wsoleval``, ``erase_with`` and ``upsample`` make the :class:`~wsol_utils.scoring.protocol.Protocol` the
    maps are scored under (defaults: :data:`~wsol_utils.scoring.protocol.PAPERS`'s); it validates them.

    Args:
        run_dir: a directory written by :func:`wsol_utils.engine.train`.
        split: ``"train"``, ``"val"`` or ``"test"``.
        fusion, block_radius, fusion_weights: test-time fusion (default: the run config's), docs/methods.md §1.5.
        delta: test-time erasing threshold in (0, 1) (default: training's); changes branch B's input only.
        tau: box threshold as a fraction of the map's max (docs/methods.md §2.1), in (0, 1].
        wsoleval: also compute MaxBoxAcc, MaxBoxAccV2 and (with masks) PxAP: ``True`` for every branch,
            ``"main"`` for the main map only (fused; branch A for CAM: a third of the cost), ``False`` for none.
        limit: evaluate only the first ``limit`` images.
        erase_with: ``"pred"`` (default: branch A's top-1, label-free) or ``"gt"`` (the official code's choice: the
            GT class, label-informed): the class whose branch-A map drives test-time erasing.
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
    protocol = Protocol(tau=tau, wsoleval=wsoleval, erase_with=erase_with, upsample=upsample)
    delta = None if delta is None else check_delta(delta, "evaluate")
    digest = checkpoint_sha256(run_dir)  # before loading: a checkpoint replaced meanwhile leaves a stale-marked cache
    config, model, run_dir = _load_for_eval(run_dir, device)
    warn_if_unfinished(run_dir, config.epochs)
    delta_used = float(model.delta if delta is None else delta)
    fusion = check_fusion(config.fusion if fusion is None else fusion, config.method, "evaluate")
    fusion_kwargs = _fusion_kwargs(fusion, config, block_radius, fusion_weights)
    loader = _eval_loader(config, split, limit, batch_size, model_device(model))
    crops = iter(_ten_crop_loader(config, split, limit, batch_size, model_device(model))) if ten_crop else None
    method = get_method(config.method)
    scorer = MapScorer(
        protocol, method.branches, has_masks=_has_masks(loader), device=model_device(model), keep_low=True
    )
    desc = f"eval {run_dir.name} [{split}]"
    for batch in tqdm(loader, desc=desc, disable=not show_progress(progress), unit="batch"):
        batch = batch_to_device(batch, model_device(model))
        maps = forward_maps(
            model,
            batch.images,
            batch.labels,
            delta=delta,
            fusion=fusion,
            fusion_kwargs=fusion_kwargs,
            erase_with=protocol.erase_with,
            upsample=protocol.upsample,
        )
        if crops is not None:
            outer = next(crops)
            if list(outer.image_ids) != list(batch.image_ids):
                raise RuntimeError("evaluate(ten_crop=True): the crop loader lost step with the test loader")
            labels = batch.labels if protocol.gt_erased else None
            images = outer.images.to(batch.images.device)
            maps.logits = ten_crop_scores(model, images, batch.images.shape[-1], labels, delta=delta)
        head = head_masks(loader.dataset, scorer.num_images, len(batch.labels), tuple(batch.images.shape[-2:]))
        scorer.add(batch, maps.full, logits=maps.logits, low=maps.low, head=head)
    branches = scorer.summary()
    summary = {
        "run": str(run_dir),
        "method": config.method,
        "split": split,
        "fusion": fusion,
        "delta": delta_used,
        "tau": protocol.tau,
        "erase_with": protocol.erase_with,
        "num_images": scorer.num_images,
        **branches[method.main_branch],
        "branches": branches,
    }
    bundle = None
    if cache_maps or keep_maps:
        bundle = _map_bundle(scorer, tuple(loader.dataset[0][0].shape[-2:]), digest)
    if cache_maps and bundle is not None:
        name = _cache_name(split, delta_used, fusion, fusion_kwargs, protocol.erase_with, limit)
        _save_map_cache(run_dir / MAP_CACHE_DIR / name, bundle)
    return EvalResult(scorer.records(), summary, digest, bundle if keep_maps else None)


def checkpoint_sha256(run_dir: str | Path) -> str | None:
    """sha256 of ``<run_dir>/checkpoint.pt`` (:func:`wsol_utils.base.atomic.file_sha256`), ``None`` when there is none:
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
    """:func:`wsol_utils.base.atomic.write_atomic` of a cache file; an ``OSError`` (read-only folder, full disk) is a
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
    ``device`` are not part of the key, ``erase_with`` always is (its default filled in: an entry computed under
    another default is not believed)."""
    keyed = {k: v for k, v in options.items() if k not in ("progress", "device")}
    keyed.setdefault("erase_with", PAPERS.erase_with)
    key = canonical_digest(keyed, 12, compact=False, default=str)  # the spaced JSON of the first entries
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


def model_device(model: torch.nn.Module) -> torch.device:
    """Device of the model's first parameter."""
    return next(model.parameters()).device


def _load_for_eval(run_dir: str | Path, device: str) -> tuple[Any, Any, Path]:
    run_dir = Path(run_dir)
    if not (run_dir / ckpt.CONFIG_FILE).is_file():
        raise FileNotFoundError(f"{run_dir / ckpt.CONFIG_FILE} not found: {run_dir} is not a run directory")
    config, model = load_run(run_dir, device=resolve_device(device))
    return config, model, run_dir


def _fusion_kwargs(fusion: str | None, config: Any, block_radius: int | None, weights: str | None) -> dict[str, Any]:
    """The fusion's options: the given ones, else the run config's."""
    return fusion_options(
        fusion,
        config.block_radius if block_radius is None else block_radius,
        config.fusion_weights if weights is None else weights,
    )


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


def ten_crop_scores(
    model: torch.nn.Module, images: Tensor, size: int, labels: Tensor | None = None, *, delta: float | None = None
) -> Tensor:
    """10-crop class scores: the softmax of the model's classification logits averaged over the 10 crops.

    Args:
        model: a :class:`~wsol_utils.nets.models.WSOLModel` (its
            :func:`~wsol_utils.scoring.pipeline.classification_logits`).
        images: ``(B, 3, R, R)`` normalized images at the outer size (:func:`ten_crop_outer_size`).
        size: crop side ``S <= R``.
        labels: ``(B,)`` class whose branch-A map drives branch B's erasing (``None``: A's top-1), as ``erase_with``.
        delta: test-time erasing threshold (``None``: the model's), as
            :func:`~wsol_utils.scoring.pipeline.forward_maps`.

    Returns:
        ``(B, C)`` mean probabilities (:func:`wsol_utils.scoring.metrics.ten_crop_logits` of the ``(B, 10, C)``
        logits) on the CPU, float32.
    """
    from torchvision.transforms.functional import ten_crop

    if images.shape[-1] < size or images.shape[-2] < size:
        raise ValueError(f"ten_crop_scores: crops of {size} px do not fit {tuple(images.shape[-2:])} images")
    with torch.no_grad():
        crops = ten_crop(images, [size, size])
        logits = [classification_logits(model(crop, labels, delta=delta)).float().cpu() for crop in crops]
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


def batch_to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (a :class:`wsol_utils.data.WSOLBatch`) with its images and labels on ``device``."""
    return batch._replace(images=batch.images.to(device), labels=batch.labels.to(device))


def show_progress(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``progress``, or when ``None`` whether stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else bool(progress)


# -- cached maps and the tau curve ------------------------------------------------------------------
def _cache_name(
    split: str, delta: float, fusion: str | None, fusion_kwargs: dict[str, Any], erase_with: str, limit: int | None
) -> str:
    options = "-".join(f"{k}{v}" for k, v in sorted(fusion_kwargs.items()))
    parts = [split, f"d{float(delta):.3f}", str(fusion), options, erase_with, f"n{limit}" if limit else "all"]
    return "-".join(p for p in parts if p) + ".npz"


def _map_bundle(scorer: MapScorer, image_size: tuple[int, int], digest: str | None) -> MapBundle:
    """The scorer's feature-resolution maps of every branch, with the GT boxes and the checkpoint digest."""
    size = (int(image_size[0]), int(image_size[1]))
    return MapBundle(scorer.low_maps(), size, list(scorer.gt_boxes), digest)


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
    taus: Iterable[float] = PAPERS.tau_grid,
    split: str = "test",
    fusion: str | None = None,
    delta: float | None = None,
    *,
    branches: Sequence[str] | None = None,
    erase_with: str = PAPERS.erase_with,
    limit: int | None = None,
    upsample: str = PAPERS.upsample,
    batch_size: int = 256,
    progress: bool | None = None,
) -> pd.DataFrame:
    """GT-known loc accuracy (%) vs the box threshold ``tau`` for each branch, from cached maps.

    ``taus`` defaults to the protocol's grid (:data:`wsol_utils.scoring.protocol.TAU_GRID`: 0.01 to 0.95 in steps of
    0.01). The maps are computed once by :func:`evaluate` (``wsoleval=False``) and cached in ``<run>/maps``; each
    ``tau`` then only re-boxes them (docs/methods.md §2.1, :func:`wsol_utils.scoring.scorer.localized_at`). A cache of
    another checkpoint (the run trained on since) or a damaged one is recomputed; when the cache cannot be written
    the maps just computed are used. Returns columns ``tau``, ``branch``, ``gt_known_loc_acc``.
    """
    protocol = PAPERS.replace(tau_grid=tuple(float(t) for t in taus), erase_with=erase_with, upsample=upsample)
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
    rows = []
    for branch in branches or list(bundle.maps):
        if branch not in bundle.maps:
            raise ValueError(f"tau_curve: branch {branch!r} not in this run's maps ({sorted(bundle.maps)})")
        hits = np.zeros(len(protocol.tau_grid))
        for start in range(0, len(bundle.gt_boxes), batch_size):
            full = upsample_maps(
                torch.from_numpy(bundle.maps[branch][start : start + batch_size]), bundle.image_size, upsample
            )
            hits += localized_at(full, bundle.gt_boxes[start : start + batch_size], protocol).sum(axis=1)
        rows += [
            {"tau": t, "branch": branch, "gt_known_loc_acc": 100.0 * h / len(bundle.gt_boxes)}
            for t, h in zip(protocol.tau_grid, hits)
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
