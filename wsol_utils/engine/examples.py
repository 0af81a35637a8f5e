"""Maps of a few images of a trained run for the notebooks' figures (:func:`example_maps`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wsol_utils.data import collate, denormalize
from wsol_utils.engine.run import load_run
from wsol_utils.nets.erasing import check_delta
from wsol_utils.scoring.pipeline import forward_maps, fusion_options
from wsol_utils.scoring.protocol import PAPERS, Protocol
from wsol_utils.scoring.scorer import gt_boxes_numpy, score_boxes


@dataclass
class ExampleMaps:
    """Maps of a few images for figures: all ``(N, H, W)`` in [0, 1] at image resolution."""

    images: np.ndarray  # (N, H, W, 3) RGB in [0, 1]
    labels: np.ndarray  # (N,)
    predictions: np.ndarray  # (N,) top-1 of the run's classifier
    gt_boxes: list[np.ndarray]  # N x (N_i, 4)
    maps: dict[str, np.ndarray]  # "a", "b", "fused" -> (N, H, W); "b_input": what B's features were
    # multiplied by (ACoL: M_A < delta, HCLNet: 1 - M_A), two-branch only
    boxes: dict[str, np.ndarray]  # branch -> (N, 4) box at ``tau``
    ious: dict[str, np.ndarray]  # branch -> (N,) best IoU with a GT box


def example_maps(
    run_dir: str | Path,
    count: int = 6,
    *,
    split: str = "test",
    fusion: str | None = None,
    delta: float | None = None,
    protocol: Protocol = PAPERS,
    device: str = "cpu",
) -> ExampleMaps:
    """Branch A, branch B and fused maps of the GT class for the first ``count`` images of ``split``,
    made and boxed by :mod:`wsol_utils.scoring.pipeline` (so exactly as :func:`wsol_utils.engine.evaluate` does) under
    ``protocol`` (its ``tau``, ``erase_with`` and ``upsample``; label-free by default)."""
    if count < 1:
        raise ValueError(f"example_maps: count={count!r} must be a positive number of images")
    delta = None if delta is None else check_delta(delta, "example_maps")
    config, model = load_run(run_dir, device=device)
    dataset = config.dataset_for(split)
    batch = collate([dataset[i] for i in range(min(count, len(dataset)))])
    fusion = config.fusion if fusion is None else fusion
    out = forward_maps(
        model,
        batch.images.to(device),
        batch.labels.to(device),
        fusion=fusion,
        fusion_kwargs=fusion_options(fusion, config.block_radius, config.fusion_weights),
        delta=delta,
        erase_with=protocol.erase_with,
        upsample=protocol.upsample,
        with_b_input=True,
    )
    full = {name: value.cpu() for name, value in out.full.items()}
    gt = gt_boxes_numpy(batch.boxes)
    scores = score_boxes(full, gt, protocol.tau)
    maps = {name: value.numpy() for name, value in full.items()}
    if out.b_input is not None:
        maps["b_input"] = out.b_input.cpu().numpy()
    return ExampleMaps(
        images=denormalize(batch.images).permute(0, 2, 3, 1).clamp(0, 1).numpy(),
        labels=batch.labels.numpy(),
        predictions=out.logits.argmax(dim=1).cpu().numpy(),
        gt_boxes=gt,
        maps=maps,
        boxes=scores.boxes,
        ious=scores.ious,
    )
