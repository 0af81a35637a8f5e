"""Training throughput (images/s) of CAM, ACoL and HCLNet with the same backbone, in one process.

The methods are interleaved (cam, acol, hclnet, cam, acol, ...) so that load from other processes hits all
of them alike; each measurement is ``--steps`` optimizer steps (forward + backward + SGD step of the engine's
own :class:`~wsol_utils.engine.train.Trainer` pieces) on one fixed batch after ``--warmup`` steps.
ACoL/HCLNet add only a second head, so their ratio to CAM should be close to 1.

    python benchmarks/bench_train_throughput.py --backbone small --image-size 64 --batch-size 64

Writes ``benchmarks/results/train_throughput.csv`` and ``.md`` (median over rounds, ratio to CAM).

``--micro-batch`` compares, on the CPU, a whole batch against the engine's micro-batches
(``micro_batches``: the same gradient) for every receptive field of the regime map and writes
``benchmarks/results/train_micro_batch.{csv,md}``:

    OMP_NUM_THREADS=1 python benchmarks/bench_train_throughput.py --micro-batch

``--malloc`` compares glibc's default allocator with :func:`wsol_utils.allocator.reuse_freed_memory` on real
engine runs (one epoch per receptive field and method, fresh processes) and writes
``benchmarks/results/train_malloc.{csv,md}``:

    OMP_NUM_THREADS=1 python benchmarks/bench_train_throughput.py --malloc

``--default-budget`` instead trains CAM, ACoL and HCLNet with the engine's synthetic defaults (5,000 train
images, 64 px), evaluates them on the test split (GT-known loc at tau 0.2 and the best tau, MaxBoxAccV2 for
CAM, ACoL max, HCLNet add and l1) and writes ``benchmarks/results/default_budget.{csv,md}`` with the wall time
of each run. Runs are cached in ``--runs-dir`` like any engine run.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from wsol_utils.allocator import ENV as ALLOCATOR_ENV
from wsol_utils.allocator import reuse_freed_memory
from wsol_utils.analysis import RECEPTIVE_FIELDS
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.distributed import DistContext, resolve_device
from wsol_utils.engine.optim import build_optimizer
from wsol_utils.engine.train import backward_batch, build_model, micro_batches, train
from wsol_utils.tables import to_markdown, write_table

METHODS = ("cam", "acol", "hclnet")
RESULTS = Path(__file__).resolve().parent / "results"


def measure(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    chunks: list[slice] | None = None,
) -> float:
    """Images per second over ``steps`` training steps on one batch (the engine's :func:`backward_batch`), the
    whole batch at once (``chunks=None``) or in the given micro-batches."""
    model.train()
    chunks = chunks or [slice(0, labels.shape[0])]
    if images.is_cuda:
        torch.cuda.synchronize()
    tic = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad(set_to_none=True)
        backward_batch(model, images, labels, chunks)
        optimizer.step()
    if images.is_cuda:
        torch.cuda.synchronize()
    return steps * images.shape[0] / (time.perf_counter() - tic)


def field_setups(
    args: argparse.Namespace,
) -> Iterator[tuple[int, str, torch.nn.Module, torch.optim.Optimizer, list[slice]]]:
    """For every receptive field of the regime map and every method: ``(field, method, model, optimizer, the
    engine's CPU micro-batches of :func:`cpu_batch`)``."""
    images = cpu_batch(args)[0]
    cpu = DistContext(device=torch.device("cpu"))
    for field, model_kwargs in RECEPTIVE_FIELDS.items():
        for method in METHODS:
            config = RunConfig(method=method, image_size=args.image_size, model_kwargs=model_kwargs)
            model = build_model(config, args.num_classes)
            yield field, method, model, build_optimizer(model, config), micro_batches(model, cpu, images)


def cpu_batch(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed random batch ``(images (B, 3, S, S), labels (B,))`` every CPU measurement trains on."""
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size)
    return images, torch.randint(0, args.num_classes, (args.batch_size,))


def micro_batch_table(args: argparse.Namespace) -> pd.DataFrame:
    """The whole batch against the engine's CPU micro-batches (:func:`micro_batches`), per receptive field of the
    regime map and method, interleaved in one process; one row per (field, method): the chunk size, the median
    images/s of each way and their ratio."""
    images, labels = cpu_batch(args)
    rows = []
    for field, method, model, optimizer, micro in field_setups(args):
        ways = {"whole": [slice(0, args.batch_size)], "micro": micro}
        rates: dict[str, list[float]] = {way: [] for way in ways}
        for chunks in ways.values():
            measure(model, optimizer, images, labels, args.warmup, chunks)
        for _ in range(args.rounds):
            for way, chunks in ways.items():
                rates[way].append(measure(model, optimizer, images, labels, args.steps, chunks))
        whole, fast = statistics.median(rates["whole"]), statistics.median(rates["micro"])
        rows.append(
            {
                "receptive_field_px": field,
                "method": method,
                "chunk_images": micro[0].stop,
                "whole_batch_images_per_s": whole,
                "micro_batch_images_per_s": fast,
                "speed_up": fast / whole,
            }
        )
    return pd.DataFrame(rows)


def epoch_rates(args: argparse.Namespace) -> dict[str, float]:
    """Images/s of one engine training run of one epoch (:func:`~wsol_utils.engine.train`: data loading,
    micro-batches, optimizer, checkpoint) on ``--malloc-images`` synthetic training images, per
    ``"<field>/<method>"``, measured in this process (``--rates-json``: what :func:`malloc_table` runs in a
    subprocess). The data set is generated before the clock starts."""
    import tempfile

    if args.reuse_freed_memory:
        reuse_freed_memory()
    rates = {}
    with tempfile.TemporaryDirectory() as runs_dir:
        for field, model_kwargs in RECEPTIVE_FIELDS.items():
            for method in METHODS:
                config = RunConfig(
                    method=method,
                    model_kwargs=model_kwargs,
                    dataset_kwargs={"num_train": args.malloc_images},
                    epochs=1,
                    val_split=None,
                    device="cpu",
                )
                config.dataset_for("train")
                tic = time.perf_counter()
                train(config, runs_dir=runs_dir, progress=False)
                rates[f"{field}/{method}"] = args.malloc_images / (time.perf_counter() - tic)
    return rates


def malloc_table(args: argparse.Namespace) -> pd.DataFrame:
    """glibc's default allocator against :func:`wsol_utils.allocator.reuse_freed_memory` (a process-wide setting,
    so each measurement is a fresh subprocess, the two settings alternating for ``--rounds`` rounds); one row per
    (field, method) with the median images/s of each and their ratio."""
    import json
    import subprocess
    import sys

    runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for reuse in runs:
            command = [sys.executable, __file__, "--rates-json", "--malloc-images", str(args.malloc_images)]
            command += ["--reuse-freed-memory"] if reuse else []
            env = {k: v for k, v in os.environ.items() if k not in ALLOCATOR_ENV}  # the default: glibc's own
            output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
            runs[reuse].append(json.loads(output.strip().splitlines()[-1]))
    rows = []
    for key in runs[False][0]:
        field, method = key.split("/")
        default = statistics.median(r[key] for r in runs[False])
        reused = statistics.median(r[key] for r in runs[True])
        rows.append(
            {
                "receptive_field_px": int(field),
                "method": method,
                "default_images_per_s": default,
                "reuse_freed_memory_images_per_s": reused,
                "speed_up": reused / default,
            }
        )
    return pd.DataFrame(rows)


def default_budget(runs_dir: str, out: str, threads: int | None) -> pd.DataFrame:
    """Train + evaluate the three methods at the defaults; one row per (method, fusion)."""
    from wsol_utils.engine import RunConfig, evaluate, read_history, tau_curve, train

    rows = []
    taus = [float(round(t, 2)) for t in np.arange(0.05, 1.0, 0.05)]
    for method, fusions in (("cam", [None]), ("acol", ["max"]), ("hclnet", ["add", "l1"])):
        config = RunConfig(method=method, device="cpu")
        tic = time.perf_counter()
        run = train(config, runs_dir=runs_dir, progress=False)
        wall = time.perf_counter() - tic
        history = read_history(run)
        train_seconds = sum(float(r["seconds"]) for r in history)
        for fusion in fusions:
            summary = evaluate(run, "test", fusion=fusion, progress=False).summary
            curve = tau_curve(run, taus, "test", fusion=fusion, branches=["a" if method == "cam" else "fused"])
            best = curve.iloc[curve["gt_known_loc_acc"].argmax()]  # the first best row, as idxmax
            rows.append(
                {
                    "method": method,
                    "fusion": fusion or "-",
                    "delta": config.delta if method != "cam" else None,
                    "epochs": config.epochs,
                    "train_seconds": round(train_seconds, 1),
                    "wall_seconds_this_call": round(wall, 1),
                    "val_acc": float(history[-1]["val_acc"]) * 100,
                    "test_cls_acc_top1": summary["cls_acc_top1"],
                    "gt_known_loc_acc_tau0.2": summary["gt_known_loc_acc"],
                    "best_tau": float(best["tau"]),
                    "gt_known_loc_acc_best_tau": float(best["gt_known_loc_acc"]),
                    "maxboxacc_v2": summary["maxboxacc_v2"],
                    "pxap": summary.get("pxap", float("nan")),
                }
            )
    table = pd.DataFrame(rows)
    title = (
        f"Default budget on the synthetic set (5,000 train / 1,000 test, 64 px, small backbone), "
        f"cpu, {threads or torch.get_num_threads()} threads; measured under load"
    )
    print(title)
    print(to_markdown(table))
    write_table(
        table,
        out,
        "default_budget",
        title=title,
        note="train_seconds = sum of epoch times in history.csv (excludes data generation and val). "
        "Hyperparameters chosen by val classification accuracy only.",
    )
    return table


def publish(table: pd.DataFrame, out: str, name: str, title: str, note: str) -> None:
    """Print ``table`` under ``title`` and write ``<out>/<name>.{csv,md}`` with ``note``."""
    print(title)
    print(to_markdown(table, digits=3))
    write_table(table, out, name, title=title, digits=3, note=note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="small")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(RESULTS), help="folder for train_throughput.{csv,md}")
    parser.add_argument(
        "--default-budget",
        action="store_true",
        help="train+evaluate cam/acol/hclnet at the defaults instead (default_budget.{csv,md})",
    )
    parser.add_argument("--runs-dir", default="runs", help="engine run cache for --default-budget")
    parser.add_argument(
        "--micro-batch",
        action="store_true",
        help="CPU: whole batch against the engine's micro-batches per receptive field (train_micro_batch.{csv,md})",
    )
    parser.add_argument(
        "--malloc",
        action="store_true",
        help="CPU: glibc's default allocator against reuse_freed_memory per receptive field (train_malloc.{csv,md})",
    )
    parser.add_argument("--malloc-images", type=int, default=1000, help="--malloc: training images of each run")
    parser.add_argument("--rates-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reuse-freed-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rates_json:
        import json

        print(json.dumps(epoch_rates(args)))
        return 0
    if args.malloc:
        table = malloc_table(args)
        title = (
            f"CPU training throughput of engine runs, glibc's default allocator against "
            f"wsol_utils.allocator.reuse_freed_memory: one epoch of {args.malloc_images} synthetic images (64 px, "
            f"batch 64, engine micro-batches) per field and method, OMP_NUM_THREADS="
            f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, median of {args.rounds} rounds (fresh processes, "
            "alternating)"
        )
        publish(
            table,
            args.out,
            "train_malloc",
            title,
            "Same numbers either way (the allocator does not change the arithmetic); the engine's worker "
            "processes (train_many) and reproduce's notebook kernels reuse freed memory.",
        )
        return 0
    if args.default_budget:
        default_budget(args.runs_dir, args.out, None)
        return 0
    if args.micro_batch:
        table = micro_batch_table(args)
        title = (
            f"CPU training throughput, whole batch of {args.batch_size} against the engine's micro-batches "
            f"(same gradient), small backbone, {args.image_size} px, {torch.get_num_threads()} thread(s), median of "
            f"{args.rounds} interleaved rounds x {args.steps} steps"
        )
        publish(
            table,
            args.out,
            "train_micro_batch",
            title,
            "One process, the two ways interleaved per model. The engine trains on the CPU in micro-batches "
            "(wsol_utils.engine.train.micro_batches).",
        )
        return 0

    device = resolve_device(args.device)
    torch.manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    setups = {}
    for method in METHODS:
        config = RunConfig(method=method, backbone=args.backbone, image_size=args.image_size)
        model = build_model(config, args.num_classes).to(device)
        optimizer = build_optimizer(model, config)
        measure(model, optimizer, images, labels, args.warmup)
        setups[method] = (model, optimizer)
    rates: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method in METHODS:
            rates[method].append(measure(*setups[method], images, labels, args.steps))
    cam = statistics.median(rates["cam"])
    table = pd.DataFrame(
        [
            {
                "method": m,
                "images_per_s": statistics.median(rates[m]),
                "ratio_to_cam": statistics.median(rates[m]) / cam,
                "min_images_per_s": min(rates[m]),
                "max_images_per_s": max(rates[m]),
            }
            for m in METHODS
        ]
    )
    title = (
        f"Training throughput, backbone={args.backbone}, {args.image_size} px, batch {args.batch_size}, "
        f"{device} ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()}), "
        f"median of {args.rounds} interleaved rounds x {args.steps} steps"
    )
    publish(
        table,
        args.out,
        "train_throughput",
        title,
        "Same backbone, same process, methods interleaved; the second branch is only a head, so "
        "ratios near 1 are expected. Timings on a shared machine are noisy.",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
