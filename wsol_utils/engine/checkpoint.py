"""Atomic checkpoints (model, optimizer, scheduler, epoch, RNG states) and the run directory's files.

A run directory holds ``config.json``, ``history.csv``, ``checkpoint.pt`` (rewritten atomically after each
epoch: temp file in the same folder, then :func:`os.replace`) and ``done.json`` once training finished.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsol_utils.atomic import write_atomic, write_text_atomic
from wsol_utils.engine.config import RunConfig

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"
DONE_FILE = "done.json"


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (truncated, corrupt, or from another program)."""


class RunDirMismatchError(ValueError):
    """A run directory holds a run of another (training-relevant) config."""


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA, when present) RNG states."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        # the legacy global NumPy RNG (np.random.*) is process state that code outside this package may draw
        # from; a resumed run restores it to continue the same stream (a Generator would not capture it)
        "numpy": np.random.get_state(),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])  # noqa: NPY002 -- restores the legacy global RNG saved by rng_state
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a checkpoint dict (keys: model, optimizer, scheduler, epoch, rng, ...)."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint; a corrupt or foreign file raises :class:`CheckpointError` naming it."""
    hint = f"delete {path} (or train with restart=True / --restart) to start the run over"
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except FileNotFoundError:
        raise
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); {hint}") from err
    if not isinstance(state, dict) or not {"model", "epoch"} <= set(state):
        raise CheckpointError(f"checkpoint {path} is not a wsol_utils checkpoint; {hint}")
    return state


def prepare_run_dir(run_dir: Path, config: RunConfig) -> None:
    """Create ``run_dir`` with ``config.json``, or check that the one there has the same training key."""
    config_path = run_dir / CONFIG_FILE
    if config_path.exists():
        existing = read_config(run_dir)
        if existing.key() != config.key():
            changed = sorted(k for k, v in config.training_fields().items() if existing.training_fields()[k] != v)
            raise RunDirMismatchError(
                f"run directory {run_dir} holds another config (differs in {', '.join(changed)}); "
                "use another directory or delete that one"
            )
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(config_path, config.to_json())


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` stored in a run directory."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run directory (train one first)")
    return RunConfig.from_json(path)


def is_done(run_dir: Path) -> bool:
    """Whether training in ``run_dir`` finished (``done.json`` and ``checkpoint.pt`` exist)."""
    return (run_dir / DONE_FILE).is_file() and (run_dir / CHECKPOINT_FILE).is_file()


def mark_done(run_dir: Path, info: dict[str, Any]) -> None:
    """Write ``done.json`` (final metrics, wall time, ``backbone`` and ``pretrained_backbone``) atomically."""
    write_text_atomic(run_dir / DONE_FILE, json.dumps(info, indent=2, sort_keys=True))


def load_model_state(model: torch.nn.Module, state: dict[str, Any], path: Path) -> None:
    """Load ``state["model"]`` into ``model``; a checkpoint of another backbone / architecture (missing, unexpected
    or mis-shaped tensors) raises :class:`CheckpointError` naming the file and both architectures."""
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        recorded = state.get("config")
        saved = recorded if isinstance(recorded, dict) else {}
        fields = ("method", "backbone", "layout", "model_kwargs")
        theirs = ", ".join(f"{k}={saved.get(k, '?')!r}" for k in fields)
        ours = ", ".join(
            f"{k}={v!r}"
            for k, v in (("method", getattr(model, "method", "?")), ("backbone", getattr(model, "backbone_name", "?")))
        )
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:2])[:300]
        raise CheckpointError(
            f"{path} does not fit the current model code: it holds another architecture than "
            f"{path.parent / CONFIG_FILE} describes (checkpoint: {theirs}; config builds {ours}; {detail}); use the "
            f"run directory it was trained in, or retrain: delete {path} (train with restart=True / --restart) to "
            "train this config from scratch"
        ) from err
