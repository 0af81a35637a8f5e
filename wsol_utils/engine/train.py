"""``train(config) -> run directory``: one loop for CAM, ACoL and HCLNet (loss ``CE(A) [+ CE(B)]``,
docs/methods.md §1.3).

- Cache: the run directory is ``runs_dir/<method>-<key>``; a verified finished run (``done.json`` vouching for the
  checkpoint's epoch and sha256, :func:`~wsol_utils.engine.checkpoint.verify_done`) is returned as is, an unfinished
  one resumes from its last completed epoch (model, optimizer, scheduler, RNG states, history).
- One writer per run directory: training holds the run's lock (:func:`~wsol_utils.engine.checkpoint.run_lock`);
  a second ``train`` of the same run waits for it, then looks again whether the run is done.
- Every epoch: a row in ``history.csv`` (loss, train/val accuracy, lr, images/s) and an atomic checkpoint that
  also stores every row so far (a crash between the two loses no row: resuming rewrites ``history.csv``).
- Ctrl-C keeps the last completed epoch's checkpoint and says how to resume; a non-finite loss, or a non-finite
  parameter after an epoch's last step, raises :class:`TrainingDivergedError` before anything is saved.
- CUDA: mixed precision (bf16 where supported, else fp16 with a grad scaler) and channels_last.
  CPU: all cores (``torch.set_num_threads``, restored afterwards); ``config.precision="bf16"`` runs the training
  forward under bf16 autocast (:mod:`wsol_utils.engine.precision`), validation stays float32.
- ``torchrun``: DistributedDataParallel + DistributedSampler; rank 0 writes the files.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

from wsol_utils import data
from wsol_utils.engine import checkpoint as ckpt
from wsol_utils.engine import distributed as ddp
from wsol_utils.engine.config import RunConfig
from wsol_utils.engine.optim import build_optimizer, build_scheduler
from wsol_utils.engine.precision import check_kernels
from wsol_utils.engine.run import build_model
from wsol_utils.nets.models import WSOLModel
from wsol_utils.scoring.pipeline import classification_logits

if TYPE_CHECKING:
    from wsol_utils.data.base import WSOLDataset

HISTORY_COLUMNS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "train_loss_a",
    "train_loss_b",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "seconds",
    "images_per_s",
)


class TrainingDivergedError(RuntimeError):
    """The loss or a parameter became NaN or infinite."""


# -- building blocks ------------------------------------------------------------------------------
def check_backbone_weights(config: RunConfig, model: nn.Module) -> None:
    """Refuse a run on real data with a randomly initialised vgg16 / resnet50 (docs/methods.md §1.2, §4).

    The papers' numbers need the ImageNet weights; a random backbone is allowed on a generated set, for the small
    backbone (never pretrained), and with ``config.allow_random_init`` (``--allow-random-init``, smoke tests).

    Raises:
        ValueError: naming the missing weights file, its URL, how to get it and ``--allow-random-init``.
    """
    from wsol_utils.nets import backbones

    if (
        not data.get_dataset(config.dataset).image_files
        or config.allow_random_init
        or getattr(model, "pretrained_backbone", False)
        or not backbones.has_pretrained_weights(config.backbone)
    ):
        return
    path, url = backbones.weights_path(config.backbone), backbones.weights_url(config.backbone)
    why = (
        "model_kwargs sets pretrained=False"
        if config.model_kwargs.get("pretrained") is False
        else f"the ImageNet weights file {path} is missing (and could not be downloaded)"
    )
    raise ValueError(
        f"refusing to train {config.method} on {config.dataset!r} with a randomly initialised {config.backbone} "
        f"backbone: {why}. Get the weights: download {url} to {path} (a run without --offline / WSOL_OFFLINE=1 "
        "downloads it there; TORCH_HOME moves torch's cache). For a smoke test only, --allow-random-init "
        "(RunConfig.allow_random_init=True) lets the run start with random weights."
    )


def make_loader(
    dataset: WSOLDataset,
    config: RunConfig,
    ctx: ddp.DistContext,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
) -> DataLoader:
    """DataLoader with :func:`wsol_utils.data.collate`; a DistributedSampler under DDP. ``generator`` draws the
    shuffle order and each epoch's base seed (torch's global RNG when ``None``, which the synthetic set's flips
    also read: give every loader of a run its own generator so that no loader shifts another's stream)."""
    from wsol_utils.data import collate

    sampler: Any = None
    if ctx.enabled:
        sampler = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=config.seed
        )
    elif shuffle:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        collate_fn=collate,
        num_workers=config.num_workers,
        pin_memory=ctx.device.type == "cuda",
        persistent_workers=config.num_workers > 0,
        drop_last=False,
        generator=generator,
    )


#: On the CPU a training batch runs in chunks of at most this many feature-map cells (images x h x w) and their
#: gradients are summed: a chunk's 32-channel activations (8 MB) then stay in cache, which makes the memory-bound
#: layers (ReLU and its backward, the spatial mean) about 2x faster where the features are large (the small CNN at
#: full resolution, 64 x 64 cells: chunks of 16 images). Smaller feature maps gain nothing (the whole batch is one
#: chunk). Measured in ``benchmarks/bench_train_throughput.py --micro-batch``.
CPU_CHUNK_CELLS = 65_536


def micro_batches(model: nn.Module, ctx: ddp.DistContext, images: torch.Tensor) -> list[slice]:
    """The chunks of a batch ``images (B, 3, H, W)`` that :func:`backward_batch` backpropagates one by one:
    slices of ``max(1, CPU_CHUNK_CELLS // (h * w))`` images, ``h x w`` the feature map (the last slice shorter),
    on the CPU; the whole batch on CUDA, under DistributedDataParallel (which syncs gradients on every backward),
    or when the model holds a batch-norm layer (its statistics depend on the batch, so chunks would change the
    result)."""
    from wsol_utils.nets.models import feature_stride

    batch_size = images.shape[0]
    batch_norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    has_batch_norm = any(isinstance(layer, batch_norms) for layer in model.modules())
    if ctx.device.type != "cpu" or ctx.enabled or has_batch_norm:
        return [slice(0, batch_size)]
    stride = feature_stride(model)
    cells = max(1, (images.shape[2] // stride) * (images.shape[3] // stride))
    size = max(1, CPU_CHUNK_CELLS // cells)
    return [slice(start, min(start + size, batch_size)) for start in range(0, batch_size, size)]


def autocast_context(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """Mixed precision on CUDA (bf16 if supported, else fp16) whatever ``precision`` says; on the CPU bf16 autocast
    when ``precision == "bf16"`` (a resolved ``RunConfig.precision``), else nothing (float32)."""
    if device.type != "cuda":
        if precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def branch_losses(output: Any, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``CE(logits_a, y)`` and ``CE(logits_b, y)`` (``None`` for CAM); logits ``(B, C)``, labels ``(B,)``."""
    loss_a = F.cross_entropy(output.logits_a.float(), labels)
    loss_b = None if output.logits_b is None else F.cross_entropy(output.logits_b.float(), labels)
    return loss_a, loss_b


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DistributedDataParallel wrapper."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


@contextlib.contextmanager
def cpu_threads(device: torch.device, world_size: int) -> Iterator[None]:
    """Use all cores (shared among local ranks) on CPU unless ``OMP_NUM_THREADS`` says otherwise (torchrun sets
    it to 1 per process); restore the thread count afterwards."""
    before = torch.get_num_threads()
    if device.type == "cpu":
        wanted = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(wanted) if wanted.isdigit() and int(wanted) > 0 else (os.cpu_count() or 1) // world_size
        torch.set_num_threads(max(1, threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def show_progress(progress: bool | None, ctx: ddp.DistContext) -> bool:
    """``None``: show bars only on rank 0 when stderr is a terminal."""
    if not ctx.is_main:
        return False
    return sys.stderr.isatty() if progress is None else bool(progress)


# -- history ---------------------------------------------------------------------------------------
def read_history(run_dir: str | Path) -> list[dict[str, str]]:
    """Rows of ``history.csv`` (strings; columns :data:`HISTORY_COLUMNS`, epochs 1, 2, ...); empty if none. Use
    ``pandas.read_csv`` for analysis.

    Raises:
        ValueError: the file is corrupt (not UTF-8 CSV, other columns, a short row, an epoch out of order, a value
            that is not a number); the message names it and the fix.
    """
    path = Path(run_dir) / ckpt.HISTORY_FILE
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows, columns = list(reader), reader.fieldnames
    except (UnicodeDecodeError, csv.Error) as err:
        problem: str | None = f"{type(err).__name__}: {err}"
    else:
        problem = _history_problem(columns, rows)
    if problem is not None:
        raise ValueError(
            f"{path} is corrupt ({problem}); `python -m wsol_utils train` on this run rewrites it from "
            f"{ckpt.CHECKPOINT_FILE} (a run of an earlier version, whose checkpoint holds no history: delete "
            f"{path.name}, losing its per-epoch rows, or --restart)"
        )
    return rows


def _history_problem(columns: Sequence[str] | None, rows: list[dict[str, str]]) -> str | None:
    """What is wrong with ``history.csv``'s header and rows, or ``None``."""
    if list(columns or []) != list(HISTORY_COLUMNS):
        return f"columns {list(columns or [])}, expected {list(HISTORY_COLUMNS)}"
    for number, row in enumerate(rows, start=1):
        if None in row or None in row.values():
            return f"row {number} has {'more' if None in row else 'fewer'} fields than the header"
        if row["epoch"] != str(number):
            return f"row {number} is epoch {row['epoch']!r}, expected {number}"
        for column in HISTORY_COLUMNS[1:]:
            try:
                float(row[column])
            except ValueError:
                return f"row {number}: {column}={row[column]!r} is not a number"
    return None


def write_history(run_dir: Path, rows: list[dict[str, Any]]) -> None:
    """Atomically rewrite ``history.csv`` with ``rows`` (columns :data:`HISTORY_COLUMNS`)."""

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    ckpt.write_atomic(run_dir / ckpt.HISTORY_FILE, write)


# -- one epoch -------------------------------------------------------------------------------------
@dataclass
class EpochStats:
    """Sums over an epoch's batches (this rank)."""

    loss: float = 0.0
    loss_a: float = 0.0
    loss_b: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, other: EpochStats) -> None:
        """Add another batch's sums into these."""
        self.loss += other.loss
        self.loss_a += other.loss_a
        self.loss_b += other.loss_b
        self.correct += other.correct
        self.count += other.count

    def as_tensor(self) -> torch.Tensor:
        return torch.tensor([self.loss, self.loss_a, self.loss_b, self.correct, self.count], dtype=torch.float64)


def backward_batch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    chunks: Sequence[slice],
    scaler: torch.amp.GradScaler | None = None,
    precision: str = "fp32",
) -> EpochStats:
    """Backpropagate the batch loss ``mean CE(A) [+ mean CE(B)]`` of ``images (B, 3, H, W)`` and ``labels (B,)``
    chunk by chunk (``chunks``: :func:`micro_batches`, or ``[slice(0, B)]`` for the whole batch at once): each
    chunk's loss is weighted by its share of the batch, so the gradients add up to the whole batch's (up to float
    rounding). The forward runs under :func:`autocast_context` of ``precision`` (the loss and backward outside it).
    The caller zeroes the gradients before and steps the optimizer after. Returns the batch's sums (losses,
    branch A top-1 hits, count)."""
    stats = EpochStats()
    for chunk in chunks:
        chunk_labels = labels[chunk]
        with autocast_context(images.device, precision):
            output = model(images[chunk], chunk_labels)
        loss_a, loss_b = branch_losses(output, chunk_labels)
        loss = loss_a if loss_b is None else loss_a + loss_b
        n = chunk_labels.shape[0]
        weighted = loss * (n / labels.shape[0])
        (weighted if scaler is None else scaler.scale(weighted)).backward()
        stats.add(
            EpochStats(
                loss=loss.item() * n,
                loss_a=loss_a.item() * n,
                loss_b=0.0 if loss_b is None else loss_b.item() * n,
                correct=(output.logits_a.argmax(1) == chunk_labels).sum().item(),
                count=n,
            )
        )
    return stats


@dataclass
class Trainer:
    """The state of one training run on one rank (model, optimizer, scheduler, loaders)."""

    config: RunConfig
    ctx: ddp.DistContext
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_loader: DataLoader
    val_loader: DataLoader | None
    progress: bool

    @property
    def wsol_model(self) -> WSOLModel:
        """The model without its DistributedDataParallel wrapper."""
        model = unwrap(self.model)
        assert isinstance(model, WSOLModel)  # _build_trainer trains build_model's model, DDP-wrapped or not
        return model

    def _check_parameters_finite(self, epoch: int) -> None:
        """After an epoch's last optimizer step (the per-batch loss check sees every step but that one): every
        parameter finite, else :class:`TrainingDivergedError` naming the first bad ones and the fix."""
        params = dict(unwrap(self.model).named_parameters())
        finite = torch.stack([torch.isfinite(p.detach()).all() for p in params.values()]).all()
        finite = ddp.all_reduce(finite.to(torch.int32).reshape(1), self.ctx, op="min")
        if not bool(finite.item()):
            bad = [name for name, p in params.items() if not bool(torch.isfinite(p.detach()).all())]
            raise TrainingDivergedError(
                f"{len(bad)} parameter tensor(s) are NaN or infinite after epoch {epoch + 1} ({', '.join(bad[:3])}"
                f"{', ...' if len(bad) > 3 else ''}; method={self.config.method}, lr={self.config.lr}, momentum="
                f"{self.config.momentum}, weight_decay={self.config.weight_decay}); lower the learning rate (--lr) "
                "or the weight decay (--weight-decay); nothing of this epoch was saved"
            )

    def _check_finite(self, loss: torch.Tensor, epoch: int, batch: int) -> None:
        finite = ddp.all_reduce(torch.isfinite(loss.detach()).to(torch.int32).reshape(1), self.ctx, op="min")
        if not bool(finite.item()):
            raise TrainingDivergedError(
                f"loss is {loss.item()} at epoch {epoch + 1}, batch {batch + 1} (method={self.config.method}, "
                f"lr={self.config.lr}); lower the learning rate (--lr), or check the data for broken images"
            )

    def train_epoch(self, epoch: int, generator: torch.Generator) -> EpochStats:
        """One pass over the training set; returns summed loss / accuracy (branch A top-1)."""
        self.model.train()
        generator.manual_seed(self.config.seed * 100_003 + epoch)
        if isinstance(self.train_loader.sampler, DistributedSampler):
            self.train_loader.sampler.set_epoch(epoch)
        channels_last = self.ctx.device.type == "cuda"
        stats = EpochStats()
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {epoch + 1}/{self.config.epochs}",
            leave=False,
            disable=not self.progress,
            unit="batch",
        )
        for batch_index, batch in enumerate(bar):
            images = batch.images.to(self.ctx.device, non_blocking=True)
            if channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            labels = batch.labels.to(self.ctx.device, non_blocking=True)
            self.optimizer.zero_grad(set_to_none=True)
            chunks = micro_batches(self.wsol_model, self.ctx, images)
            batch_stats = backward_batch(self.model, images, labels, chunks, self.scaler, self.config.precision)
            self._check_finite(torch.tensor(batch_stats.loss / batch_stats.count), epoch, batch_index)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            stats.add(batch_stats)
            bar.set_postfix(loss=f"{stats.loss / stats.count:.3f}", acc=f"{stats.correct / stats.count:.3f}")
        self._check_parameters_finite(epoch)
        return stats

    @torch.no_grad()
    def validate(self) -> tuple[float, float]:
        """``(loss, top-1 accuracy)`` on the val split (classification by ``logits_a [+ logits_b]``); float32 on the
        CPU whatever ``config.precision`` says (CUDA: its mixed precision)."""
        if self.val_loader is None:
            return math.nan, math.nan
        model = unwrap(self.model)
        model.eval()
        loss_sum = correct = count = 0.0
        for batch in self.val_loader:
            images, labels = batch.images.to(self.ctx.device), batch.labels.to(self.ctx.device)
            with autocast_context(self.ctx.device):
                output = model(images, labels)
            loss_a, loss_b = branch_losses(output, labels)
            loss_sum += (loss_a if loss_b is None else loss_a + loss_b).item() * labels.shape[0]
            correct += (classification_logits(output).argmax(1) == labels).sum().item()
            count += labels.shape[0]
        return loss_sum / count, correct / count

    def state(self, epoch: int, history: list[dict[str, Any]]) -> dict[str, Any]:
        """Checkpoint dict after ``epoch`` completed epochs, with the ``history`` rows of those epochs (plain
        values: what ``torch.load(weights_only=True)`` reads)."""
        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "rng": ckpt.rng_state(),
            "config": self.config.to_dict(),
            "num_classes": int(self.wsol_model.num_classes),
            "backbone": self.config.backbone,
            "pretrained_backbone": bool(getattr(unwrap(self.model), "pretrained_backbone", False)),
            "history": [dict(row) for row in history],
        }

    def load_state(self, state: dict[str, Any], path: Path) -> int:
        """Restore the checkpoint ``state`` read from ``path``; returns the number of completed epochs. A state
        that does not fit (another model, a damaged optimizer or RNG entry) raises :class:`CheckpointError`."""
        ckpt.load_model_state(unwrap(self.model), state, path)
        if "pretrained_backbone" in state:  # what the run started from, not what this session's build found
            self.wsol_model.pretrained_backbone = bool(state["pretrained_backbone"])
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.scaler.load_state_dict(state["scaler"])
            ckpt.set_rng_state(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise ckpt.CheckpointError(
                f"checkpoint {path} cannot be resumed ({type(err).__name__}: {err}); delete it (or train with "
                "restart=True / --restart) to start the run over"
            ) from err
        return int(state["epoch"])


# -- the entry point -------------------------------------------------------------------------------
def resolve_run_dir(config: RunConfig, runs_dir: str | Path = "runs", run_dir: str | Path | None = None) -> Path:
    """``run_dir`` if given, else ``runs_dir/<method>-<key>``."""
    return Path(run_dir) if run_dir is not None else Path(runs_dir) / config.run_name()


def _build_trainer(config: RunConfig, ctx: ddp.DistContext, progress: bool, generator: torch.Generator) -> Trainer:
    check_kernels(config.kernels, str(ctx.device), config.precision)
    train_set = config.dataset_for("train", train=True)
    val_set = config.dataset_for(config.val_split) if config.val_split else None
    model: nn.Module = build_model(config, train_set.num_classes)  # DDP-wrapped below under torchrun
    check_backbone_weights(config, model)  # no random VGG16 / ResNet50 in a run on real data
    model = model.to(ctx.device)
    if ctx.device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, config)
    train_loader = make_loader(train_set, config, ctx, shuffle=True, generator=generator)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch=len(train_loader))
    use_scaler = ctx.device.type == "cuda" and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler(ctx.device.type, enabled=use_scaler)
    if ctx.enabled:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
        )
    val_loader = None
    if val_set is not None and ctx.is_main:
        val_generator = torch.Generator().manual_seed(config.seed)  # validating leaves the training stream alone
        val_loader = make_loader(
            val_set, config, ddp.DistContext(device=ctx.device), shuffle=False, generator=val_generator
        )
    return Trainer(config, ctx, model, optimizer, scheduler, scaler, train_loader, val_loader, progress)


def _history_row(epoch: int, stats: torch.Tensor, val: tuple[float, float], lr: float, seconds: float) -> dict:
    loss, loss_a, loss_b, correct, count = stats.tolist()
    return {
        "epoch": epoch,
        "train_loss": loss / count,
        "train_loss_a": loss_a / count,
        "train_loss_b": loss_b / count,
        "train_acc": correct / count,
        "val_loss": val[0],
        "val_acc": val[1],
        "lr": lr,
        "seconds": round(seconds, 3),
        "images_per_s": round(count / seconds, 2),
    }


def train(
    config: RunConfig,
    runs_dir: str | Path = "runs",
    progress: bool | None = None,
    *,
    run_dir: str | Path | None = None,
    restart: bool = False,
) -> Path:
    """Train ``config`` (or resume it, or return it if finished) and return its run directory.

    Args:
        config: the run.
        runs_dir: parent of run directories; the run lives in ``runs_dir/<method>-<key>``.
        progress: tqdm bars (per epoch and per batch); ``None`` = only when stderr is a terminal.
        run_dir: an explicit run directory instead of ``runs_dir/<method>-<key>``; it must be empty or
            hold a run of the same training config.
        restart: discard an existing checkpoint / finished state and train from scratch.

    Raises:
        RunDirMismatchError: ``run_dir`` holds another config.
        CheckpointError: the checkpoint is corrupt (the message names the file).
        TrainingDivergedError: the loss became NaN/inf.
        KeyboardInterrupt: re-raised after keeping the last completed epoch's checkpoint.
    """
    ctx = ddp.setup(config.device)
    try:
        with (
            cpu_threads(ctx.device, ctx.world_size),
            torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []),
        ):
            return _train(
                config, resolve_run_dir(config, runs_dir, run_dir), ctx, show_progress(progress, ctx), restart
            )
    finally:
        ddp.teardown(ctx)


def _train(config: RunConfig, run_dir: Path, ctx: ddp.DistContext, progress: bool, restart: bool) -> Path:
    if ctx.is_main:
        ckpt.prepare_run_dir(run_dir, config)
    if not restart and not ctx.enabled and _finished_as_is(run_dir):  # no lock: a finished run may be read-only
        return run_dir
    with ckpt.run_lock(run_dir) if ctx.is_main else contextlib.nullcontext():  # rank 0 writes for all ranks
        return _train_locked(config, run_dir, ctx, progress, restart)


def _finished_as_is(run_dir: Path) -> bool:
    """Verifiably finished (:func:`~wsol_utils.engine.checkpoint.verify_done`) with an intact ``history.csv``."""
    record = ckpt.verify_done(run_dir)
    try:
        return record is not None and len(read_history(run_dir)) == record.checkpoint_epoch
    except ValueError:
        return False


def _train_locked(config: RunConfig, run_dir: Path, ctx: ddp.DistContext, progress: bool, restart: bool) -> Path:
    """:func:`train` under the run's lock (rank 0; the other ranks follow it through barriers)."""
    if ctx.is_main:
        if restart:
            for name in (ckpt.DONE_FILE, ckpt.CHECKPOINT_FILE, ckpt.HISTORY_FILE):
                (run_dir / name).unlink(missing_ok=True)
        _settle_done(run_dir, config)  # after waiting for the lock: another process may have finished
    ddp.barrier(ctx)
    if ckpt.is_done(run_dir):
        return run_dir
    torch.manual_seed(config.seed)
    generator = torch.Generator()
    trainer = _build_trainer(config, ctx, progress, generator)
    start_epoch, history = 0, []
    checkpoint_path = run_dir / ckpt.CHECKPOINT_FILE
    if checkpoint_path.exists():
        state = ckpt.load_checkpoint(checkpoint_path, map_location=ctx.device)
        start_epoch = trainer.load_state(state, checkpoint_path)
        history = _resumed_history(run_dir, state, start_epoch)
        if ctx.is_main:  # the rows the checkpoint stores, whatever happened to history.csv after it was saved
            write_history(run_dir, history)
        if ctx.enabled:  # every rank continues from its own RNG stream, not rank 0's
            torch.manual_seed(config.seed * 7919 + start_epoch * 31 + ctx.rank)
    if ctx.enabled and start_epoch == 0:
        torch.manual_seed(config.seed * 7919 + ctx.rank)  # different augmentation per rank
    started = time.perf_counter()
    epoch = start_epoch
    try:
        for epoch in tqdm(
            range(start_epoch, config.epochs),
            desc=config.run_name(),
            disable=not progress,
            initial=start_epoch,
            total=config.epochs,
            unit="epoch",
        ):
            tic = time.perf_counter()
            stats = ddp.all_reduce(trainer.train_epoch(epoch, generator).as_tensor(), ctx)
            seconds = time.perf_counter() - tic
            if ctx.is_main:
                history.append(
                    _history_row(
                        epoch + 1, stats, trainer.validate(), float(trainer.scheduler.get_last_lr()[0]), seconds
                    )
                )
                ckpt.save_checkpoint(checkpoint_path, trainer.state(epoch + 1, history))
                write_history(run_dir, history)
            ddp.barrier(ctx)
    except KeyboardInterrupt:
        if ctx.is_main:
            print(
                f"\ninterrupted during epoch {epoch + 1}; {checkpoint_path} keeps the last completed epoch "
                f"({epoch}). Run the same command again to resume.",
                file=sys.stderr,
            )
        raise
    if ctx.is_main:
        last = history[-1] if history else {}
        info = {
            "seconds_this_session": round(time.perf_counter() - started, 2),
            "world_size": ctx.world_size,
            "device": str(ctx.device),
            "backbone": config.backbone,
            "pretrained_backbone": bool(getattr(unwrap(trainer.model), "pretrained_backbone", False)),
            "precision": config.precision,
            "kernels": config.kernels,
            **{k: last.get(k) for k in ("train_acc", "val_acc", "train_loss")},
        }
        ckpt.mark_done(run_dir, config, config.epochs, info)
    ddp.barrier(ctx)
    return run_dir


def _settle_done(run_dir: Path, config: RunConfig) -> None:
    """Decide, before training (rank 0, under the lock), what ``done.json`` is worth.

    Verified: the run is done (its ``history.csv`` is repaired if need be). Corrupt, or for other epochs: a warning,
    the record is removed and training resumes from the checkpoint. Written by an earlier version (no digest): the
    checkpoint is loaded and, when it holds the last epoch, the record is written again with its digest (metrics
    kept); otherwise the record is removed and training resumes. A checkpoint whose digest differs from the record's
    raises :class:`CheckpointError` (resuming from it would launder it).
    """
    done_path = run_dir / ckpt.DONE_FILE
    try:
        record = ckpt.check_done(run_dir, config)
    except ckpt.CheckpointDigestError:
        raise
    except ckpt.CheckpointError as err:
        print(f"warning: {err}. Not done: resuming from {ckpt.CHECKPOINT_FILE}.", file=sys.stderr)
        done_path.unlink(missing_ok=True)
        return
    if record is None:
        return
    if not record.has_digest:
        epoch = ckpt.load_checkpoint(run_dir / ckpt.CHECKPOINT_FILE)["epoch"]
        if epoch != config.epochs:
            print(
                f"warning: {done_path} marks the run done but its checkpoint holds epoch {epoch} of "
                f"{config.epochs}: resuming",
                file=sys.stderr,
            )
            done_path.unlink()
            return
        record = ckpt.mark_done(run_dir, config, epoch, record.info)
    _repair_history(run_dir, record)


def _repair_history(run_dir: Path, record: ckpt.DoneRecord) -> None:
    """A finished run whose ``history.csv`` is missing, corrupt or short gets it back from the checkpoint's rows."""
    try:
        if len(read_history(run_dir)) == record.checkpoint_epoch:
            return
    except ValueError as err:
        print(f"warning: {err}", file=sys.stderr)
    path = run_dir / ckpt.CHECKPOINT_FILE
    state = ckpt.load_checkpoint(path)
    if "history" not in state:  # a run of an earlier version: nothing to restore from; read_history says so
        print(f"warning: {path} holds no history to restore {ckpt.HISTORY_FILE} from", file=sys.stderr)
        return
    write_history(run_dir, _resumed_history(run_dir, state, int(state["epoch"])))
    print(f"rewrote {run_dir / ckpt.HISTORY_FILE} from {path}", file=sys.stderr)


def _resumed_history(run_dir: Path, state: dict[str, Any], epochs: int) -> list[dict[str, Any]]:
    """The history rows of the first ``epochs`` epochs: those the checkpoint ``state`` stores, or (a checkpoint of
    an earlier version) those of ``history.csv``."""
    if "history" not in state:
        return [row for row in read_history(run_dir) if int(row["epoch"]) <= epochs]
    rows = state["history"]
    if not (
        isinstance(rows, list)
        and len(rows) == epochs
        and all(isinstance(row, dict) and row.get("epoch") == n for n, row in enumerate(rows, start=1))
    ):
        path = run_dir / ckpt.CHECKPOINT_FILE
        raise ckpt.CheckpointError(
            f"checkpoint {path} holds a damaged history (not the rows of epochs 1..{epochs}); delete it (or train "
            "with restart=True / --restart) to start the run over"
        )
    return [dict(row) for row in rows]
