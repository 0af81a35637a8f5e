"""Atomic checkpoints (model, optimizer, scheduler, epoch, RNG states, history) and the run directory's files.

A run directory holds ``config.json``, ``history.csv``, ``checkpoint.pt`` (rewritten atomically after each
epoch: temp file in the same folder, then :func:`os.replace`), ``train.lock`` (the one writer's lock) and
``done.json`` once training finished.

Trust: a checkpoint is untrusted input. It is read with ``torch.load(weights_only=True)`` only, so a pickled object
in it never runs; everything the checkpoint holds is tensors, numbers, strings, lists and dicts (the NumPy RNG state
as a tensor, see :func:`rng_state`). A finished run's ``done.json`` records the config's epochs, the checkpoint's
epoch and its sha256 (:func:`~wsol_utils.base.atomic.file_sha256`); :func:`verify_done` / :func:`check_done` check them.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import re
import socket
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wsol_utils.base.atomic import file_sha256, write_atomic, write_text_atomic
from wsol_utils.engine.config import RunConfig

CONFIG_FILE = "config.json"
HISTORY_FILE = "history.csv"
CHECKPOINT_FILE = "checkpoint.pt"
DONE_FILE = "done.json"
LOCK_FILE = "train.lock"

#: ``done.json``'s format: 2 records ``checkpoint_epoch`` and ``checkpoint_sha256`` (1, before: neither).
DONE_FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint (or the ``done.json`` that vouches for it) cannot be trusted: truncated, corrupt, tampered
    with, or from another program. The message names the file and the fix."""


class CheckpointDigestError(CheckpointError):
    """A finished run's checkpoint no longer has the sha256 its ``done.json`` recorded (corrupt or replaced)."""


class RunDirError(ValueError):
    """A run directory cannot be used (a file stands at its path, or it cannot be written)."""


class RunDirMismatchError(RunDirError):
    """A run directory holds a run of another (training-relevant) config."""


def _restart_hint(path: Path) -> str:
    return f"delete {path} (or train with restart=True / --restart) to start the run over"


# -- RNG states ----------------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA, when present) RNG states, as types ``torch.load(weights_only=True)``
    reads: the Python state is a tuple of ints, the NumPy one a dict of its MT19937 key (int64 tensor of 624
    values in [0, 2^32)), position and Gaussian cache."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        # the legacy global NumPy RNG (np.random.*) is process state that code outside this package may draw
        # from; a resumed run restores it to continue the same stream (a Generator would not capture it)
        "numpy": numpy_state_to_plain(np.random.get_state()),  # noqa: NPY002
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def numpy_state_to_plain(state: Any) -> dict[str, Any]:
    """``np.random.get_state()``'s tuple ``(name, key uint32[624], pos, has_gauss, cached_gaussian)`` as a dict of
    a tensor and numbers (what a checkpoint stores); :func:`numpy_state_from_plain` is the inverse."""
    name, key, pos, has_gauss, cached_gaussian = state
    return {
        "bit_generator": str(name),
        "key": torch.from_numpy(np.asarray(key, dtype=np.uint32).astype(np.int64)),
        "pos": int(pos),
        "has_gauss": int(has_gauss),
        "cached_gaussian": float(cached_gaussian),
    }


def numpy_state_from_plain(plain: dict[str, Any]) -> tuple[str, np.ndarray, int, int, float]:
    """The ``np.random.set_state`` tuple of :func:`numpy_state_to_plain`'s dict."""
    key = plain["key"]
    if not isinstance(key, torch.Tensor) or key.shape != (624,):
        raise ValueError(f"NumPy RNG key must be a tensor of 624 values, got {type(key).__name__}")
    name = plain["bit_generator"]
    return (
        str(name),
        key.numpy().astype(np.uint32),
        int(plain["pos"]),
        int(plain["has_gauss"]),
        float(plain["cached_gaussian"]),
    )


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(numpy_state_from_plain(state["numpy"]))  # noqa: NPY002 -- the legacy global RNG
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -- checkpoint files ----------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomically ``torch.save`` a checkpoint dict (keys: model, optimizer, scheduler, epoch, rng, history, ...);
    it must hold only what ``torch.load(weights_only=True)`` reads back."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


#: What a checkpoint written before the NumPy RNG state was stored as a tensor pickles besides tensors: the state's
#: uint32 key as a NumPy array. Only these may be let through the safe loader (allowlisted, nothing else).
LEGACY_NUMPY_GLOBALS: frozenset[str] = frozenset(
    {"numpy.dtype", "numpy.ndarray", "numpy._core.multiarray._reconstruct", "numpy.core.multiarray._reconstruct"}
)


def _legacy_numpy_allowlist() -> list[Any]:
    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    return [
        np.dtype,
        np.ndarray,
        (reconstruct, "numpy._core.multiarray._reconstruct"),
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        type(np.dtype(np.uint32)),  # the key's dtype class, which the unpickler builds (numpy.dtypes.UInt32DType)
    ]


def _load_weights_only(path: Path, map_location: str | torch.device) -> Any:
    """``torch.load(weights_only=True)``; a file that needs other globals is refused with :class:`CheckpointError`
    unless all it needs is :data:`LEGACY_NUMPY_GLOBALS` (a checkpoint of an earlier version, allowlisted)."""
    try:
        with warnings.catch_warnings():  # a file that is no torch checkpoint at all: the error below names it
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        unsafe = set(torch.serialization.get_unsafe_globals_in_checkpoint(path))
        if not unsafe:
            raise
        if not unsafe <= LEGACY_NUMPY_GLOBALS:
            foreign = ", ".join(sorted(unsafe - LEGACY_NUMPY_GLOBALS))
            raise CheckpointError(
                f"checkpoint {path} holds pickled Python objects ({foreign}) that no wsol_utils checkpoint "
                "contains; it was refused unread and none of its code ran (torch.load(weights_only=True)). It is "
                f"not from this suite or was tampered with: {_restart_hint(path)}"
            ) from None
    with torch.serialization.safe_globals(_legacy_numpy_allowlist()):
        return torch.load(path, map_location=map_location, weights_only=True)


def _normalise_legacy_rng(state: dict[str, Any]) -> None:
    """Rewrite a legacy checkpoint's NumPy RNG tuple (see :data:`LEGACY_NUMPY_GLOBALS`) as the plain dict."""
    rng = state.get("rng")
    if isinstance(rng, dict) and isinstance(rng.get("numpy"), tuple):
        rng["numpy"] = numpy_state_to_plain(rng["numpy"])


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``torch.load(weights_only=True)`` (no pickled code runs).

    A corrupt, foreign or tampered file (one holding pickled objects) raises :class:`CheckpointError` naming it and
    the fix; a checkpoint of an earlier version (NumPy RNG state as an array) loads, its state converted."""
    path = Path(path)
    hint = _restart_hint(path)
    try:
        state = _load_weights_only(path, map_location)
    except (FileNotFoundError, CheckpointError):
        raise
    except Exception as err:
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable ({type(err).__name__}); {hint}") from err
    if not isinstance(state, dict) or not {"model", "epoch"} <= set(state):
        raise CheckpointError(f"checkpoint {path} is not a wsol_utils checkpoint; {hint}")
    epoch = state["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise CheckpointError(f"checkpoint {path} records epoch={epoch!r}, not a count of epochs; {hint}")
    _normalise_legacy_rng(state)
    return state


# -- the run directory --------------------------------------------------------------------------------
def prepare_run_dir(run_dir: Path, config: RunConfig) -> None:
    """Create ``run_dir`` with ``config.json``, or check that the one there has the same training key.

    Raises:
        RunDirError: a file stands at ``run_dir`` (or above it), or it cannot be created.
        RunDirMismatchError: ``run_dir`` holds a run of another config.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(
            f"run directory {run_dir} is a file, not a folder; pass a folder (new, or a run directory of this "
            "config) as --run-dir / run_dir, or move that file away"
        )
    config_path = run_dir / CONFIG_FILE
    if config_path.exists():
        existing = read_config(run_dir)
        if existing.key() != config.key():
            new, old = config.training_fields(), existing.training_fields()  # optional fields: in one of them only
            changed = sorted(k for k in new.keys() | old.keys() if new.get(k) != old.get(k))
            raise RunDirMismatchError(
                f"run directory {run_dir} holds another config (differs in {', '.join(changed)}); "
                "use another directory or delete that one"
            )
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise RunDirError(
            f"cannot create run directory {run_dir} ({err.strerror or type(err).__name__}: a file stands in its "
            "path, or no permission); pass another --run-dir / --runs-dir"
        ) from err
    write_text_atomic(config_path, config.to_json())


def read_config(run_dir: str | Path) -> RunConfig:
    """The :class:`RunConfig` stored in a run directory; a ``config.json`` written before the ``precision`` or
    ``kernels`` field existed is a ``"fp32"`` / ``"torch"`` run (whatever the defaults are now)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {run_dir} is not a run directory (train one first)")
    config = RunConfig.from_json(path)
    stored = json.loads(path.read_text(encoding="utf-8"))
    for name, before in (("precision", "fp32"), ("kernels", "torch")):
        if name not in stored:
            config = config.replace(**{name: before})
    return config


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run directory's one-writer lock: an exclusive ``flock`` on ``run_dir/train.lock``, which records
    the holder (``pid <n> on <host>``). A second process waits for it, saying once on stderr who holds it.

    Not POSIX (no ``fcntl``): no lock. Raises :class:`RunDirError` when the lock file cannot be opened (a
    read-only run directory)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: one writer at a time is the caller's business
        yield
        return
    path = run_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise RunDirError(
            f"cannot open the lock file {path} ({err.strerror or type(err).__name__}); the run directory must be "
            "writable to train in it: fix its permissions or pass another --run-dir"
        ) from err
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            print(
                f"waiting for {run_dir}: {holder} is training it (lock {path}); this process goes on when it is done",
                file=sys.stderr,
                flush=True,
            )
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# -- done.json: a verified finish -------------------------------------------------------------------------
@dataclass(frozen=True)
class DoneRecord:
    """What ``done.json`` vouches for: the config's ``epochs``, the checkpoint's ``checkpoint_epoch`` and its
    ``checkpoint_sha256`` (both ``None`` in a ``done.json`` written before digests were recorded), and ``info``,
    the whole record (final metrics, wall time, backbone, ``pretrained_backbone``)."""

    path: Path
    epochs: int
    checkpoint_epoch: int | None
    checkpoint_sha256: str | None
    info: dict[str, Any]

    @property
    def has_digest(self) -> bool:
        """Whether the record carries the checkpoint's digest (written by this version)."""
        return self.checkpoint_sha256 is not None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _done_fix(path: Path) -> str:
    return (
        f"run `python -m wsol_utils train` for this run again (it checks the checkpoint and rewrites {path.name}, "
        "training the missing epochs if any), or --restart"
    )


def read_done(run_dir: str | Path) -> DoneRecord | None:
    """Parse ``run_dir/done.json`` (``None`` when absent); a corrupt record raises :class:`CheckpointError` naming
    the file and the fix. Checks the record's own shape only; :func:`check_done` checks it against the run."""
    path = Path(run_dir) / DONE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is unreadable ({type(err).__name__}); {_done_fix(path)}") from err
    try:
        info = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is corrupt (not JSON: {err}); {_done_fix(path)}") from None
    if not isinstance(info, dict) or not _is_count(info.get("epochs")):
        raise CheckpointError(f"{path} is corrupt (no positive integer 'epochs'); {_done_fix(path)}")
    digest, epoch = info.get("checkpoint_sha256"), info.get("checkpoint_epoch")
    if digest is None and epoch is None:  # format 1: before checkpoint digests
        return DoneRecord(path, info["epochs"], None, None, info)
    if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) and _is_count(epoch)):
        raise CheckpointError(
            f"{path} is corrupt (checkpoint_epoch={epoch!r}, checkpoint_sha256={digest!r}); {_done_fix(path)}"
        )
    return DoneRecord(path, info["epochs"], epoch, digest, info)


def check_done(run_dir: str | Path, config: RunConfig | None = None) -> DoneRecord | None:
    """The run's :class:`DoneRecord` checked against the run (``None`` when there is no ``done.json``).

    Checks: the record parses (:func:`read_done`); its ``epochs`` and ``checkpoint_epoch`` equal the config's
    (``config``, else ``config.json``); ``checkpoint.pt`` exists and its sha256 is the recorded one. A record
    without a digest (an earlier version's) is returned unchecked beyond its epochs: ``has_digest`` says so.

    Raises:
        CheckpointError: naming ``done.json`` (corrupt, other epochs) or ``checkpoint.pt`` (missing, another
            digest: changed since the run finished) and the fix.
    """
    run_dir = Path(run_dir)
    record = read_done(run_dir)
    if record is None:
        return None
    epochs = (config or read_config(run_dir)).epochs
    if record.epochs != epochs or record.checkpoint_epoch not in (None, epochs):
        raise CheckpointError(
            f"{record.path} says {record.epochs} epochs (checkpoint epoch {record.checkpoint_epoch}) but the run's "
            f"config trains {epochs}: it was not written by this run's last epoch; {_done_fix(record.path)}"
        )
    checkpoint = run_dir / CHECKPOINT_FILE
    if not checkpoint.is_file():
        raise CheckpointError(f"{record.path} marks the run done but {checkpoint} is missing; {_done_fix(record.path)}")
    if record.has_digest and file_sha256(checkpoint) != record.checkpoint_sha256:
        raise CheckpointDigestError(
            f"checkpoint {checkpoint} changed since the run finished (its sha256 differs from the one {record.path} "
            "recorded): it is corrupt or was replaced; retrain it: train with restart=True / --restart"
        )
    return record


def verify_done(run_dir: str | Path) -> DoneRecord | None:
    """The run's :class:`DoneRecord` if the run verifiably finished (:func:`check_done` passes and the record
    carries the checkpoint's digest), else ``None`` (not finished, or ``done.json`` / the checkpoint cannot be
    trusted). Never raises for a bad run directory."""
    try:
        record = check_done(run_dir)
    except (CheckpointError, ValueError, OSError):
        return None
    return record if record is not None and record.has_digest else None


def is_done(run_dir: str | Path) -> bool:
    """Whether training in ``run_dir`` verifiably finished (:func:`verify_done`)."""
    return verify_done(run_dir) is not None


def mark_done(run_dir: Path, config: RunConfig, checkpoint_epoch: int, info: dict[str, Any]) -> DoneRecord:
    """Write ``done.json`` atomically: ``info`` (final metrics, wall time, ``backbone`` and
    ``pretrained_backbone``) plus ``epochs``, ``checkpoint_epoch`` (the epoch of the checkpoint now in
    ``run_dir``, as its writer knows it) and that checkpoint's ``checkpoint_sha256``.

    Raises:
        CheckpointError: ``checkpoint_epoch`` is not the config's last epoch (the run is not finished).
    """
    checkpoint = run_dir / CHECKPOINT_FILE
    if checkpoint_epoch != config.epochs:
        raise CheckpointError(
            f"{checkpoint} holds epoch {checkpoint_epoch}, not the config's last ({config.epochs}); "
            f"{_restart_hint(checkpoint)}"
        )
    record = {
        **info,
        "format": DONE_FORMAT,
        "epochs": config.epochs,
        "checkpoint_epoch": checkpoint_epoch,
        "checkpoint_sha256": file_sha256(checkpoint),
    }
    write_text_atomic(run_dir / DONE_FILE, json.dumps(record, indent=2, sort_keys=True))
    return DoneRecord(run_dir / DONE_FILE, config.epochs, checkpoint_epoch, record["checkpoint_sha256"], record)


def check_checkpoint_epoch(state: dict[str, Any], record: DoneRecord | None, path: Path) -> None:
    """A finished run's loaded checkpoint must hold the record's (the config's last) epoch."""
    if record is not None and state["epoch"] != record.epochs:
        raise CheckpointError(
            f"{path} holds epoch {state['epoch']} but {record.path} marks the run done after {record.epochs} "
            f"epochs; {_restart_hint(path)}"
        )


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
