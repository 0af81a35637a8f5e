"""What the notebooks of the suite share: their parameters, shared training runs, example maps,
and sentences that read the numbers honestly.

Every notebook starts with the same papermill ``parameters`` cell and turns it into a :class:`Suite`::

    suite = Suite.from_parameters(DATASET, DATA_ROOT, EPOCHS, DEVICE, SMOKE, RUNS_DIR, FIGURES_DIR, PROGRESS)
    run = suite.train("acol", delta=0.6)      # trained once, then shared by every notebook (engine cache)

Smoke mode (``SMOKE=True``) trains on a tiny slice of the synthetic set for one epoch so the whole suite
runs in a few minutes, and writes its figures to ``outputs/smoke/figures`` so that it never touches the
committed ``figures/``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from wsol_utils.tables import atomic_write_text

#: Smoke mode: synthetic sizes and epochs (the whole suite in a few minutes on 2 CPU cores).
SMOKE_DATASET_KWARGS: dict[str, int] = {"num_train": 300, "num_val": 60, "num_test": 100}
SMOKE_EPOCHS = 1
SMOKE_ENV = "WSOL_SMOKE"
DEFAULT_FIGURES_DIR = "../figures"
SMOKE_FIGURES_DIR = "../outputs/smoke/figures"
#: :meth:`Suite.config` changes that are merged into the config's dict rather than replacing it.
MERGED_CHANGES = ("dataset_kwargs", "model_kwargs")


@dataclass(frozen=True)
class Suite:
    """The notebook parameters, validated. Paths are relative to the notebook folder unless absolute."""

    dataset: str = "synthetic"
    data_root: str | None = None
    epochs: int | None = None
    device: str = "auto"
    smoke: bool = False
    runs_dir: Path = Path("../runs")
    figures_dir: Path = Path(DEFAULT_FIGURES_DIR)
    progress: bool = False

    @classmethod
    def from_parameters(cls, dataset: str = "synthetic", data_root: str | None = None, epochs: int | None = None,
                        device: str = "auto", smoke: bool = False, runs_dir: str | Path = "../runs",
                        figures_dir: str | Path | None = None, progress: bool = False) -> Suite:
        """Build from a notebook's parameters; ``figures_dir=None`` picks ``../figures`` or, in smoke
        mode, ``../outputs/smoke/figures``. The folder is created.

        The environment variable ``WSOL_SMOKE=1`` also turns smoke mode on: the test suite sets it so
        that nbval, which runs notebooks with their default parameters, runs them small."""
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"EPOCHS={epochs!r}: give a positive integer, or None for the engine's default")
        if dataset != "synthetic" and data_root is None:
            raise ValueError(f"DATASET={dataset!r} needs DATA_ROOT (the data set folder); "
                             "or use DATASET='synthetic'")
        smoke = bool(smoke) or os.environ.get(SMOKE_ENV, "0") == "1"
        figures = Path(figures_dir if figures_dir is not None else
                       SMOKE_FIGURES_DIR if smoke else DEFAULT_FIGURES_DIR)
        figures.mkdir(parents=True, exist_ok=True)
        return cls(dataset=dataset, data_root=data_root, epochs=epochs, device=device, smoke=bool(smoke),
                   runs_dir=Path(runs_dir), figures_dir=figures, progress=bool(progress))

    def config(self, method: str, **changes: Any) -> Any:
        """The :class:`~wsol_utils.engine.RunConfig` of ``method`` for this suite.

        Synthetic: the engine's defaults; other data sets: the papers' setting
        (:func:`~wsol_utils.engine.paper_config`). Then ``EPOCHS`` when given, smoke sizes in smoke mode,
        and ``changes`` (e.g. ``delta=0.7``) last. The dict-valued changes ``dataset_kwargs`` and
        ``model_kwargs`` are *merged* into the config's (so ``dataset_kwargs={"head_size": 0.22}`` keeps the
        smoke sizes), every other change replaces the field.
        """
        from wsol_utils.engine import RunConfig, paper_config

        if self.dataset == "synthetic":
            config = RunConfig(method=method, device=self.device)
        else:
            config = paper_config(method, str(self.data_root), dataset=self.dataset, device=self.device)
        overrides: dict[str, Any] = {}
        if self.smoke:
            overrides["epochs"] = SMOKE_EPOCHS
            if self.dataset == "synthetic":
                overrides["dataset_kwargs"] = {**config.dataset_kwargs, **SMOKE_DATASET_KWARGS}
        if self.epochs is not None:
            overrides["epochs"] = self.epochs
        for name in MERGED_CHANGES:
            if name in changes:
                changes[name] = {**overrides.get(name, getattr(config, name)), **changes[name]}
        return config.replace(**{**overrides, **changes})

    def train(self, method: str, **changes: Any) -> Path:
        """Train (or reuse from the run cache) ``self.config(method, **changes)``; returns the run dir."""
        from wsol_utils.engine import train

        return train(self.config(method, **changes), runs_dir=self.runs_dir, progress=self.progress)

    def evaluate(self, run_dir: str | Path, **options: Any) -> Any:
        """:func:`wsol_utils.engine.evaluate` of ``run_dir`` with ``options`` (``fusion``, ``delta``, ...),
        cached in ``<run>/suite_eval/`` so that notebooks share evaluations as they share runs.

        The cache entry is keyed by ``options`` and is stale once the run's checkpoint is newer.
        Returns an :class:`~wsol_utils.engine.EvalResult`.
        """
        import pandas as pd

        from wsol_utils.engine import EvalResult, evaluate

        run_dir = Path(run_dir)
        options = {"split": "test", "wsoleval": "main", **options}  # MaxBoxAcc of the main map; True: all
        key = hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:12]
        summary_path = run_dir / "suite_eval" / f"{key}.json"
        records_path = summary_path.with_suffix(".csv")
        checkpoint = run_dir / "checkpoint.pt"
        fresh = (summary_path.is_file() and records_path.is_file() and
                 (not checkpoint.is_file() or summary_path.stat().st_mtime >= checkpoint.stat().st_mtime))
        if fresh:
            return EvalResult(pd.read_csv(records_path), json.loads(summary_path.read_text(encoding="utf-8")))
        result = evaluate(run_dir, progress=self.progress, device=self.device, **options)
        atomic_write_text(records_path, result.records.to_csv(index=False))
        atomic_write_text(summary_path, json.dumps({**result.summary, "options": options}, default=float))
        return result

    def figure_path(self, name: str) -> Path:
        """``figures_dir / name`` (e.g. ``"acol_maps.png"``)."""
        return self.figures_dir / name

    def publish(self, fig: Any, name: str) -> Path:
        """Save ``fig`` as ``figures_dir / name`` (atomic PNG), show it once in the notebook, close it."""
        import matplotlib.pyplot as plt

        from wsol_utils.viz import save_figure

        path = save_figure(fig, self.figure_path(name))
        try:
            from IPython.display import display
        except ImportError:  # outside IPython: the file is the output
            pass
        else:
            display(fig)
        plt.close(fig)
        return path


@dataclass
class ExampleMaps:
    """Maps of a few test images for figures: all ``(N, H, W)`` in [0, 1] at image resolution."""

    images: np.ndarray              # (N, H, W, 3) RGB in [0, 1]
    labels: np.ndarray              # (N,)
    predictions: np.ndarray         # (N,) top-1 of the run's classifier
    gt_boxes: list[np.ndarray]      # N x (N_i, 4)
    maps: dict[str, np.ndarray]     # "a", "b", "fused" -> (N, H, W); "b_input": what B's features were
                                    # multiplied by (ACoL: M_A < delta, HCLNet: 1 - M_A), two-branch only
    boxes: dict[str, np.ndarray]    # branch -> (N, 4) box at ``tau``
    ious: dict[str, np.ndarray]     # branch -> (N,) best IoU with a GT box


def example_maps(run_dir: str | Path, count: int = 6, *, split: str = "test", fusion: str | None = None,
                 delta: float | None = None, tau: float = 0.2, device: str = "cpu") -> ExampleMaps:
    """Branch A, branch B and fused maps of the GT class for the first ``count`` images of ``split``,
    upsampled to the image and boxed at ``tau`` exactly as :func:`wsol_utils.engine.evaluate` does."""
    from wsol_utils import metrics
    from wsol_utils.data import collate, denormalize
    from wsol_utils.engine import load_run
    from wsol_utils.engine.evaluate import chosen_maps, upsample_maps
    from wsol_utils.engine.train import build_dataset, classification_logits

    if count < 1:
        raise ValueError(f"example_maps: count={count!r} must be a positive number of images")
    config, model = load_run(run_dir, device=device)
    if delta is not None:
        model.delta = float(delta)
    dataset = build_dataset(config, split, train=False)
    batch = collate([dataset[i] for i in range(min(count, len(dataset)))])
    with torch.no_grad():
        output = model(batch.images.to(device), batch.labels.to(device))
        maps = chosen_maps(output, batch.labels.to(device), fusion or config.fusion,
                           {} if (fusion or config.fusion) != "l1" else
                           {"block_radius": config.block_radius, "weights": config.fusion_weights})
        size = tuple(batch.images.shape[-2:])
        full = {name: upsample_maps(value, size).cpu() for name, value in maps.items()}
        if output.features is not None and model.method != "cam":
            chosen = output.maps_a[torch.arange(len(batch.labels), device=device), batch.labels.to(device)]
            weights = branch_b_weights(model.method, output.features, chosen, model.delta)
            full_weights = torch.nn.functional.interpolate(weights[:, None], size=size, mode="nearest")[:, 0]
            full_weights = full_weights.cpu()
        else:
            full_weights = None
        predictions = classification_logits(output).argmax(dim=1).cpu().numpy()
    gt = [b.numpy().astype(np.float64).reshape(-1, 4) for b in batch.boxes]
    boxes = {name: metrics.maps_to_boxes(value, tau) for name, value in full.items()}
    if full_weights is not None:
        full["b_input"] = full_weights
    return ExampleMaps(
        images=denormalize(batch.images).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
        labels=batch.labels.numpy(), predictions=predictions, gt_boxes=gt,
        maps={name: value.numpy() for name, value in full.items()}, boxes=boxes,
        ious={name: metrics.best_iou(value, gt) for name, value in boxes.items()})


def branch_b_weights(method: str, features: Tensor, chosen_maps: Tensor, delta: float) -> Tensor:
    """What branch B's features are multiplied by, per cell: ``(B, h, w)`` in [0, 1].

    ``method="acol"``: the erasing mask ``M_A < delta`` (SPEC §1.3); ``"hclnet"``: ``1 - M_A`` (§1.4).
    ``features`` ``(B, K, h, w)`` (only its size is used), ``chosen_maps`` ``(B, h', w')`` raw maps of branch A.
    """
    from wsol_utils.erasing import erasing_mask, normalized_attention

    if method == "acol":
        return erasing_mask(features, chosen_maps, delta)[:, 0]
    if method == "hclnet":
        return 1.0 - normalized_attention(features, chosen_maps)[:, 0].detach()
    raise ValueError(f"branch_b_weights: method={method!r} has no branch B; use 'acol' or 'hclnet'")


# -- the CAM / 1x1-conv equivalence (ACoL §3.1) --------------------------------------------------

#: Float tolerance of the equivalence: |a - b| <= ATOL + RTOL * max|b| (float32 sums over K channels).
EQUIVALENCE_RTOL = 1e-5
EQUIVALENCE_ATOL = 1e-5


@dataclass(frozen=True)
class Equivalence:
    """Largest absolute differences between the CAM form and the 1x1-conv form."""

    max_logit_diff: float
    max_map_diff: float
    within_tolerance: bool

    def check_line(self, what: str) -> str:
        """A fixed-format line whose text depends only on ``within_tolerance`` (for nbval)."""
        return f"{what}: max |Δlogits|, max |Δmaps| at float tolerance: {self.within_tolerance}"


def equivalence(logits_cam: Tensor, maps_cam: Tensor, logits_conv: Tensor, maps_conv: Tensor) -> Equivalence:
    """Compare logits ``(B, C)`` and maps ``(B, C, h, w)`` of the two forms (SPEC §1.1)."""
    if logits_cam.shape != logits_conv.shape or maps_cam.shape != maps_conv.shape:
        raise ValueError(f"equivalence: shapes differ: logits {tuple(logits_cam.shape)} vs "
                         f"{tuple(logits_conv.shape)}, maps {tuple(maps_cam.shape)} vs {tuple(maps_conv.shape)}")
    logit_diff = float((logits_cam - logits_conv).abs().max())
    map_diff = float((maps_cam - maps_conv).abs().max())
    ok = (logit_diff <= EQUIVALENCE_ATOL + EQUIVALENCE_RTOL * float(logits_conv.abs().max())
          and map_diff <= EQUIVALENCE_ATOL + EQUIVALENCE_RTOL * float(maps_conv.abs().max()))
    return Equivalence(logit_diff, map_diff, ok)


def model_equivalence(model: Any, images: Tensor) -> Equivalence:
    """A ``cam`` :class:`~wsol_utils.models.WSOLModel` (GAP + FC) against its
    :func:`~wsol_utils.models.cam_to_conv1x1` copy on ``images`` ``(B, 3, H, W)``, both in eval mode."""
    from wsol_utils.models import cam_to_conv1x1

    converted = cam_to_conv1x1(model).eval()
    model.eval()
    with torch.no_grad():
        cam, conv = model(images), converted(images)
    return equivalence(cam.logits_a, cam.maps_a, conv.logits_a, conv.maps_a)


@dataclass
class MapPanels:
    """Images and same-size maps for :func:`wsol_utils.viz.plot_map_grid`."""

    images: np.ndarray                  # (N, H, W, 3) RGB in [0, 1]
    maps: dict[str, np.ndarray]         # column title -> (N, H, W) in [0, 1]
    gt_boxes: list[np.ndarray] | None   # N x (N_i, 4), or None
    labels: list[str]                   # one caption per image
    check: Equivalence


def _full_size(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """``(N, h, w)`` raw maps -> ``(N, H, W)`` normalized to [0, 1] at image size (bicubic, as evaluation)."""
    from wsol_utils.engine.evaluate import upsample_maps
    from wsol_utils.maps import normalize_minmax

    return upsample_maps(normalize_minmax(maps.float()), size)


def _form_panels(maps_cam: Tensor, maps_conv: Tensor, size: tuple[int, int]) -> dict[str, np.ndarray]:
    cam, conv = _full_size(maps_cam, size), _full_size(maps_conv, size)
    return {"CAM: sum_k W_ck S_k": cam.numpy(), "1x1 conv map": conv.numpy(),
            "|difference|": (cam - conv).abs().numpy()}


def equivalence_panels(model: Any, batch: Any, count: int = 4) -> MapPanels:
    """The GT class's map of a ``cam`` model in both forms (ACoL Figure 2) for the first ``count`` images
    of a :class:`~wsol_utils.data.WSOLBatch`, normalized and upsampled to the image."""
    from wsol_utils.data import denormalize
    from wsol_utils.models import cam_to_conv1x1

    images, labels = batch.images[:count], batch.labels[:count]
    converted = cam_to_conv1x1(model).eval()
    model.eval()
    with torch.no_grad():
        cam, conv = model(images), converted(images)
    index = torch.arange(len(labels))
    size = tuple(images.shape[-2:])
    return MapPanels(images=denormalize(images).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
                     maps=_form_panels(cam.maps_a[index, labels], conv.maps_a[index, labels], size),
                     gt_boxes=[b.numpy().reshape(-1, 4) for b in batch.boxes[:count]],
                     labels=[f"class {int(c)}" for c in labels],
                     check=equivalence(cam.logits_a, cam.maps_a, conv.logits_a, conv.maps_a))


def imagenet_class_names() -> list[str] | None:
    """The 1000 ImageNet class names from torchvision's weight metadata (offline), or None."""
    try:
        from torchvision.models import VGG16_Weights
    except Exception:  # torchvision missing or unusable (CUDA wheel on a CPU torch): names are optional
        return None
    return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def photo_cams(names: list[str], size: int = 224) -> MapPanels | None:
    """CAMs of the top-1 ImageNet class of scikit-image sample photos (``skimage.data.<name>()``) with
    EfficientNet-Lite0, in both forms; ``None`` when the optional ``pretrained`` weights are missing."""
    from skimage import data as samples

    from wsol_utils import pretrained

    try:
        model = pretrained.load_efficientnet_lite0()
    except FileNotFoundError:
        return None
    photos = [getattr(samples, name)() for name in names]
    photos = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p[..., :3] for p in photos]
    images = torch.cat([pretrained.preprocess_photo(p, size) for p in photos])
    logits_cam, maps_cam, logits_conv, maps_conv = pretrained.cam_and_conv_forms(model, images)
    top1 = logits_cam.argmax(dim=1)
    index = torch.arange(len(names))
    class_names = imagenet_class_names()
    labels = [f"{name}: {class_names[c] if class_names else c}" for name, c in zip(names, top1.tolist())]
    return MapPanels(images=((images * 128 + 127) / 255).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
                     maps=_form_panels(maps_cam[index, top1], maps_conv[index, top1], (size, size)),
                     gt_boxes=None, labels=labels,
                     check=equivalence(logits_cam, maps_cam, logits_conv, maps_conv))


# -- tables the notebooks read -------------------------------------------------------------------


def branch_comparison(results: dict[str, Any]) -> Any:
    """One row per named :class:`~wsol_utils.engine.EvalResult`: classification and localization errors
    of the fused map, GT-known loc accuracy of branch A and B, MaxBoxAccV2, and the mean share (%) of
    branch B's map on the object mask (``NaN`` when the data set has no masks)."""
    import pandas as pd

    rows = []
    for name, result in results.items():
        summary, branches = result.summary, result.summary["branches"]
        mass = result.records.get("b_mass_object")
        rows.append({"variant": name, "cls err top-1": summary["cls_err_top1"],
                     "cls err top-5": summary["cls_err_top5"], "loc err top-1": summary["loc_err_top1"],
                     "GT-known loc err": summary["gt_known_loc_err"],
                     "GT-known loc acc A": branches["a"]["gt_known_loc_acc"],
                     "GT-known loc acc B": branches["b"]["gt_known_loc_acc"],
                     "MaxBoxAccV2": summary.get("maxboxacc_v2", math.nan),
                     "B mass on object (%)": 100 * float(mass.mean()) if mass is not None else math.nan})
    return pd.DataFrame(rows)


def best_row(table: Any, column: str, lower_is_better: bool = True) -> Any:
    """The row (``pandas.Series``) of ``table`` with the lowest (or highest) ``column``; first on ties."""
    if column not in table.columns:
        raise ValueError(f"best_row: no column {column!r}; columns are {list(table.columns)}")
    return table.loc[table[column].idxmin() if lower_is_better else table[column].idxmax()]


def part_mass(records: Any, branch: str = "b") -> dict[str, float]:
    """Mean share (%) of ``branch``'s map mass on the head, the rest of the object (body) and the background.

    ``records``: :attr:`~wsol_utils.engine.EvalResult.records` with the per-image columns
    ``{branch}_mass_head``, ``{branch}_mass_object`` (head + body) and ``{branch}_mass_background``, each
    in [0, 1] (data sets with part masks, e.g. the synthetic set). Returns ``{"head", "body",
    "background"}`` in percent; body = object - head. Missing columns give ``NaN``.
    """
    def mean(column: str) -> float:
        name = f"{branch}_{column}"
        return 100 * float(records[name].mean()) if name in records.columns else math.nan

    head, whole = mean("mass_head"), mean("mass_object")
    return {"head": head, "body": whole - head, "background": mean("mass_background")}


def cells_seeing_part(receptive_field: int, stride: int, part_size: float) -> float:
    """How many map cells per axis see (part of) a part of ``part_size`` px: ``(R + p) / s`` (SPEC §3).

    A cell at stride ``s`` with receptive field ``R`` px sees the part when their windows overlap, i.e. when
    the cell's centre lies within ``(R + p) / 2`` px of the part's centre on each axis."""
    if receptive_field < 1 or stride < 1 or part_size <= 0:
        raise ValueError(f"cells_seeing_part: need receptive_field >= 1, stride >= 1 and part_size > 0; "
                         f"got {receptive_field!r}, {stride!r}, {part_size!r}")
    return (receptive_field + part_size) / stride


def head_geometry(config: Any) -> dict[str, float]:
    """Receptive field and stride of a synthetic-data :class:`~wsol_utils.engine.RunConfig`'s model, the head
    diameter in px (``head_size`` x ``image_size``) and :func:`cells_seeing_part` of the head (SPEC §3)."""
    from wsol_utils.data.synthetic import SyntheticConfig
    from wsol_utils.models import create_model, feature_stride, receptive_field

    if config.dataset != "synthetic":
        raise ValueError(f"head_geometry: config.dataset={config.dataset!r}; the head size is a synthetic-set knob")
    model = create_model(config.method, num_classes=2, backbone=config.backbone, **config.model_kwargs)
    field, stride = receptive_field(model), feature_stride(model)
    head = float(config.dataset_kwargs.get("head_size", SyntheticConfig.head_size)) * config.image_size
    return {"receptive field (px)": field, "stride (px)": stride, "head (px)": head,
            "map cells (per axis)": config.image_size // stride,
            "cells seeing the head (per axis)": cells_seeing_part(field, stride, head)}


def erasing_gain_row(cam: Any, acol: Any, cam_curve: Any, acol_curve: Any) -> dict[str, float]:
    """One cell of an erasing experiment: CAM vs ACoL on the same data.

    ``cam`` / ``acol``: :class:`~wsol_utils.engine.EvalResult` (ACoL's summary is its fused map);
    ``cam_curve`` / ``acol_curve``: :func:`~wsol_utils.engine.tau_curve` frames of one branch each (columns
    ``tau``, ``gt_known_loc_acc``). Returns GT-known loc accuracy (%) at tau 0.2 (the summaries) and at each
    curve's best tau, ACoL - CAM at both, the 95% noise level of the difference at tau 0.2
    (:func:`difference_noise`), and the mass shares (%) of CAM's map and of ACoL's branch B
    (:func:`part_mass`)."""
    cam_acc, acol_acc = float(cam.summary["gt_known_loc_acc"]), float(acol.summary["gt_known_loc_acc"])
    cam_best, acol_best = (curve.loc[curve["gt_known_loc_acc"].idxmax()] for curve in (cam_curve, acol_curve))
    n = int(acol.summary["num_images"])
    b_mass, cam_mass = part_mass(acol.records, "b"), part_mass(cam.records, "a")
    return {"CAM @0.2": cam_acc, "ACoL @0.2": acol_acc, "ACoL - CAM @0.2": acol_acc - cam_acc,
            "noise ±": difference_noise(acol_acc, cam_acc, n),
            "CAM best": float(cam_best["gt_known_loc_acc"]), "CAM best tau": float(cam_best["tau"]),
            "ACoL best": float(acol_best["gt_known_loc_acc"]), "ACoL best tau": float(acol_best["tau"]),
            "ACoL - CAM best": float(acol_best["gt_known_loc_acc"] - cam_best["gt_known_loc_acc"]),
            "CAM mass head (%)": cam_mass["head"],
            **{f"B mass {region} (%)": value for region, value in b_mass.items()}}


PAPER_TAU = 0.2


def best_tau_table(curves: Any, hue: str = "method", value: str = "gt_known_loc_acc") -> Any:
    """Per ``hue`` group of a tau curve (columns ``tau``, ``hue``, ``value``): the best ``tau``, the
    accuracy there, and the accuracy at the papers' ``tau = 0.2`` (the nearest tau on the curve)."""
    import pandas as pd

    rows = []
    for name, group in curves.groupby(hue, sort=False):
        best = group.loc[group[value].idxmax()]
        at_ref = group.loc[(group["tau"] - PAPER_TAU).abs().idxmin()]
        rows.append({hue: name, "best_tau": float(best["tau"]), "best_acc": float(best[value]),
                     "acc_at_0_2": float(at_ref[value])})
    return pd.DataFrame(rows)


# -- honest readings -----------------------------------------------------------------------------


def difference_noise(p_a: float, p_b: float, n: int) -> float:
    """Half-width (percentage points) of a 95% interval for the difference of two accuracies ``p_a``,
    ``p_b`` (percent), each measured on ``n`` images.

    Agresti–Caffo interval: one success and one failure are added to each sample
    (``p~ = (x + 1) / (n + 2)``), which keeps the interval honest at 0% and 100%, where the plain
    binomial approximation claims zero noise.
    """
    if n < 1:
        raise ValueError(f"difference_noise: n={n!r} must be a positive number of images")
    adjusted = [(p / 100 * n + 1) / (n + 2) for p in (p_a, p_b)]
    variance = sum(p * (1 - p) for p in adjusted) / (n + 2)
    return 196.0 * math.sqrt(variance)


def compare(name_a: str, value_a: float, name_b: str, value_b: float, *, metric: str, n: int,
            higher_is_better: bool = True) -> str:
    """One sentence comparing two percentages measured on ``n`` images, never claiming an effect that
    lies within sampling noise. E.g. ``"ACoL's GT-known loc accuracy is 4.1 points above CAM's (52.3% vs
    48.2%, 1000 test images; noise level ±4.4 points): within noise."``"""
    if any(math.isnan(v) for v in (value_a, value_b)):
        return f"{metric}: not available for {name_a if math.isnan(value_a) else name_b}."
    diff = value_a - value_b
    noise = difference_noise(value_a, value_b, n)
    where = "above" if diff > 0 else "below"
    head = (f"{name_a}'s {metric} equals {name_b}'s" if diff == 0 else
            f"{name_a}'s {metric} is {abs(diff):.1f} points {where} {name_b}'s")
    detail = f"({value_a:.1f}% vs {value_b:.1f}%, {n} images; 95% noise level ±{noise:.1f} points)"
    if abs(diff) <= noise:
        verdict = "within sampling noise, so no difference is shown"
    else:
        better = (diff > 0) == higher_is_better
        verdict = f"{name_a} is {'better' if better else 'worse'} beyond sampling noise"
    return f"{head} {detail}: {verdict}."
