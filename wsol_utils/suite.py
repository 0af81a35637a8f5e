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

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Smoke mode: synthetic sizes and epochs (the whole suite in a few minutes on 2 CPU cores).
SMOKE_DATASET_KWARGS: dict[str, int] = {"num_train": 300, "num_val": 60, "num_test": 100}
SMOKE_EPOCHS = 1
DEFAULT_FIGURES_DIR = "../figures"
SMOKE_FIGURES_DIR = "../outputs/smoke/figures"


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
        mode, ``../outputs/smoke/figures``. The folder is created."""
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"EPOCHS={epochs!r}: give a positive integer, or None for the engine's default")
        if dataset != "synthetic" and data_root is None:
            raise ValueError(f"DATASET={dataset!r} needs DATA_ROOT (the data set folder); "
                             "or use DATASET='synthetic'")
        figures = Path(figures_dir if figures_dir is not None else
                       SMOKE_FIGURES_DIR if smoke else DEFAULT_FIGURES_DIR)
        figures.mkdir(parents=True, exist_ok=True)
        return cls(dataset=dataset, data_root=data_root, epochs=epochs, device=device, smoke=bool(smoke),
                   runs_dir=Path(runs_dir), figures_dir=figures, progress=bool(progress))

    def config(self, method: str, **changes: Any) -> Any:
        """The :class:`~wsol_utils.engine.RunConfig` of ``method`` for this suite.

        Synthetic: the engine's defaults; other data sets: the papers' setting
        (:func:`~wsol_utils.engine.paper_config`). Then ``EPOCHS`` when given, smoke sizes in smoke mode,
        and ``changes`` (e.g. ``delta=0.7``) last.
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
        return config.replace(**{**overrides, **changes})

    def train(self, method: str, **changes: Any) -> Path:
        """Train (or reuse from the run cache) ``self.config(method, **changes)``; returns the run dir."""
        from wsol_utils.engine import train

        return train(self.config(method, **changes), runs_dir=self.runs_dir, progress=self.progress)

    def figure_path(self, name: str) -> Path:
        """``figures_dir / name`` (e.g. ``"acol_maps.png"``)."""
        return self.figures_dir / name


@dataclass
class ExampleMaps:
    """Maps of a few test images for figures: all ``(N, H, W)`` in [0, 1] at image resolution."""

    images: np.ndarray              # (N, H, W, 3) RGB in [0, 1]
    labels: np.ndarray              # (N,)
    predictions: np.ndarray         # (N,) top-1 of the run's classifier
    gt_boxes: list[np.ndarray]      # N x (N_i, 4)
    maps: dict[str, np.ndarray]     # branch ("a", "b", "fused") -> (N, H, W)
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
        predictions = classification_logits(output).argmax(dim=1).cpu().numpy()
    gt = [b.numpy().astype(np.float64).reshape(-1, 4) for b in batch.boxes]
    boxes = {name: metrics.maps_to_boxes(value, tau) for name, value in full.items()}
    return ExampleMaps(
        images=denormalize(batch.images).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
        labels=batch.labels.numpy(), predictions=predictions, gt_boxes=gt,
        maps={name: value.numpy() for name, value in full.items()}, boxes=boxes,
        ious={name: metrics.best_iou(value, gt) for name, value in boxes.items()})


# -- honest readings -----------------------------------------------------------------------------


def difference_noise(p_a: float, p_b: float, n: int) -> float:
    """Half-width (percentage points) of a 95% interval for the difference of two accuracies ``p_a``,
    ``p_b`` (percent) each measured on ``n`` images (independent binomial approximation)."""
    if n < 1:
        raise ValueError(f"difference_noise: n={n!r} must be a positive number of images")
    variance = sum(p / 100 * (1 - p / 100) for p in (p_a, p_b)) / n
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
