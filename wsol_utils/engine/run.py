"""The run handle: the one module that knows a run folder's files, and turns a folder into ``(config, model)``.

A run folder (written by :func:`wsol_utils.engine.train`) holds:

- ``config.json`` -- the :class:`~wsol_utils.engine.config.RunConfig` (:data:`CONFIG_FILE`);
- ``history.csv`` -- one row an epoch (:data:`HISTORY_FILE`);
- ``checkpoint.pt`` -- the last completed epoch (:data:`CHECKPOINT_FILE`), ``train.lock`` (:data:`LOCK_FILE`);
- ``done.json`` -- once training finished: epochs and the checkpoint's sha256 (:data:`DONE_FILE`);
- derived caches, each checked against the checkpoint's sha256: ``maps/*.npz`` (:data:`MAP_CACHE_DIR`) and
  ``suite_eval/<key>.json/.csv`` (:data:`EVAL_CACHE_DIR`).

The formats (and the writers) live in :mod:`wsol_utils.engine.checkpoint`; everything outside the engine reaches
a run's files through :class:`RunFiles`, :func:`load_run` and the readers below, never by a file name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.engine.config import RunConfig
from wsol_utils.nets import models
from wsol_utils.nets.models import WSOLModel

CONFIG_FILE = ckpt.CONFIG_FILE
HISTORY_FILE = ckpt.HISTORY_FILE
CHECKPOINT_FILE = ckpt.CHECKPOINT_FILE
DONE_FILE = ckpt.DONE_FILE
LOCK_FILE = ckpt.LOCK_FILE
#: Folder of the map caches (``<run>/maps/<options>.npz``).
MAP_CACHE_DIR = "maps"
#: Default folder of :func:`wsol_utils.engine.evaluate_cached`'s entries (``<run>/suite_eval/<key>.json/.csv``).
EVAL_CACHE_DIR = "suite_eval"


@dataclass(frozen=True)
class RunFiles:
    """Paths of one run folder's files (nothing is read or created)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT_FILE

    @property
    def done(self) -> Path:
        return self.root / DONE_FILE

    def map_cache(self, name: str) -> Path:
        """``<run>/maps/<name>``: one map cache file."""
        return self.root / MAP_CACHE_DIR / name

    def eval_cache(self, cache: str = EVAL_CACHE_DIR) -> Path:
        """``<run>/<cache>/``: the folder of an evaluation cache's entries."""
        return self.root / cache


def run_files(run_dir: str | Path) -> RunFiles:
    """:class:`RunFiles` of ``run_dir`` (``~`` expanded)."""
    return RunFiles(Path(run_dir).expanduser())


def check_run_dir(run_dir: str | Path) -> Path:
    """``run_dir`` as a Path if it holds a run with a checkpoint, else ``FileNotFoundError`` saying what to do."""
    files = run_files(run_dir)
    if not files.root.is_dir():
        raise FileNotFoundError(
            f"run directory {files.root} does not exist: train a run first "
            "(wsol_utils.engine.train or python -m wsol_utils train) and pass its folder"
        )
    for path, hint in (
        (files.config, "it is not a run directory"),
        (files.checkpoint, "the run has no checkpoint yet (train it for at least one epoch)"),
    ):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {hint}")
    return files.root


def read_config_json(run_dir: str | Path, hint: str) -> dict[str, Any]:
    """The raw ``config.json`` of ``run_dir`` as a dict (older runs' keys kept as they are).

    Raises:
        FileNotFoundError: no ``config.json`` there; the message names the folder, then ``hint`` (what to pass
            instead).
    """
    files = run_files(run_dir)
    if not files.config.is_file():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {files.root}: {hint}")
    return dict(json.loads(files.config.read_text(encoding="utf-8")))


def run_pretrained_backbone(run_dir: str | Path) -> bool | None:
    """Whether run ``run_dir`` started from ImageNet weights, as training recorded it: the verified ``done.json``'s
    ``pretrained_backbone`` (:func:`wsol_utils.engine.checkpoint.verify_done`), else its last checkpoint's (an
    unfinished run, or a ``done.json`` that does not check out); ``None`` when neither says."""
    record = ckpt.verify_done(run_dir)
    if record is not None and "pretrained_backbone" in record.info:
        return bool(record.info["pretrained_backbone"])
    checkpoint = run_files(run_dir).checkpoint
    if checkpoint.is_file():
        state = ckpt.load_checkpoint(checkpoint)
        if "pretrained_backbone" in state:
            return bool(state["pretrained_backbone"])
    return None


def build_model(config: RunConfig, num_classes: int, *, pretrained: bool | None = None) -> WSOLModel:
    """:func:`wsol_utils.nets.models.create_model` for the config (weights initialised from the global torch RNG).

    The model trains with the fused CPU kernels when ``config.kernels == "fused"`` (:mod:`wsol_utils.nets.fused`).
    ``pretrained`` (when not ``None``) overrides ``config.model_kwargs["pretrained"]``: :func:`load_run` passes
    ``False`` since the checkpoint replaces the ImageNet weights anyway.
    """
    kwargs = dict(config.model_kwargs)
    if pretrained is not None:
        kwargs["pretrained"] = pretrained
    model = models.create_model(
        config.method,
        num_classes=num_classes,
        backbone=config.backbone,
        layout=config.layout,
        delta=config.delta,
        detach_complement=config.detach_complement,
        **kwargs,
    )
    model.fused_kernels = config.kernels == "fused"
    return model


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[RunConfig, WSOLModel]:
    """``(config, model)`` of a run directory, the model in eval mode on ``device`` with its last weights.

    A finished run is checked first (:func:`~wsol_utils.engine.checkpoint.check_done`: ``done.json`` intact, the
    config's epochs, the checkpoint's recorded sha256); an unfinished one loads its last completed epoch.

    Raises:
        FileNotFoundError: no ``config.json`` or no checkpoint yet.
        CheckpointError: ``done.json`` or the checkpoint cannot be trusted (corrupt, changed since the run finished,
            pickled code, another architecture); the message names the file and the fix.
    """
    run_dir = Path(run_dir)
    config = ckpt.read_config(run_dir)
    path = run_files(run_dir).checkpoint
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the run has not completed an epoch yet (train it first)")
    record = ckpt.check_done(run_dir, config)
    state = ckpt.load_checkpoint(path)
    ckpt.check_checkpoint_epoch(state, record, path)
    with torch.random.fork_rng(devices=[]):  # no ImageNet file read: the checkpoint replaces those weights
        model = build_model(config, int(state["num_classes"]), pretrained=False)
    ckpt.load_model_state(model, state, path)
    model.pretrained_backbone = bool(state.get("pretrained_backbone", False))
    return config, model.to(device).eval()
