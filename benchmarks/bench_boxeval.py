"""Benchmark: the fast wsoleval evaluator (wsol_utils.scoring.boxeval) against the literal reference (issue 7).

For each N in ``--n``, writes N realistic 224x224 score maps (smooth blobs from summed Gaussians on a
CAM-like upsampled 14x14 grid, several components, holes, some empty / constant maps) with GT boxes and
masks in wsoleval's layout into a temp folder, then in the same run:

1. times the literal reference (``metrics.reference_box_metrics`` + ``metrics.reference_pxap``, docs/methods.md §2.2,
   one threshold at a time, one process) on the first ``--reference-subset`` images and extrapolates its time
   linearly to N (the reference costs ~0.5 s per image at interval 0.001);
2. times ``scoremaps.evaluate_scoremaps`` (all cores unless ``--workers``) on all N images, sampling the peak
   resident memory (psutil RSS of this process, USS of its workers) and the workers' CPU time;
3. checks that every number (MaxBoxAcc, its threshold, MaxBoxAccV2, each IoU level's accuracy and threshold,
   PxAP) agrees exactly between the reference and the fast evaluator on the subset;

and prints / writes ``benchmarks/results/bench_boxeval.{csv,md}``. Each row also records the OpenCV and numpy
versions and the 1-minute load average before and after the row (timings under load are not comparable).

    .venv/bin/python benchmarks/bench_boxeval.py --n 1000 5000 --interval 0.001 --reference-subset 40

``--whole-process`` (issue 19 item 4) times instead the whole ``python -m wsol_utils evaluate`` command (interpreter
start, imports, worker start-up, file reads, scoring; no masks: MaxBoxAcc and MaxBoxAccV2, as the issue's 116.5 s
for wsoleval's V1 + V2) on the N maps, in ``--rounds`` interleaved rounds against the reference on its subset
(extrapolated to N; it is measured in the first ``--reference-rounds`` rounds only, being slow) and, with
``--before COMMIT``, against the same command from that commit's ``wsol_utils``; the command's JSON on the subset
must equal the reference's. Writes per-round rows and a summary (medians, min-max ranges, the CPU model and torch's
CPU capability) to ``benchmarks/results/bench_boxeval_process.{csv,md}``:

    .venv/bin/python benchmarks/bench_boxeval.py --whole-process --n 1000 --rounds 3 --before HEAD~1
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import psutil

from wsol_utils.data.metadata import read_wsoleval_metadata, write_wsoleval_metadata
from wsol_utils.data.scoremaps import evaluate_scoremaps
from wsol_utils.scoring.boxes import rescale_boxes
from wsol_utils.scoring.metrics import reference_box_metrics, reference_pxap

_T = TypeVar("_T")
RESULTS = Path(__file__).resolve().parent / "results"
REPOSITORY = Path(__file__).resolve().parent.parent
MAP_SIZE = 224


# ------------------------------------------------------------------------------------ realistic maps


def _gaussian(size: int, center: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """An axis-aligned 2-D Gaussian bump ``(size, size)`` (separable: outer product of two 1-D ones)."""
    axis = np.arange(size, dtype=np.float64)
    return np.outer(
        np.exp(-0.5 * ((axis - center[1]) / sigma[1]) ** 2), np.exp(-0.5 * ((axis - center[0]) / sigma[0]) ** 2)
    )


def realistic_map(rng: np.random.Generator, size: int = MAP_SIZE) -> tuple[np.ndarray, list[list[int]]]:
    """A CAM-like ``(size, size)`` float64 map in ``[0, 1]`` and the inclusive boxes of its objects.

    1-5 anisotropic Gaussian objects (some cut by the border), 0-2 negative blobs (holes, rings), smooth
    background noise from a bicubically upsampled 14x14 grid, min-max normalized. 2% of the maps are all
    zeros (empty), 2% constant 0.5.
    """
    kind = rng.random()
    if kind < 0.04:
        value = 0.0 if kind < 0.02 else 0.5
        return np.full((size, size), value), [[int(rng.integers(0, size // 2)), 10, size - 1, size - 20]]
    grid = rng.normal(0, 0.08, (14, 14))
    raw = np.asarray(cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC), dtype=np.float64)
    boxes = []
    for _ in range(int(rng.integers(1, 6))):
        center = rng.uniform(-0.05, 1.05, 2) * size
        sigma = rng.uniform(0.04, 0.2, 2) * size
        raw += rng.uniform(0.4, 1.0) * _gaussian(size, center, sigma)
        low, high = np.clip(center - 1.5 * sigma, 0, size - 1), np.clip(center + 1.5 * sigma, 0, size - 1)
        boxes.append([int(low[0]), int(low[1]), int(high[0]), int(high[1])])
    for _ in range(int(rng.integers(0, 3))):
        amplitude = rng.uniform(0.3, 0.8)  # drawn in this order: the same maps for the same --seed
        center, sigma = rng.uniform(0.2, 0.8, 2) * size, rng.uniform(0.02, 0.06, 2) * size
        raw -= amplitude * _gaussian(size, center, sigma)
    raw -= raw.min()
    return raw / raw.max(), boxes


def write_dataset(root: Path, count: int, seed: int) -> tuple[Path, Path, Path]:
    """Write ``count`` maps (float32 ``.npy``), masks (uint8 0/1/255 ``.npy``) and wsoleval metadata."""
    rng = np.random.default_rng(seed)
    ids, sizes, boxes = [], {}, {}
    for index in range(count):
        image_id = f"test/{index % 200:03d}.class/img_{index:05d}.jpg"
        scoremap, map_boxes = realistic_map(rng)
        width, height = int(rng.integers(200, 501)), int(rng.integers(200, 501))
        scale = np.array([width, height, width, height]) / MAP_SIZE
        ids.append(image_id)
        sizes[image_id] = (width, height)
        boxes[image_id] = np.minimum(np.floor(np.asarray(map_boxes) * scale), [width, height, width, height])
        truth = np.roll(scoremap, int(rng.integers(-12, 13)), axis=1)  # masks that the map misses in part
        mask = (truth > 0.5).astype(np.uint8)
        mask[(truth > 0.4) & (truth <= 0.5)] = 255  # an ignore band at the object's edge
        for folder, array in (("maps", scoremap.astype(np.float32)), ("masks", mask)):
            path = root / folder / f"{image_id}.npy"
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, array)
    write_wsoleval_metadata(root / "meta", ids, dict.fromkeys(ids, 0), sizes, boxes)
    return root / "meta", root / "maps", root / "masks"


# ------------------------------------------------------------------------------------ measuring


class PeakRSS:
    """Samples, every ``period`` seconds, the resident memory (RSS) of this process, the unique memory (USS: not
    shared with their parent) of its descendants (the fork server and the pool workers it forks), and the CPU
    time of those descendants.

    The workers are the fork server's children, not ours, so ``RUSAGE_CHILDREN`` never counts them: their CPU
    time is read from psutil instead, the last sample of each process minus its time when sampling started
    (a worker's final ``period`` after its last sample is missed).
    """

    def __init__(self, period: float = 0.05) -> None:
        self.period, self.peak_main, self.peak_workers = period, 0, 0
        self._baseline: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def descendants_cpu_s(self) -> float:
        """CPU seconds (user + system) the descendants spent while sampling."""
        return sum(seconds - self._baseline.get(pid, 0.0) for pid, seconds in self._last.items())

    def _sample(self, me: psutil.Process) -> None:
        main, unique = me.memory_info().rss, 0
        for child in me.children(recursive=True):
            try:
                unique += child.memory_full_info().uss
                times = child.cpu_times()
            except psutil.Error:  # it exited between listing and reading
                continue
            self._last[child.pid] = times.user + times.system
        self.peak_main = max(self.peak_main, main)
        self.peak_workers = max(self.peak_workers, unique)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample(psutil.Process())
            self._stop.wait(self.period)

    def __enter__(self) -> PeakRSS:
        self._sample(psutil.Process())
        self._baseline = dict(self._last)  # processes alive before (the fork server of an earlier run)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(function: Callable[[], _T]) -> tuple[_T, float]:
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished, reaped children (not the fork server's
    workers: :class:`PeakRSS` samples those)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def reference_on(meta_dir: Path, maps_dir: Path, masks_dir: Path, interval: float) -> dict:
    """The literal reference on a metadata folder, loading maps as wsoleval does (float64)."""
    meta = read_wsoleval_metadata(meta_dir)
    maps = [np.load(maps_dir / f"{i}.npy").astype(np.float64) for i in meta.image_ids]
    gts = [rescale_boxes(meta.boxes[i], meta.sizes[i], MAP_SIZE) for i in meta.image_ids]
    masks = [np.load(masks_dir / f"{i}.npy") for i in meta.image_ids]
    result = reference_box_metrics(maps, gts, interval=interval)
    result["pxap"] = reference_pxap(maps, masks, interval=interval)
    return result


def restrict_metadata(meta_dir: Path, subset_dir: Path, count: int) -> None:
    meta = read_wsoleval_metadata(meta_dir)
    ids = meta.image_ids[:count]
    write_wsoleval_metadata(subset_dir, ids, meta.labels, meta.sizes, meta.boxes)


def run_one(count: int, args: argparse.Namespace, scratch: Path) -> dict:
    root = scratch / f"n{count}"
    (meta, maps, masks), generate_s = timed(lambda: write_dataset(root, count, args.seed))
    load_before = os.getloadavg()[0]
    subset = min(args.reference_subset, count)
    restrict_metadata(meta, root / "meta_subset", subset)
    print(f"[n={count}] wrote maps in {generate_s:.1f} s; reference on {subset} images ...", file=sys.stderr)
    cpu_start = cpu_seconds()
    reference, reference_s = timed(lambda: reference_on(root / "meta_subset", maps, masks, args.interval))
    reference_cpu_s = cpu_seconds() - cpu_start
    fast_subset = evaluate_scoremaps(
        root / "meta_subset", maps, interval=args.interval, mask_dir=masks, workers=args.workers, progress=False
    )
    if fast_subset != reference:
        raise SystemExit(f"MISMATCH on the {subset}-image subset:\nreference {reference}\nfast      {fast_subset}")
    print(f"[n={count}] subset agrees exactly; fast evaluator on all {count} images ...", file=sys.stderr)
    cpu_start = cpu_seconds()
    with PeakRSS() as memory:
        fast, fast_s = timed(
            lambda: evaluate_scoremaps(
                meta, maps, interval=args.interval, mask_dir=masks, workers=args.workers, progress=not args.no_progress
            )
        )
    fast_cpu_s = cpu_seconds() - cpu_start + memory.descendants_cpu_s
    reference_full_s = reference_s / subset * count
    reference_full_cpu_s = reference_cpu_s / subset * count
    return {
        "n_images": count,
        "interval": args.interval,
        "workers": args.workers or os.cpu_count(),
        "reference_subset": subset,
        "reference_s_subset": round(reference_s, 2),
        "reference_s_extrapolated": round(reference_full_s, 1),
        "fast_s": round(fast_s, 2),
        "speedup": round(reference_full_s / fast_s, 1),
        "subset_agrees_exactly": True,
        "reference_cpu_s_extrapolated": round(reference_full_cpu_s, 1),
        "fast_cpu_s": round(fast_cpu_s, 1),
        "cpu_time_ratio": round(reference_full_cpu_s / fast_cpu_s, 1),
        "peak_rss_main_mb": round(memory.peak_main / 2**20),
        "peak_uss_workers_mb": round(memory.peak_workers / 2**20),
        "maxboxacc": round(fast["maxboxacc"], 3),
        "maxboxacc_v2": round(fast["maxboxacc_v2"], 3),
        "pxap": round(fast["pxap"], 3),
        "cpu_count": os.cpu_count(),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "load1_before": round(load_before, 2),
        "load1_after": round(os.getloadavg()[0], 2),
    }


def run_python(arguments: list[str], pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` as a fresh process, ``OMP_NUM_THREADS=1``, output captured, importing the ``wsol_utils``
    of ``pythonpath`` (a folder holding another commit's copy) or, without it, this checkout's."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), env.get("PYTHONPATH", "")])
    # `python -m` and `-c` put the working folder first on sys.path, before PYTHONPATH: run in the folder whose
    # wsol_utils is meant (from the repository root, the other commit's copy would never be imported)
    folder = REPOSITORY if pythonpath is None else pythonpath
    command = [sys.executable, *arguments]
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False, cwd=folder)


def evaluate_command(meta: Path, maps: Path, interval: float, pythonpath: Path | None = None) -> tuple[dict, float]:
    """Run ``python -m wsol_utils evaluate`` (all cores, no bar) with :func:`run_python`; its result dict and its
    wall time (interpreter start to exit), seconds."""
    arguments = ["-m", "wsol_utils", "evaluate", "--metadata-dir", str(meta)]
    arguments += ["--scoremap-dir", str(maps), "--interval", str(interval), "--no-progress"]
    start = time.perf_counter()
    done = run_python(arguments, pythonpath)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"evaluate failed ({pythonpath or 'this checkout'}):\n{done.stderr}")
    return json.loads(done.stdout), seconds


def imported_package(pythonpath: Path | None) -> Path:
    """The ``wsol_utils`` folder that :func:`evaluate_command` runs with ``pythonpath`` (both through
    :func:`run_python`), so that a comparison can check it measured the code it names."""
    done = run_python(["-c", "import os, wsol_utils; print(os.path.dirname(wsol_utils.__file__))"], pythonpath)
    if done.returncode != 0:
        raise SystemExit(f"importing wsol_utils failed ({pythonpath or 'this checkout'}):\n{done.stderr}")
    return Path(done.stdout.strip()).resolve()


def reference_boxes_on(meta_dir: Path, maps_dir: Path, interval: float) -> dict:
    """The literal reference's MaxBoxAcc and MaxBoxAccV2 (no PxAP), loading maps as wsoleval does (float64)."""
    meta = read_wsoleval_metadata(meta_dir)
    maps = [np.load(maps_dir / f"{i}.npy").astype(np.float64) for i in meta.image_ids]
    gts = [rescale_boxes(meta.boxes[i], meta.sizes[i], MAP_SIZE) for i in meta.image_ids]
    return reference_box_metrics(maps, gts, interval=interval)


def _spread(values: list[float]) -> str:
    """``median [min-max]`` of ``values`` with 2 decimals."""
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def whole_process(count: int, args: argparse.Namespace, scratch: Path) -> tuple[list[dict], list[dict]]:
    """Interleaved rounds of the reference (first ``--reference-rounds`` rounds; on the subset, extrapolated),
    the ``evaluate`` command of this checkout and, with ``--before``, that commit's; ``(per-round rows, summary)``."""
    from bench_train_throughput import checkout_engine, cpu_description

    meta, maps, _ = write_dataset(scratch / f"n{count}", count, args.seed)
    subset = min(args.reference_subset, count)
    restrict_metadata(meta, scratch / "meta_subset", subset)
    before = None if args.before is None else checkout_engine(args.before, scratch / "before")
    variants = {"now": None} if before is None else {"now": None, "before": before}
    for name, path in variants.items():  # exactness of the command itself, and a warm file cache
        expected, imported = (REPOSITORY if path is None else path.resolve()) / "wsol_utils", imported_package(path)
        if imported != expected:
            raise SystemExit(f"the {name} command would import {imported}, not {expected}")
        if evaluate_command(scratch / "meta_subset", maps, args.interval, path)[0] != reference_boxes_on(
            scratch / "meta_subset", maps, args.interval
        ):
            raise SystemExit(f"MISMATCH: the {name} command differs from the reference on the subset")
    rows = []
    for round_index in range(args.rounds):
        row: dict[str, Any] = {
            "round": round_index + 1,
            "n_images": count,
            "load1_before": round(os.getloadavg()[0], 2),
        }
        if round_index < args.reference_rounds:
            _, seconds = timed(lambda: reference_boxes_on(scratch / "meta_subset", maps, args.interval))
            row["reference_s_extrapolated"] = round(seconds / subset * count, 1)
        for name, path in variants.items():
            result, row[f"{name}_process_s"] = evaluate_command(meta, maps, args.interval, path)
            row[f"{name}_process_s"] = round(row[f"{name}_process_s"], 2)
            row[f"{name}_maxboxacc_v2"] = round(result["maxboxacc_v2"], 3)
        row["load1_after"] = round(os.getloadavg()[0], 2)
        rows.append(row)
        print(f"[n={count}] round {round_index + 1}: {row}", file=sys.stderr, flush=True)
    reference = [row["reference_s_extrapolated"] for row in rows if "reference_s_extrapolated" in row]
    summary = []
    for name in variants:
        process_s = [row[f"{name}_process_s"] for row in rows]
        ratios = [statistics.median(reference) / value for value in process_s]
        summary.append(
            {
                "command": f"evaluate ({name}{'' if name == 'now' else ': ' + args.before})",
                "n_images": count,
                "interval": args.interval,
                "rounds": args.rounds,
                "process_s_median_range": _spread(process_s),
                "reference_rounds": len(reference),
                "reference_subset": subset,
                "reference_s_median_range": _spread(reference),
                "ratio_median_range": _spread(ratios),
                "cpu": cpu_description(),
                "opencv": cv2.__version__,
                "numpy": np.__version__,
                "load1_range": f"{min(r['load1_before'] for r in rows)}-{max(r['load1_after'] for r in rows)}",
            }
        )
    return rows, summary


def write_results(rows: list[dict], stem: str, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(dict.fromkeys(key for row in rows for key in row)))
    writer.writeheader()
    writer.writerows(rows)
    header = "| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]) + "\n"
    markdown = header + "".join("| " + " | ".join(str(row.get(k, "")) for k in rows[0]) + " |\n" for row in rows)
    for suffix, text in ((".csv", buffer.getvalue()), (".md", markdown)):
        target = results / f"{stem}{suffix}"
        temporary = target.with_name(f".{target.name}.tmp")
        temporary.write_text(text)
        os.replace(temporary, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 5000], help="data set sizes (default 1000 5000)")
    parser.add_argument("--interval", type=float, default=0.001, help="CAM threshold step (default 0.001)")
    parser.add_argument(
        "--reference-subset",
        type=int,
        default=40,
        help="images the reference is timed and checked on; its time is extrapolated to N",
    )
    parser.add_argument("--workers", type=int, default=None, help="fast evaluator's processes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stem", default="bench_boxeval", help="result file name under --results-dir")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS, help="folder of the result files (default benchmarks/results/)"
    )
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--whole-process", action="store_true", help="time the whole evaluate command (see above)")
    parser.add_argument("--rounds", type=int, default=3, help="--whole-process: interleaved rounds (default 3)")
    parser.add_argument(
        "--reference-rounds", type=int, default=1, help="--whole-process: rounds that also time the reference"
    )
    parser.add_argument("--before", default=None, help="--whole-process: also time this commit's evaluate command")
    args = parser.parse_args(argv)
    if args.whole_process:
        return main_whole_process(args)
    rows = []
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench_boxeval_") as scratch:
        for count in args.n:
            row = run_one(count, args, Path(scratch))
            rows.append(row)
            print(
                f"n={count}: reference {row['reference_s_extrapolated']} s (extrapolated from "
                f"{row['reference_subset']} images), fast {row['fast_s']} s on {row['workers']} processes -> "
                f"{row['speedup']}x wall, {row['cpu_time_ratio']}x less CPU time; "
                f"peak RSS main {row['peak_rss_main_mb']} MB, workers' own memory "
                f"{row['peak_uss_workers_mb']} MB; numbers agree exactly on the subset",
                flush=True,
            )
    write_results(rows, args.stem, args.results_dir)
    print(f"wrote {args.results_dir / args.stem}.csv and .md")
    return 0


def main_whole_process(args: argparse.Namespace) -> int:
    """``--whole-process``: per-round rows to ``<stem>_process_rounds`` and the summary to ``<stem>_process``."""
    rounds, summary = [], []
    with tempfile.TemporaryDirectory(prefix="bench_boxeval_") as scratch:
        for count in args.n:
            count_rounds, count_summary = whole_process(count, args, Path(scratch))
            rounds += count_rounds
            summary += count_summary
    for row in summary:
        print(
            f"n={row['n_images']} {row['command']}: {row['process_s_median_range']} s whole process vs reference "
            f"{row['reference_s_median_range']} s -> {row['ratio_median_range']}x (median [range]); {row['cpu']}",
            flush=True,
        )
    write_results(rounds, f"{args.stem}_process_rounds", args.results_dir)
    write_results(summary, f"{args.stem}_process", args.results_dir)
    print(f"wrote {args.results_dir / args.stem}_process.csv / .md and _process_rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
