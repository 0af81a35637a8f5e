"""One whole engine run in this process, for ``bench_train_throughput.py --engine-vs`` (its child process).

    python benchmarks/engine_run.py METHOD --run-images 5000 --epochs 1 [--precision auto]

Imports only what every engine since bf9dbf0 offers (``wsol_utils.engine``: ``INSTRUMENT``, ``RunConfig``,
``train``; ``engine.checkpoint.load_checkpoint``; ``engine.train.read_history``), so the benchmark can put an
older commit's ``wsol_utils`` first on ``PYTHONPATH`` and time it the same way. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from wsol_utils.engine import INSTRUMENT, RunConfig, train
from wsol_utils.engine.checkpoint import load_checkpoint
from wsol_utils.engine.train import read_history


def weights_sha256(run: Path) -> str:
    """SHA-256 of a run's final weights: each state-dict key of ``run/checkpoint.pt``, in sorted order, followed by
    its tensor's bytes (equal digests: bit-identical weights)."""
    state = load_checkpoint(run / "checkpoint.pt")["model"]
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode() + state[key].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def one_engine_run(method: str, images: int, epochs: int, precision: str | None = None) -> dict[str, object]:
    """Train one engine run of ``method`` at the instrument in a fresh run folder (this process), after a tiny
    untimed run that pays the one-time costs (imports, ``torch._dynamo`` via the optimizer) as a ``train_many``
    worker has by its second run; the run's ``train()`` CPU seconds, the SHA-256 of its final weights, its history
    without the timing columns and the precision it trained in. ``precision``: the run's
    ``RunConfig.precision`` (``None``: the engine's default; an engine from before the option has none)."""
    chosen: dict[str, Any] = {} if precision is None else {"precision": precision}
    config = RunConfig(
        method=method, dataset_kwargs={"num_train": images}, epochs=epochs, device="cpu", **INSTRUMENT, **chosen
    )
    warm_up = RunConfig(
        method=method, dataset_kwargs={"num_train": 64}, epochs=1, val_split=None, **INSTRUMENT, **chosen
    )
    with tempfile.TemporaryDirectory() as runs_dir:
        train(warm_up, runs_dir=runs_dir, progress=False)
        tic = time.process_time()
        run = train(config, runs_dir=runs_dir, progress=False)
        seconds = time.process_time() - tic
        weights = weights_sha256(run)
        history = [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")} for row in read_history(run)]
    trained_in = getattr(config, "precision", "fp32")  # engines before the fields have neither: fp32, PyTorch's layers
    if getattr(config, "kernels", "torch") == "fused":
        trained_in += "-fused"
    return {
        "train_cpu_s": seconds,
        "weights_sha256": weights,
        "history": history,
        "key": run.name,
        "precision": trained_in,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=("cam", "acol", "hclnet"))
    parser.add_argument("--run-images", type=int, default=2000, help="training images")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--precision", help="RunConfig.precision (default: the engine's; old engines have none)")
    args = parser.parse_args(argv)
    print(json.dumps(one_engine_run(args.method, args.run_images, args.epochs, args.precision)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
