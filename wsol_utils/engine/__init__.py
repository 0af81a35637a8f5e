"""Layer 4, engine. One run API for all methods: :class:`RunConfig`, :func:`train`, :func:`load_run`, :func:`evaluate`.

Example::

    from wsol_utils.engine import RunConfig, train, evaluate
    run = train(RunConfig(method="acol", delta=0.6))          # runs/acol-<key>, cached and resumable
    result = evaluate(run, split="test", fusion="max")         # records DataFrame + summary dict

The function :func:`evaluate` shadows the submodule of the same name on purpose (imported eagerly below);
reach the module as ``sys.modules["wsol_utils.engine.evaluate"]`` if ever needed. Besides the run API: the
baselines (:mod:`~wsol_utils.engine.baselines`), other CAM libraries' maps (:mod:`~wsol_utils.engine.cam_bridge`)
and the CAM equivalence check (:mod:`~wsol_utils.engine.equivalence`).

May import: base, nets, scoring, data.
"""

from __future__ import annotations

from wsol_utils.engine.checkpoint import CheckpointError, RunDirError, RunDirMismatchError
from wsol_utils.engine.config import INSTRUMENT, RunConfig, paper_config
from wsol_utils.engine.evaluate import EvalResult, evaluate, evaluate_cached, tau_curve
from wsol_utils.engine.examples import ExampleMaps, example_maps
from wsol_utils.engine.pool import train_many
from wsol_utils.engine.run import RunFiles, build_model, load_run, run_files
from wsol_utils.engine.train import TrainingDivergedError, read_history, train

__all__ = [
    "INSTRUMENT",
    "CheckpointError",
    "EvalResult",
    "ExampleMaps",
    "RunConfig",
    "RunDirError",
    "RunDirMismatchError",
    "RunFiles",
    "TrainingDivergedError",
    "build_model",
    "evaluate",
    "evaluate_cached",
    "example_maps",
    "load_run",
    "paper_config",
    "read_history",
    "run_files",
    "tau_curve",
    "train",
    "train_many",
]
