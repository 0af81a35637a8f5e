"""Per-run training time of two cold ``make reproduce`` runs, matched by configuration (issue 19).

A whole ``make reproduce`` before and after a change measures the suite of each commit, and the suite itself
changes between commits (more seeds, other data sizes, another notebook). This script compares what the two have
in common: the training runs whose configuration is the same (``config.json`` without ``precision``, which older
commits do not record, and without the data set's ``seed``, which newer commits draw per run seed; the data's
size and every training setting must match). For each such run it reads the wall seconds of training
(``done.json``'s ``seconds_this_session``) and, from the runs' start and end times, the number of training
processes that ran beside it (time-averaged, itself included). On ``cores`` cores a run that shared them with
``c`` training processes had at most ``min(1, cores / c)`` of a core, so ``wall * min(1, cores / c)`` is an upper
estimate of its core-seconds (other work of the notebooks' kernels is not counted: the estimate is high where it
ran too).

    python benchmarks/compare_reproduce_runs.py BEFORE/runs AFTER/runs --csv benchmarks/results/out.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wsol_utils.data.synthetic import SyntheticConfig


@dataclass(frozen=True)
class Run:
    """One finished training run of a cold reproduce."""

    config: dict
    wall_s: float
    start: float
    end: float


def _config_key(config: dict) -> str:
    """The configuration a run is matched by: without ``precision`` and the data set's ``seed``."""
    kept = {key: value for key, value in config.items() if key != "precision"}
    kept["dataset_kwargs"] = {key: value for key, value in config.get("dataset_kwargs", {}).items() if key != "seed"}
    return json.dumps(kept, sort_keys=True)


def read_runs(root: Path) -> list[Run]:
    """Every finished run under ``root`` (a ``runs/`` folder)."""
    runs = []
    for folder in sorted(root.iterdir()):
        done = folder / "done.json"
        if not done.is_file():
            continue
        config = json.loads((folder / "config.json").read_text())
        wall = float(json.loads(done.read_text())["seconds_this_session"])
        end = os.path.getmtime(done)
        runs.append(Run(config=config, wall_s=wall, start=end - wall, end=end))
    return runs


def by_config(runs: Sequence[Run]) -> dict[str, Run]:
    """``runs`` by :func:`_config_key`; two runs with one key cannot be matched -> ValueError."""
    keyed: dict[str, Run] = {}
    for run in runs:
        key = _config_key(run.config)
        if key in keyed:
            raise ValueError(f"two runs have the configuration {key}: they cannot be matched one to one")
        keyed[key] = run
    return keyed


def concurrency(run: Run, runs: Sequence[Run]) -> float:
    """Time-averaged number of training runs that ran while ``run`` did, itself included."""
    overlap = sum(max(0.0, min(run.end, other.end) - max(run.start, other.start)) for other in runs)
    return overlap / max(run.end - run.start, 1e-9)


def mean_concurrency(runs: Sequence[Run]) -> float:
    """Number of training runs at once, averaged over the time at least one trains."""
    events = sorted([(run.start, 1) for run in runs] + [(run.end, -1) for run in runs])
    busy = weighted = 0.0
    active, last = 0, events[0][0]
    for time, change in events:
        if active:
            busy += time - last
            weighted += active * (time - last)
        active, last = active + change, time
    return weighted / busy


def images_trained(runs: Sequence[Run], default_num_train: int = SyntheticConfig.num_train) -> int:
    """Training images x epochs over all runs (a config without ``num_train`` uses the data set's default)."""
    return sum(
        int(run.config.get("dataset_kwargs", {}).get("num_train", default_num_train)) * int(run.config["epochs"])
        for run in runs
    )


def _median(rows: list[dict], column: str) -> float:
    """Median of one column of the matched rows."""
    return statistics.median(float(row[column]) for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="runs/ of the cold reproduce before")
    parser.add_argument("after", type=Path, help="runs/ of the cold reproduce after")
    parser.add_argument("--cores", type=int, default=2, help="cores of the machine both ran on")
    parser.add_argument("--csv", type=Path, help="write the matched runs here")
    args = parser.parse_args()
    before, after = read_runs(args.before), read_runs(args.after)
    keyed_before, keyed_after = by_config(before), by_config(after)
    common = sorted(set(keyed_before) & set(keyed_after))
    print(f"runs: before {len(before)}, after {len(after)}, same configuration {len(common)}")
    rows = []
    for key in common:
        old, new = keyed_before[key], keyed_after[key]
        c_old, c_new = concurrency(old, before), concurrency(new, after)
        rows.append(
            {
                "method": old.config["method"],
                "seed": old.config["seed"],
                "delta": old.config["delta"],
                "wall_before_s": round(old.wall_s, 2),
                "wall_after_s": round(new.wall_s, 2),
                "concurrency_before": round(c_old, 2),
                "concurrency_after": round(c_new, 2),
                "core_s_before": round(old.wall_s * min(1.0, args.cores / c_old), 2),
                "core_s_after": round(new.wall_s * min(1.0, args.cores / c_new), 2),
            }
        )
    for method in sorted({row["method"] for row in rows}):
        mine = [row for row in rows if row["method"] == method]
        wall = [row["wall_before_s"] / row["wall_after_s"] for row in mine]
        core = [row["core_s_before"] / row["core_s_after"] for row in mine]
        print(
            f"{method}: {len(mine)} runs; wall per run x{statistics.median(wall):.2f} "
            f"({min(wall):.2f}-{max(wall):.2f}); core-seconds (upper estimate before) x{statistics.median(core):.2f} "
            f"({min(core):.2f}-{max(core):.2f}); concurrency {_median(mine, 'concurrency_before'):.2f}"
            f" -> {_median(mine, 'concurrency_after'):.2f}"
        )
    for name, runs in (("before", before), ("after", after)):
        print(
            f"{name}: {len(runs)} runs, {images_trained(runs) / 1e6:.2f} M images x epochs, "
            f"{sum(r.wall_s for r in runs):.0f} s of run wall time, "
            f"{mean_concurrency(runs):.2f} runs at once on average"
        )
    if args.csv and rows:
        with args.csv.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"wrote {args.csv}")


if __name__ == "__main__":
    main()
