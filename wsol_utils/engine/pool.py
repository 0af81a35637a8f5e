"""``train_many(configs) -> run directories``: several independent runs (seeds, cells of a grid) trained at once
in worker processes, one CPU thread each (and glibc's allocator set to keep freed memory for reuse,
:func:`wsol_utils.base.allocator.reuse_freed_memory`).

The small models of the synthetic suite gain little from a second thread, so on a machine with ``N`` cores ``N``
runs side by side finish about ``N`` times sooner than one run after the other with ``N`` threads, and a notebook
that trains a grid keeps every core busy to the end. Each run is the engine's :func:`~wsol_utils.engine.train`
(cached, resumable, seeded by its config) in a fresh process with ``OMP_NUM_THREADS=1``, so its numbers do not
depend on how many runs share the machine. Finished runs are returned without starting a process; CUDA runs
and ``jobs=1`` train one after the other in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from wsol_utils.base.allocator import reuse_freed_memory
from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.distributed import resolve_device
from wsol_utils.engine.evaluate import evaluate_cached, is_cached
from wsol_utils.engine.train import resolve_run_dir, train

__all__ = ["WORKER_THREADS", "default_jobs", "train_many"]

#: CPU threads of each worker process (``OMP_NUM_THREADS``).
WORKER_THREADS = 1
_START_METHOD = "forkserver" if sys.platform.startswith("linux") else "spawn"
#: What the forkserver imports once before it forks the workers, so that no worker pays these imports again: torch,
#: torch._dynamo (which ``torch.optim``'s first optimizer imports: 1.6 s per process on an idle core), this package
#: and the evaluator (the same server forks ``boxeval``'s workers). The first pool of a process starts the server,
#: so its list wins; the workers' numbers do not depend on it (tests/test_engine_pool.py).
FORKSERVER_PRELOAD: tuple[str, ...] = ("torch", "torch._dynamo", "wsol_utils.engine", "wsol_utils.data.scoremaps")


def default_jobs() -> int:
    """Worker processes of :func:`train_many` when not given: ``WSOL_TRAIN_JOBS`` if set, else the number of
    cores this process may use. ``reproduce --jobs N`` sets it for each of its parallel lanes to the cores divided
    among the lanes (:func:`wsol_utils.ui.reproduce.lane_train_jobs`), so the lanes' workers together fill the cores
    once."""
    wanted = os.environ.get("WSOL_TRAIN_JOBS", "")
    if wanted:
        if not wanted.isdigit() or int(wanted) < 1:
            raise ValueError(f"WSOL_TRAIN_JOBS={wanted!r}: give a positive integer (1 trains one run at a time)")
        return int(wanted)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _uses_cuda(config: RunConfig) -> bool:
    return resolve_device(config.device).type == "cuda"


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = str(WORKER_THREADS)  # read by the engine's cpu_threads
    reuse_freed_memory()
    import torch

    torch.set_num_threads(WORKER_THREADS)


def train_many(
    configs: Sequence[RunConfig],
    runs_dir: str | Path = "runs",
    *,
    jobs: int | None = None,
    progress: bool = False,
    evaluations: Sequence[Sequence[Mapping[str, Any]]] | None = None,
) -> list[Path]:
    """Train every config (or reuse its finished run) and return the run directories, in the order given.

    Args:
        configs: the runs; duplicates are trained once.
        runs_dir: parent of the run directories (as :func:`~wsol_utils.engine.train`).
        jobs: worker processes (default :func:`default_jobs`); ``1`` trains in this process, one run at a time.
        progress: a bar counting finished runs.
        evaluations: per config, the :func:`~wsol_utils.engine.evaluate_cached` option sets to run right after
            its training, in the same worker, so that evaluations overlap with training; a later
            ``evaluate_cached`` with the same options reads the cache.

    Raises:
        ValueError: ``jobs < 1``.
        RuntimeError: a run failed in its worker; the message names the run and keeps the worker's error (the
            other runs keep their checkpoints and resume on the next call).
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise ValueError(f"train_many: jobs must be >= 1, got {jobs}")
    if evaluations is not None and len(evaluations) != len(configs):
        raise ValueError(f"train_many: {len(evaluations)} evaluations for {len(configs)} configs")
    dirs = [resolve_run_dir(config, runs_dir) for config in configs]
    jobs_of: dict[Path, _Job] = {}
    for run, config, option_sets in zip(dirs, configs, evaluations or [[]] * len(configs)):
        job = jobs_of.setdefault(run, _Job(config))
        job.evaluations += [dict(options) for options in option_sets if options not in job.evaluations]
    pending = {run: job for run, job in jobs_of.items() if not job.is_done(run)}
    in_pool = {run: job for run, job in pending.items() if jobs > 1 and not _uses_cuda(job.config)}
    bar = tqdm(total=len(pending), desc=f"training {len(pending)} run(s)", unit="run", disable=not progress)
    with bar:
        for job in (job for run, job in pending.items() if run not in in_pool):
            job.run(str(runs_dir))
            bar.update()
        if in_pool:
            _train_in_pool(in_pool, str(runs_dir), min(jobs, len(in_pool)), bar)
    return dirs


@dataclass
class _Job:
    """One run to train and the evaluations to cache after it."""

    config: RunConfig
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def is_done(self, run: Path) -> bool:
        """Trained, and every evaluation cached (a finished run may still owe an evaluation)."""
        return ckpt.is_done(run) and all(is_cached(run, **options) for options in self.evaluations)

    def run(self, runs_dir: str) -> str:
        """Train (or reuse) the run, then run its evaluations (cached)."""
        path = train(self.config, runs_dir=runs_dir, progress=False)
        for options in self.evaluations:
            evaluate_cached(path, **options)
        return str(path)


def _train_in_pool(configs: dict[Path, _Job], runs_dir: str, jobs: int, bar: tqdm) -> None:
    context = multiprocessing.get_context(_START_METHOD)
    if _START_METHOD == "forkserver":
        context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_init)
    try:
        futures = {pool.submit(job.run, runs_dir): run for run, job in configs.items()}
        for future in as_completed(futures):
            error = future.exception()
            if error is not None:
                raise RuntimeError(f"training {futures[future]} failed in a worker process: {error!r}") from error
            bar.update()
    finally:  # on an error or Ctrl-C the runs not started are dropped; those in progress keep their checkpoints
        pool.shutdown(wait=True, cancel_futures=True)
