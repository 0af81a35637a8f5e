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

``--malloc`` compares glibc's default allocator with :func:`wsol_utils.base.allocator.reuse_freed_memory` on real
engine runs (one epoch per receptive field and method, fresh processes) and writes
``benchmarks/results/train_malloc.{csv,md}``:

    OMP_NUM_THREADS=1 python benchmarks/bench_train_throughput.py --malloc

``--engine-vs BASE`` compares today's engine with the one of git commit ``BASE`` (default ``bf9dbf0``, the
engine before issue 19), side by side: each measurement is one whole engine run (a fresh process with
``OMP_NUM_THREADS=1``, as a ``train_many`` worker: import, trainer, data, ``--epochs`` epochs over
``--run-images`` images with validation) of CAM, ACoL and HCLNet at the suite's instrument (8 px,
:data:`wsol_utils.engine.INSTRUMENT`), the two engines alternating within interleaved rounds. It prints the CPU
seconds per run (the child process's user + system time, and the training loop's own CPU time), medians, ranges
and ratios, records the CPU model and torch's CPU capability, and stops with ``MISMATCH`` unless every run's final
weights (SHA-256 of the checkpoint's state dict) and history numbers are bit-identical between the two engines.
Writes ``benchmarks/results/train_engine_speedup.{csv,md}``. ``--new-precision auto`` (or ``bf16``) trains
today's engine in that ``RunConfig.precision`` against the base engine's fp32: only each engine's determinism is
checked then (bf16's science check is ``--precision-vs``), and the tables are ``train_engine_speedup_auto.*``
(``..._<N>epochs.*`` for ``--epochs N`` above 1):

    python benchmarks/bench_train_throughput.py --engine-vs bf9dbf0 --rounds 5
    python benchmarks/bench_train_throughput.py --engine-vs bf9dbf0 --rounds 5 --new-precision auto

``--precision-vs`` compares fp32 with bf16 autocast training (``RunConfig.precision``) on the suite's main
comparison (the runs of :meth:`wsol_utils.ui.suite.Suite.config` for CAM, ACoL delta 0.6 and HCLNet at ``--seeds``):
every run in a fresh one-thread process, the fp32 and bf16 runs of a method and seed side by side (``--jobs 2``),
seeds as interleaved rounds. It writes the CPU seconds per run (medians, ranges, ratios), and the science check
(val top-1, GT-known loc at tau 0.2, MaxBoxAccV2 on test; mean and 95% t interval of each engine and of the paired
difference; a verdict per method) to ``benchmarks/results/train_precision_{runs,speed,science}.{csv,md}``
(``--smoke``: the suite's smoke sizes, files named ``*_smoke``). Every finished pair is appended to
``train_precision_runs.jsonl`` at once: the same command resumes an interrupted benchmark, ``--tables-only``
writes the tables of the pairs recorded so far:

    python benchmarks/bench_train_throughput.py --precision-vs --seeds 0,1,2,3,4 --jobs 2

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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from wsol_utils.base.allocator import ENV as ALLOCATOR_ENV
from wsol_utils.base.allocator import reuse_freed_memory
from wsol_utils.engine import INSTRUMENT
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.distributed import DistContext, resolve_device
from wsol_utils.engine.optim import build_optimizer
from wsol_utils.engine.precision import PRECISIONS, this_cpu_has_native_bf16
from wsol_utils.engine.run import build_model
from wsol_utils.engine.train import backward_batch, micro_batches, train
from wsol_utils.nets.fused import fused_kernels_available
from wsol_utils.studies.analysis import RECEPTIVE_FIELDS
from wsol_utils.studies.stats import PERCENT, PERCENT_DIFFERENCE, Interval, paired_seed_difference, seed_interval
from wsol_utils.studies.tables import to_markdown, write_table

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
    """glibc's default allocator against :func:`wsol_utils.base.allocator.reuse_freed_memory` (a process-wide setting,
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
    for method, fusions in (("cam", [None]), ("acol", ["max"]), ("hclnet", ["add", "l1"])):
        config = RunConfig(method=method, device="cpu")
        tic = time.perf_counter()
        run = train(config, runs_dir=runs_dir, progress=False)
        wall = time.perf_counter() - tic
        history = read_history(run)
        train_seconds = sum(float(r["seconds"]) for r in history)
        for fusion in fusions:
            summary = evaluate(run, "test", fusion=fusion, progress=False).summary
            curve = tau_curve(run, split="test", fusion=fusion, branches=["a" if method == "cam" else "fused"])
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


def cpu_description() -> str:
    """The CPU model (lscpu / /proc/cpuinfo) and torch's CPU capability (``AVX512``, ``AVX2``, ...)."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores"


def checkout_engine(commit: str, into: Path) -> Path:
    """``wsol_utils/`` of git ``commit`` of this repository extracted under ``into`` (``git archive``); returns the
    folder to put first on ``PYTHONPATH``."""
    import subprocess
    import tarfile

    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "wsol_utils"], check=True, capture_output=True
    ).stdout
    import io

    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


#: ``--engine-vs``'s child: one whole engine run in a fresh process; a script of its own, importing only what every
#: engine since bf9dbf0 has (``wsol_utils.engine``), so that it runs against an old engine's ``wsol_utils`` too.
ENGINE_RUN = Path(__file__).resolve().parent / "engine_run.py"


def engine_speedup_table(args: argparse.Namespace) -> pd.DataFrame:
    """Today's engine against ``--engine-vs``'s, one whole run per measurement in a fresh process, the engines
    alternating within interleaved rounds (methods interleaved too); one row per method: median and range of the
    process CPU seconds of each engine, their ratio, the precision each trained in, and whether the weights and
    history were bit-identical. ``--new-precision`` sets today's engine's ``RunConfig.precision`` (default: its own
    default): when it trains in another way than the old engine (bf16, or fp32 with the fused kernels:
    ``"fp32-fused"``) the two engines cannot agree bit for bit (the science checks are ``--precision-vs`` and
    ``--kernels-vs``), so only each engine's determinism (every round's run equal to its first) is required."""
    import json
    import resource
    import subprocess
    import sys
    import tempfile

    for method in METHODS:  # generate (or read) the synthetic splits before any clock starts
        RunConfig(method=method, dataset_kwargs={"num_train": args.run_images}, **INSTRUMENT).dataset_for("train")
    here = Path(__file__).resolve().parent.parent
    cpu: dict[tuple[str, str], list[float]] = {}
    loop: dict[tuple[str, str], list[float]] = {}
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as base_dir:
        paths = {"base": checkout_engine(args.engine_vs, Path(base_dir)), "new": here}
        for round_index in range(args.rounds):
            order = ("base", "new") if round_index % 2 == 0 else ("new", "base")
            for method in METHODS:
                for engine in order:
                    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(paths[engine])}
                    command = [sys.executable, str(ENGINE_RUN), method]
                    command += ["--run-images", str(args.run_images), "--epochs", str(args.epochs)]
                    if engine == "new" and args.new_precision:
                        command += ["--precision", args.new_precision]
                    before = resource.getrusage(resource.RUSAGE_CHILDREN)
                    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
                    after = resource.getrusage(resource.RUSAGE_CHILDREN)
                    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
                    result = json.loads(output.strip().splitlines()[-1])
                    cpu.setdefault((method, engine), []).append(used)
                    loop.setdefault((method, engine), []).append(result["train_cpu_s"])
                    results.setdefault((method, engine), []).append(result)
                    print(f"round {round_index + 1} {method:6s} {engine:4s} {used:6.2f} CPU s", flush=True)
    rows = []
    for method in METHODS:
        precisions = {engine: results[(method, engine)][0].get("precision", "fp32") for engine in ("base", "new")}
        deterministic = all(same_run(r, results[(method, e)][0]) for e in ("base", "new") for r in results[(method, e)])
        same_precision = precisions["base"] == precisions["new"]
        identical = deterministic and (
            not same_precision or same_run(results[(method, "new")][0], results[(method, "base")][0])
        )
        base, new = cpu[(method, "base")], cpu[(method, "new")]
        base_loop, new_loop = loop[(method, "base")], loop[(method, "new")]
        pair_ratios = [b / n for b, n in zip(base, new)]  # the same round: the same load on the machine
        loop_ratios = [b / n for b, n in zip(base_loop, new_loop)]
        rows.append(
            {
                "method": method,
                "base_cpu_s_median": statistics.median(base),
                "base_cpu_s_range": f"{min(base):.2f}-{max(base):.2f}",
                "new_cpu_s_median": statistics.median(new),
                "new_cpu_s_range": f"{min(new):.2f}-{max(new):.2f}",
                "speed_up_median": statistics.median(base) / statistics.median(new),
                "speed_up_per_round_range": f"{min(pair_ratios):.3f}-{max(pair_ratios):.3f}",
                "warm_train_speed_up": statistics.median(base_loop) / statistics.median(new_loop),
                "warm_train_per_round_range": f"{min(loop_ratios):.3f}-{max(loop_ratios):.3f}",
                "base_precision": precisions["base"],
                "new_precision": precisions["new"],
                "deterministic": deterministic,
                "bit_identical": identical if same_precision else "n/a (precisions differ)",
            }
        )
    table = pd.DataFrame(rows)
    if not all(row["deterministic"] and row["bit_identical"] is not False for row in rows):
        print(to_markdown(table, digits=3))
        raise SystemExit("MISMATCH: runs of one engine, or of two engines in one precision, differ (see the table)")
    return table


def same_run(a: dict, b: dict) -> bool:
    """Two :data:`ENGINE_RUN` results trained the same weights and history (and cache key)."""
    return (a["weights_sha256"], a["history"], a["key"]) == (b["weights_sha256"], b["history"], b["key"])


#: ``--precision-vs``: the metrics of the science check, (summary or history key, column label, protocol).
PRECISION_METRICS: tuple[tuple[str, str], ...] = (
    ("val_top1", "val top-1 (%)"),
    ("gt_known_loc_acc", "GT-known loc (%, tau 0.2, papers')"),
    ("maxboxacc_v2", "MaxBoxAccV2 (%, wsoleval)"),
)


@dataclass(frozen=True)
class Comparison:
    """A science-and-speed comparison of two ways to train (``--precision-vs``, ``--kernels-vs``): ``axis`` is the
    ``RunConfig`` field that tells the ways apart (and the key of a recorded run's way), ``ways`` (base, new),
    ``fields`` the ``RunConfig`` fields each way trains with, ``stem`` the results' file stem, ``what`` a title."""

    axis: str
    ways: tuple[str, str]
    fields: dict[str, dict[str, str]]
    stem: str
    what: str


COMPARISONS: dict[str, Comparison] = {
    "precision": Comparison(
        "precision",
        ("fp32", "bf16"),
        {"fp32": {"precision": "fp32", "kernels": "torch"}, "bf16": {"precision": "bf16", "kernels": "torch"}},
        "train_precision",
        "fp32 against bf16 autocast training",
    ),
    "kernels": Comparison(
        "kernels",
        ("torch", "fused"),
        {"torch": {"precision": "fp32", "kernels": "torch"}, "fused": {"precision": "fp32", "kernels": "fused"}},
        "train_kernels",
        "PyTorch's layers against the fused CPU kernels (fp32)",
    ),
}


def main_comparison_run(method: str, seed: int, smoke: bool) -> tuple[RunConfig, str | None]:
    """The suite's main-comparison config of ``method`` at ``seed`` on the synthetic set (``Suite.config``: the
    8 px instrument, 6 epochs, 5,000 / 500 / 1,000 images, the seed's own data draw; ``smoke``: the suite's smoke
    sizes) and its test-time fusion (:data:`wsol_utils.ui.experiments.MAIN_VARIANTS`: CAM none, ACoL delta 0.6 max,
    HCLNet add), on the CPU."""
    from wsol_utils.ui.experiments import MAIN_VARIANTS
    from wsol_utils.ui.suite import Suite

    variant = next(v for v in MAIN_VARIANTS if v.key == method)
    config = Suite(device="cpu", smoke=smoke).config(variant.method, seed=seed, **dict(variant.changes))
    return config, variant.fusion


def one_comparison_run(method: str, seed: int, fields: dict[str, str], runs_dir: str, smoke: bool) -> dict[str, object]:
    """Train the main-comparison run of ``method`` / ``seed`` with the ``RunConfig`` ``fields`` of one way of a
    :class:`Comparison` in ``runs_dir`` (this process), after a tiny untimed run of the same way that pays the
    one-time costs, and score it on test in float32 with the suite's evaluation (``--comparison-run``): the
    ``train()`` CPU seconds, the process's CPU seconds before evaluation, the final val top-1, GT-known loc at tau
    0.2, MaxBoxAccV2, the resolved precision and kernels, the run's key and weights' SHA-256."""
    import resource

    from engine_run import weights_sha256  # benchmarks/engine_run.py, beside this script

    from wsol_utils.engine import evaluate_cached
    from wsol_utils.engine.train import read_history

    config, fusion = main_comparison_run(method, seed, smoke)
    config = config.replace(**fields)
    warm_up = config.replace(dataset_kwargs={**config.dataset_kwargs, "num_train": 64}, epochs=1, val_split=None)
    train(warm_up, runs_dir=Path(runs_dir) / "warm-up", progress=False)
    tic = time.process_time()
    run = train(config, runs_dir=runs_dir, progress=False)
    seconds = time.process_time() - tic
    usage = resource.getrusage(resource.RUSAGE_SELF)
    process_seconds = usage.ru_utime + usage.ru_stime
    tic = time.process_time()
    summary = evaluate_cached(run, split="test", wsoleval="main", device="cpu", fusion=fusion).summary
    return {
        "method": method,
        "seed": seed,
        "precision": config.precision,
        "kernels": config.kernels,
        "train_cpu_s": seconds,
        "process_cpu_s": process_seconds,
        "eval_cpu_s": time.process_time() - tic,
        "val_top1": 100.0 * float(read_history(run)[-1]["val_acc"]),
        "gt_known_loc_acc": float(summary["gt_known_loc_acc"]),
        "maxboxacc_v2": float(summary["maxboxacc_v2"]),
        "key": run.name,
        "weights_sha256": weights_sha256(run),
        "config": config.to_dict(),
    }


def comparison_rows_path(args: argparse.Namespace, comparison: Comparison) -> Path:
    """``<out>/<stem>_runs[_smoke].jsonl``: one JSON line per finished run of the comparison."""
    return Path(args.out) / f"{comparison.stem}_runs{'_smoke' if args.smoke else ''}.jsonl"


def way_of(row: dict, comparison: Comparison) -> str:
    """The way a recorded run trained in (its ``comparison.axis``; a run recorded before ``kernels`` existed
    trained with PyTorch's layers)."""
    return str(row.get(comparison.axis, "torch"))


def read_comparison_rows(path: Path) -> list[dict]:
    """The runs recorded in ``path`` (:func:`comparison_rows_path`) so far; ``[]`` when it does not exist."""
    import json

    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def comparison_pairs(args: argparse.Namespace, comparison: Comparison) -> list[dict]:
    """Every main-comparison run of ``--seeds`` x :data:`METHODS` x the comparison's two ways, each one whole run
    in a fresh process with ``OMP_NUM_THREADS=1`` (:func:`one_comparison_run`). Seeds are the interleaved rounds
    (methods interleaved within them); a pair (both ways of one method and seed) runs side by side when ``--jobs
    2`` (the same load on both), the one started first alternating by round. The synthetic data is drawn before any
    clock. Each finished pair is appended to :func:`comparison_rows_path` at once; a pair found there is not run
    again, so the same command resumes an interrupted benchmark (``--restart``: start over)."""
    import json
    import subprocess
    import sys
    import tempfile

    path = comparison_rows_path(args, comparison)
    if args.restart:
        path.unlink(missing_ok=True)
    rows = read_comparison_rows(path)
    base, new = comparison.ways
    ran = {way: {(row["method"], row["seed"]) for row in rows if way_of(row, comparison) == way} for way in (base, new)}
    done = ran[base] & ran[new]
    rows = [row for row in rows if (row["method"], row["seed"]) in done]
    for seed in args.seeds:
        for method in METHODS:
            config, _ = main_comparison_run(method, seed, args.smoke)
            for split in ("train", "val", "test"):
                config.dataset_for(split)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as runs_dir:
        for round_index, seed in enumerate(args.seeds):
            order = comparison.ways if round_index % 2 == 0 else comparison.ways[::-1]
            for method in METHODS:
                if (method, seed) in done:
                    continue
                env = {**os.environ, "OMP_NUM_THREADS": "1"}
                commands = [
                    [sys.executable, __file__, "--comparison-run", method, "--seed", str(seed)]
                    + ["--fields", json.dumps(comparison.fields[way]), "--runs-dir", str(Path(runs_dir) / way)]
                    + (["--smoke"] if args.smoke else [])
                    for way in order
                ]
                outputs = []
                for batch in (commands,) if args.jobs > 1 else tuple([c] for c in commands):
                    children = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True, env=env) for c in batch]
                    outputs += [child.communicate()[0] for child in children]
                    if any(child.returncode for child in children):
                        raise SystemExit(f"a --comparison-run of {method} seed {seed} failed")
                pair = [{**json.loads(output.strip().splitlines()[-1]), "round": round_index + 1} for output in outputs]
                with path.open("a", encoding="utf-8") as fh:
                    fh.writelines(json.dumps(row) + "\n" for row in pair)
                rows += pair
                for row in pair:
                    print(
                        f"round {round_index + 1} {method:6s} seed {seed} {way_of(row, comparison)}: "
                        f"{row['train_cpu_s']:6.2f} CPU s, val top-1 {row['val_top1']:.1f}, "
                        f"GT-known {row['gt_known_loc_acc']:.1f}, V2 {row['maxboxacc_v2']:.1f}",
                        flush=True,
                    )
    return rows


def comparison_speed_table(runs: pd.DataFrame, comparison: Comparison) -> pd.DataFrame:
    """One row per method: median and range of each way's runs' ``train()`` CPU seconds, the ratio of the medians
    (base / new) and the range of the per-round ratios (the pair of a round ran under the same load)."""
    rows = []
    base, new = comparison.ways
    for method in METHODS:
        mine = runs[runs["method"] == method].sort_values("round")
        seconds = {way: mine[mine["way"] == way]["train_cpu_s"].tolist() for way in comparison.ways}
        ratios = [a / b for a, b in zip(seconds[base], seconds[new])]
        rows.append(
            {
                "method": method,
                "rounds": len(ratios),
                **{
                    column: value
                    for way in comparison.ways
                    for column, value in (
                        (f"{way}_cpu_s_median", statistics.median(seconds[way])),
                        (f"{way}_cpu_s_range", f"{min(seconds[way]):.2f}-{max(seconds[way]):.2f}"),
                    )
                },
                "speed_up_median": statistics.median(seconds[base]) / statistics.median(seconds[new]),
                "speed_up_per_round_range": f"{min(ratios):.3f}-{max(ratios):.3f}",
            }
        )
    return pd.DataFrame(rows)


def intervals_agree(a: Interval, b: Interval, difference: Interval) -> bool:
    """The science check of one metric: the two engines' intervals overlap and the paired difference's interval
    contains 0 (False when any interval is NaN, e.g. from one seed)."""
    overlap = max(a.low, b.low) <= min(a.high, b.high)
    return bool(overlap and difference.low <= 0.0 <= difference.high)


def comparison_science_table(runs: pd.DataFrame, comparison: Comparison) -> pd.DataFrame:
    """One row per method and metric of :data:`PRECISION_METRICS`: each way's mean over seeds with its 95% t
    interval within [0, 100], the paired (new - base, same seed) difference's with its interval within
    [-100, 100] (:mod:`wsol_utils.studies.stats`), ``agree`` (:func:`intervals_agree`) and the method's ``verdict``:
    ``"agree"`` when every metric agrees, else ``"differs"``."""
    rows = []
    base, new = comparison.ways
    for method in METHODS:
        per_seed = runs[runs["method"] == method].pivot(index="seed", columns="way")
        method_rows = []
        for key, label in PRECISION_METRICS:
            base_values, new_values = per_seed[key][base].tolist(), per_seed[key][new].tolist()
            a, b = seed_interval(base_values, bounds=PERCENT), seed_interval(new_values, bounds=PERCENT)
            difference = paired_seed_difference(new_values, base_values, bounds=PERCENT_DIFFERENCE)
            method_rows.append(
                {
                    "method": method,
                    "metric": label,
                    "seeds": len(base_values),
                    base: a.mean,
                    f"{base} low": a.low,
                    f"{base} high": a.high,
                    new: b.mean,
                    f"{new} low": b.low,
                    f"{new} high": b.high,
                    f"{new} - {base}": difference.mean,
                    "difference low": difference.low,
                    "difference high": difference.high,
                    "agree": intervals_agree(a, b, difference),
                }
            )
        verdict = "agree" if all(row["agree"] for row in method_rows) else "differs"
        rows += [{**row, "verdict": verdict} for row in method_rows]
    return pd.DataFrame(rows)


def comparison_tables(args: argparse.Namespace, comparison: Comparison) -> None:
    """``--precision-vs`` / ``--kernels-vs``: run :func:`comparison_pairs` and write ``<stem>_runs``,
    ``<stem>_speed`` and ``<stem>_science`` (``.csv`` / ``.md``, with provenance: the runs' configs, the seeds, the
    CPU)."""
    path = comparison_rows_path(args, comparison)
    runs = pd.DataFrame(read_comparison_rows(path) if args.tables_only else comparison_pairs(args, comparison))
    runs["way"] = [way_of(row, comparison) for row in runs.to_dict("records")]
    runs = runs[runs["seed"].isin(args.seeds)]
    if args.tables_only:  # only whole pairs
        pairs = runs.groupby(["method", "seed"])["way"].transform("nunique") == len(comparison.ways)
        runs = runs[pairs]
    sizes = "smoke sizes (300 / 60 / 100 images, 1 epoch)" if args.smoke else "5,000 / 500 / 1,000 images, 6 epochs"
    where = (
        f"the suite's main comparison on the synthetic set (8 px instrument, {sizes}, batch 64, ACoL delta 0.6 "
        f"max, HCLNet add), seeds {', '.join(map(str, args.seeds))}, one thread per run, {args.jobs} run(s) at once; "
        f"{cpu_description()}"
    )
    provenance = {
        "runs": [{"run": row["key"], "config": row["config"]} for row in runs.to_dict("records")],
        "seeds": list(args.seeds),
        "cpu": cpu_description(),
        "native_bf16": this_cpu_has_native_bf16(),
        "fused_kernels_available": fused_kernels_available(),
    }
    suffix = "_smoke" if args.smoke else ""
    base, new = comparison.ways
    write_table(
        runs.drop(columns=["config", "way"]),
        args.out,
        f"{comparison.stem}_runs{suffix}",
        title=f"Every run of {comparison.what}, side by side: {where}",
        note="train_cpu_s: the measured train()'s CPU seconds after a tiny warm-up run; process_cpu_s: the whole "
        "process up to evaluation; eval_cpu_s: the test evaluation (float32, PyTorch's layers, for both). Metrics in "
        "%: val top-1 (last epoch), GT-known loc at tau 0.2 (papers' protocol) and MaxBoxAccV2 (wsoleval) on test.",
        digits=3,
        provenance=provenance,
    )
    publish(
        comparison_speed_table(runs, comparison),
        args.out,
        f"{comparison.stem}_speed{suffix}",
        f"CPU seconds per training run, {comparison.what}: {where}",
        f"speed_up = median {base} / median {new} train() CPU seconds (the whole run: data, epochs, validation, "
        "checkpoints; after a tiny warm-up run, as a train_many worker from its second run on); per-round range: "
        "the two runs of a round ran side by side under the same load.",
        provenance,
    )
    publish(
        comparison_science_table(runs, comparison),
        args.out,
        f"{comparison.stem}_science{suffix}",
        f"Science check, {comparison.what}: {where}",
        f"Mean over seeds with the 95% t interval (within [0, 100]); {new} - {base}: paired by seed (same data draw), "
        "95% t interval. agree: the two ways' intervals overlap and the paired difference's interval contains 0; "
        "verdict per method: every metric agrees. Each seed draws its own data, so the intervals include the "
        "test set's sampling noise. Evaluation is float32 with PyTorch's layers for both.",
        provenance,
    )


def publish(table: pd.DataFrame, out: str, name: str, title: str, note: str, provenance: dict | None = None) -> None:
    """Print ``table`` under ``title`` and write ``<out>/<name>.{csv,md}`` with ``note`` (and ``provenance``)."""
    print(title)
    print(to_markdown(table, digits=3))
    write_table(table, out, name, title=title, digits=3, note=note, provenance=provenance)


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
    parser.add_argument(
        "--engine-vs",
        metavar="COMMIT",
        help="CPU: today's engine against git COMMIT's (bf9dbf0: before issue 19), whole runs at the instrument, "
        "bit-identity checked (train_engine_speedup.{csv,md})",
    )
    parser.add_argument("--run-images", type=int, default=2000, help="--engine-vs: training images of each run")
    parser.add_argument("--epochs", type=int, default=1, help="--engine-vs: epochs of each run")
    parser.add_argument(
        "--new-precision",
        choices=PRECISIONS,
        help="--engine-vs: today's engine's RunConfig.precision (default: its default); writes "
        "train_engine_speedup_<precision>.{csv,md}",
    )
    parser.add_argument(
        "--precision-vs",
        action="store_true",
        help="CPU: fp32 against bf16 autocast training, the suite's main comparison runs of --seeds for cam, acol "
        "and hclnet, speed and science (train_precision_{runs,speed,science}.{csv,md})",
    )
    parser.add_argument(
        "--seeds", type=lambda text: [int(x) for x in text.split(",")], default=[0, 1, 2, 3, 4], help="0,1,2,3,4"
    )
    parser.add_argument(
        "--kernels-vs",
        action="store_true",
        help="CPU: PyTorch's layers against the fused CPU kernels (fp32), the suite's main comparison runs of --seeds "
        "for cam, acol and hclnet, speed and science (train_kernels_{runs,speed,science}.{csv,md})",
    )
    parser.add_argument("--jobs", type=int, choices=(1, 2), default=2, help="--precision-vs / --kernels-vs: at once")
    parser.add_argument("--smoke", action="store_true", help="--precision-vs / --kernels-vs: the suite's smoke sizes")
    parser.add_argument("--restart", action="store_true", help="--precision-vs / --kernels-vs: forget recorded runs")
    parser.add_argument(
        "--tables-only", action="store_true", help="--precision-vs / --kernels-vs: only the tables of recorded runs"
    )
    parser.add_argument("--comparison-run", metavar="METHOD", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fields", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--rates-json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reuse-freed-memory", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.comparison_run:
        import json

        fields = json.loads(args.fields)
        print(json.dumps(one_comparison_run(args.comparison_run, args.seed, fields, args.runs_dir, args.smoke)))
        return 0
    if args.precision_vs or args.kernels_vs:
        comparison_tables(args, COMPARISONS["precision" if args.precision_vs else "kernels"])
        return 0
    if args.engine_vs:
        table = engine_speedup_table(args)
        in_precision = f" in {args.new_precision}" if args.new_precision else ""
        title = (
            f"CPU seconds per engine run, today's engine{in_precision} against {args.engine_vs}'s: "
            f"{args.run_images} synthetic images x {args.epochs} epoch(s) + validation at the 8 px instrument, one "
            f"thread, whole fresh processes, median of {args.rounds} interleaved rounds; {cpu_description()}"
        )
        publish(
            table,
            args.out,
            "train_engine_speedup"
            + (f"_{args.new_precision}" if args.new_precision else "")
            + (f"_{args.epochs}epochs" if args.epochs > 1 else ""),
            title,
            "speed_up = base / new CPU seconds of the whole process (import, trainer, data, epochs, validation, "
            "checkpoint, and a tiny warm-up run); warm_train_speed_up counts only the measured train()'s CPU time, "
            "after the warm-up (what a train_many worker pays per run from its second run on). "
            "deterministic: every round's run of an engine trained the same weights (SHA-256) and history as its "
            "first; bit_identical: and equal across both engines (only where both trained in the same precision; "
            "bf16's science check against fp32 is train_precision_science.md). The machine was "
            "shared with other jobs: absolute times are from a loaded machine, ratios come from interleaved rounds.",
        )
        return 0
    if args.rates_json:
        import json

        print(json.dumps(epoch_rates(args)))
        return 0
    if args.malloc:
        table = malloc_table(args)
        title = (
            f"CPU training throughput of engine runs, glibc's default allocator against "
            f"wsol_utils.base.allocator.reuse_freed_memory: one epoch of {args.malloc_images} synthetic images (64 px, "
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
