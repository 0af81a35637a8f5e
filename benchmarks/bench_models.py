"""Forward + backward time of the small models (64 images at 64 px) and their receptive fields.

The variants are interleaved round by round, so that load from other processes hits all of them alike; each
measurement is one forward of the model plus the backward of ``CE(A) + CE(B)`` on a fixed batch. Reports the
median and the minimum over rounds, wall time and process CPU time.

    python benchmarks/bench_models.py --threads 2 --rounds 15

Writes ``benchmarks/results/models_speed.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.nn.functional import cross_entropy

from wsol_utils.nets.models import WSOLModel, create_model, receptive_field
from wsol_utils.studies.tables import write_table

RESULTS = Path(__file__).resolve().parent / "results"
#: (label, method, create_model keyword arguments)
VARIANTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("default cam", "cam", {}),
    ("default acol", "acol", {}),
    ("default hclnet", "hclnet", {}),
    ("acol, no channels_last", "acol", {"channels_last": False}),
    ("acol, width 16 / head 64", "acol", {"width": 16, "head_width": 64}),
    ("acol, depth 6", "acol", {"depth": 6}),
    ("acol, 3x3 head convs", "acol", {"head_kernel": 3}),
)


def step(model: WSOLModel, images: torch.Tensor, labels: torch.Tensor) -> None:
    """One forward and backward pass of the training loss ``CE(A) + CE(B)``."""
    out = model(images, labels)
    loss = cross_entropy(out.logits_a, labels)
    if out.logits_b is not None:
        loss = loss + cross_entropy(out.logits_b, labels)
    model.zero_grad(set_to_none=True)
    loss.backward()


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    labels = torch.randint(0, 10, (args.batch_size,))
    models = {label: create_model(method, num_classes=10, **kwargs) for label, method, kwargs in VARIANTS}
    wall: dict[str, list[float]] = {label: [] for label in models}
    cpu: dict[str, list[float]] = {label: [] for label in models}
    for round_index in range(args.rounds + 2):  # two warm-up rounds
        for label, model in models.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            step(model, images, labels)
            if round_index >= 2:
                wall[label].append(time.perf_counter() - start_wall)
                cpu[label].append(time.process_time() - start_cpu)
    table = pd.DataFrame(
        {
            "variant": label,
            "receptive field (px)": receptive_field(model),
            "wall median (ms)": 1000 * statistics.median(wall[label]),
            "wall min (ms)": 1000 * min(wall[label]),
            "CPU median (ms)": 1000 * statistics.median(cpu[label]),
        }
        for label, model in models.items()
    )
    paths = write_table(
        table,
        RESULTS,
        "models_speed",
        title="Small models: forward + backward time",
        note=f"{args.batch_size} images at {args.image_size} px, {args.threads} threads, {args.rounds} rounds, "
        f"torch {torch.__version__}. Measured under whatever load the machine had.",
        digits=1,
    )
    print(table.to_string(index=False))
    print(f"wrote {paths}")
    return table


if __name__ == "__main__":
    main()
