"""One run = one :class:`RunConfig`: everything that decides what gets trained, serializable to JSON.

The run directory of a config is ``runs/<method>-<key>`` where :meth:`RunConfig.key` hashes only the
*training-relevant* fields. Test-time choices (``fusion`` and its options) and execution details
(``device``, ``num_workers``) are not part of the key, so two notebooks that differ only in how they
evaluate share the same trained run.

Synthetic defaults (``dataset="synthetic"``, small backbone, 64 px): SGD Nesterov with the official ACoL lr
groups (docs/methods.md §4; :meth:`WSOLModel.parameter_groups` puts a from-scratch backbone at the new layers' 10x/20x)
and a one-cycle schedule (:func:`~wsol_utils.engine.optim.one_cycle_factor`) peaking at ``lr=0.01`` for 6
epochs of batch 64. Chosen by classification accuracy on the synthetic *val* split, never by localization:
CAM, 2,000 train images, 3 epochs, val acc 0.61 at lr 0.01 vs 0.42 at 0.02, 0.13 (1 epoch) at 0.005 and
0.20 (2 of 4 epochs) at 0.002; 6 epochs keep 5,000 images within the ~3 min budget on 2 cores.
The papers' CUB setting is :func:`paper_config`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsol_utils import data
from wsol_utils.base.digest import canonical_digest
from wsol_utils.engine.precision import default_kernels, default_precision, resolve_kernels, resolve_precision
from wsol_utils.nets.backbones import LAYOUTS, list_backbones
from wsol_utils.nets.erasing import check_delta
from wsol_utils.nets.fusion import FUSION_METHODS
from wsol_utils.nets.methods import get_method, list_methods

if TYPE_CHECKING:
    from wsol_utils.data.base import WSOLDataset

BACKBONES: tuple[str, ...] = tuple(list_backbones())  # small, vgg16, resnet50 (wsol_utils.nets.backbones)
FUSION_WEIGHTS: tuple[str, ...] = ("ratio", "softmax")
OPTIMIZERS: tuple[str, ...] = ("acol", "wsoleval")
SCHEDULES: tuple[str, ...] = ("onecycle", "cosine", "step", "constant")

#: Fields that do not change the trained weights: excluded from :meth:`RunConfig.key` (``val_split`` only adds
#: the per-epoch val accuracy: the val loader has its own random generator; tests/test_engine_train.py checks it).
TEST_TIME_FIELDS: frozenset[str] = frozenset(
    {"fusion", "block_radius", "fusion_weights", "device", "num_workers", "val_split"}
)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"RunConfig.{name}={value!r} is unknown; choose one of {', '.join(allowed)}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _integer(name: str, value: Any, low: int, high: int | None = None) -> None:
    """An int (not a bool) in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        span = f"in [{low}, {high}]" if high is not None else (f">= {low}" if low != 1 else "positive")
        raise ValueError(f"RunConfig.{name}={value!r} must be an integer {span}; set {name} ({_flag(name)})")


def _real(name: str, value: Any, low: float, high: float | None = None, *, low_open: bool = False) -> None:
    """A finite int or float (not a bool) in ``[low, high)`` (``(low, ...)`` when ``low_open``)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (high is None or value < high)
    if not ok:
        span = ("> " if low_open else ">= ") + f"{low:g}" + ("" if high is None else f" and < {high:g}")
        raise ValueError(f"RunConfig.{name}={value!r} must be a finite number {span}; set {name} ({_flag(name)})")


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"RunConfig.{name}={value!r} must be true or false; set {name} ({_flag(name)})")


def _json_object(name: str, value: Any) -> None:
    try:
        ok = isinstance(value, dict) and all(isinstance(k, str) for k in value) and bool(json.dumps(value))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"RunConfig.{name}={value!r} must be a JSON object (string keys, JSON values); set {name} ({_flag(name)})"
        )


#: The largest seed: seeds must fit NumPy's and torch's seeding (``[0, 2^32)``) with room for the per-epoch offsets.
MAX_SEED = 2**32 - 1


#: Bumped whenever the model or training code changes what a given config trains (a layer, a default width, how a
#: batch's gradient is accumulated), so that runs cached under ``runs/`` by an older version are not silently
#: reused. 2: CPU micro-batches (:func:`wsol_utils.engine.train.micro_batches`). 3: each loader draws its epoch
#: seeds from its own generator (:func:`wsol_utils.engine.train.make_loader`), not from torch's global RNG.
MODEL_REVISION = 3

#: The default instrument of the suite on the synthetic set (``RunConfig`` changes): chosen on the **val** split by
#: the papers' conditions, never by localization (``benchmarks/choose_instrument.py``, docs/methods.md §3.2):
#: CAM must classify well (val top-1 >= 90%) and its map must concentrate on the small class-telling head (mass
#: share far above the head's area share), with features about as local as the parts. Measured with CAM, 10
#: classes, 6 epochs, 500 val images, seeds 0/1/2, mean ± 95% t (benchmarks/results/instrument.md, engine revision
#: 3): receptive field 8 px: val top-1 93.3 ± 0.3%, head mass 8.4 ± 1.1% of the map vs 0.95% of the area (ratio
#: 8.9 ± 1.2), chosen; 5 px: 75.2 ± 7.5%; 12 px: 85.8 ± 33.6% (seeds 70.4 / 91.2 / 95.8); 18 px (the small
#: backbone's default): 96.9 ± 3.2% but ratio 7.4 ± 0.6, a field 2.5x the head; 34 px: 95.4 / 91.2 / 10.0% (one
#: seed did not learn). 30 classes (for an informative top-5) was tried and rejected: 28.6% (5 px) and 37.4% (8 px)
#: val top-1 after 6 epochs, so the tables drop our top-5 columns instead (10 classes: top-5 error is always 0).
INSTRUMENT: dict[str, Any] = {"model_kwargs": {"downsamples": 1, "depth": 2, "head_kernel": 1}}


@dataclass
class RunConfig:
    """A training run: method, model, data, optimization, seed and device (validated on creation).

    Fields
    ------
    method: ``"cam"``, ``"acol"`` (threshold erasing, docs/methods.md §1.3) or ``"hclnet"`` (complementary map, §1.4).
    backbone, layout: :func:`wsol_utils.nets.models.create_model` arguments (``layout`` matters for vgg16 and resnet50).
    delta: ACoL erasing threshold in the open interval (0, 1) (official 0.6, wsoleval 0.7).
    detach_complement: no gradient through ``1 - M_A`` (HCLNet, docs/methods.md §1.4).
    fusion, block_radius, fusion_weights: test-time fusion of the two branches (docs/methods.md §1.5);
        ``fusion=None`` means the method's paper default (acol: max, hclnet: add, cam: none).
    dataset, data_root, image_size, dataset_kwargs: :func:`wsol_utils.data.load` arguments.
    epochs, batch_size, lr: ``lr`` is the backbone weight lr; groups scale it (docs/methods.md §4).
    optimizer: ``"acol"`` (four groups 1/2/10/20x, SGD Nesterov 0.9, wd 5e-4) or ``"wsoleval"``
        (two groups, new layers 10x, plain momentum 0.9).
    schedule: ``"onecycle"``, ``"cosine"``, ``"step"`` (x0.1 every ``step_epochs``) or ``"constant"``.
    seed: seeds model init, data order and augmentation.
    device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    val_split: split scored after each epoch for the accuracy curve (``None``: skip).
    allow_random_init: let a run on real data start with a randomly initialised vgg16 / resnet50 when the ImageNet
        weights are missing (smoke tests only; ``--allow-random-init``); part of the key only when true.
    precision: the CPU training compute, ``"fp32"``, ``"bf16"`` (autocast of the training forward) or ``"auto"``
        (bf16 on CPUs with native bf16), resolved on creation (:mod:`wsol_utils.engine.precision`); default
        :data:`~wsol_utils.engine.precision.DEFAULT_PRECISION` or ``WSOL_PRECISION``. Part of the key only when
        not ``"fp32"``. CUDA always trains under the engine's own mixed precision.
    kernels: how a float32 CPU run trains the small backbone's layers, ``"torch"`` (PyTorch's, the default),
        ``"fused"`` (the fused C kernels, :mod:`wsol_utils.nets.fused`; other float rounding, faster) or ``"auto"``
        (fused where they run), resolved on creation (:func:`~wsol_utils.engine.precision.resolve_kernels`); default
        :data:`~wsol_utils.engine.precision.DEFAULT_KERNELS` or ``WSOL_KERNELS``. Part of the key only when
        ``"fused"``.
    """

    method: str = "cam"
    backbone: str = "small"
    layout: str = "14x14"
    delta: float = 0.6
    detach_complement: bool = True
    fusion: str | None = None
    block_radius: int = 1
    fusion_weights: str = "ratio"
    dataset: str = "synthetic"
    data_root: str | None = None
    image_size: int = 64
    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.01
    optimizer: str = "acol"
    schedule: str = "onecycle"
    step_epochs: int = 30
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    val_split: str | None = "val"
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    allow_random_init: bool = False
    precision: str = field(default_factory=default_precision)
    kernels: str = field(default_factory=default_kernels)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (run on creation, so before anything is written): a choice among the known values,
        integers in range (``seed`` in ``[0, 2^32)``; a bool is not an integer here), finite numbers (``lr > 0``,
        ``momentum`` in ``[0, 1)``, ``weight_decay >= 0``, ``delta`` in ``(0, 1)``), true/false flags, JSON objects.
        Fills ``fusion=None`` with the method's default, makes ``delta`` a float and resolves ``precision="auto"``
        and ``kernels="auto"`` (:func:`~wsol_utils.engine.precision.resolve_precision`,
        :func:`~wsol_utils.engine.precision.resolve_kernels`, after ``device`` is checked).

        Raises:
            ValueError: naming the field, the value and the fix (the field or its ``--flag``).
            FileNotFoundError: ``data_root`` of a real data set does not exist.
        """
        for name, allowed in (
            ("method", list_methods()),
            ("backbone", list_backbones()),
            ("layout", LAYOUTS),
            ("dataset", data.list_datasets()),
            ("optimizer", OPTIMIZERS),
            ("schedule", SCHEDULES),
            ("fusion_weights", FUSION_WEIGHTS),
        ):
            _choice(name, getattr(self, name), tuple(allowed))
        method = get_method(self.method)
        if self.fusion is None:
            self.fusion = method.default_fusion
        elif not method.two_branch:
            raise ValueError(f"RunConfig.fusion={self.fusion!r}: {self.method!r} has one branch, leave fusion=None")
        else:
            _choice("fusion", self.fusion, tuple(FUSION_METHODS))
        self.delta = check_delta(self.delta, "RunConfig")
        for name in ("image_size", "epochs", "batch_size", "step_epochs"):
            _integer(name, getattr(self, name), 1)
        for name in ("block_radius", "num_workers"):
            _integer(name, getattr(self, name), 0)
        _integer("seed", self.seed, 0, MAX_SEED)
        _real("lr", self.lr, 0.0, low_open=True)
        _real("momentum", self.momentum, 0.0, 1.0)
        _real("weight_decay", self.weight_decay, 0.0)
        for name in ("detach_complement", "allow_random_init"):
            _boolean(name, getattr(self, name))
        for name in ("dataset_kwargs", "model_kwargs"):
            _json_object(name, getattr(self, name))
        if self.val_split is not None and (not isinstance(self.val_split, str) or not self.val_split):
            raise ValueError(f"RunConfig.val_split={self.val_split!r} must be a split name (e.g. 'val') or None")
        if not isinstance(self.device, str) or not (
            self.device in ("auto", "cpu") or re.fullmatch(r"cuda(:\d+)?", self.device)
        ):
            raise ValueError(f"RunConfig.device={self.device!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'")
        self.precision = resolve_precision(self.precision, self.device)
        self.kernels = resolve_kernels(self.kernels, self.device, self.precision, self.backbone)
        if self.data_root is not None:
            self.data_root = str(self.data_root)
            if data.get_dataset(self.dataset).image_files and not Path(self.data_root).expanduser().exists():
                raise FileNotFoundError(
                    f"RunConfig.data_root={self.data_root!r} does not exist; point it at the {self.dataset} "
                    "data set folder (see docs) or use dataset='synthetic'"
                )
        if data.get_dataset(self.dataset).image_files and self.data_root is None:
            raise ValueError(f"RunConfig.data_root is required for dataset={self.dataset!r}")

    # -- serialization -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field."""
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of :meth:`to_dict` (sorted keys, stable across runs)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig field(s) {unknown}; known: {sorted(names)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> RunConfig:
        """Parse JSON text, or read a ``.json`` file when given a path to an existing file."""
        text = str(text_or_path)
        source = "JSON text"
        if isinstance(text_or_path, Path) or not text.lstrip().startswith("{"):
            path = Path(text_or_path).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"config file {path} does not exist")
            text, source = path.read_text(), str(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{source} is not valid JSON: {err}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{source} must hold a JSON object of RunConfig fields")
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some fields changed (a new ``method`` resets ``fusion`` to its default)."""
        if "method" in changes and "fusion" not in changes:
            changes["fusion"] = None
        return dataclasses.replace(self, **changes)

    # -- identity --------------------------------------------------------------------------------
    def training_fields(self) -> dict[str, Any]:
        """The fields that change the trained weights: all but :data:`TEST_TIME_FIELDS`, and for a generated set
        (the synthetic one) also ``data_root`` (only its cache folder; the images are fixed by ``dataset_kwargs``),
        ``allow_random_init`` when false, ``precision`` when ``"fp32"`` and ``kernels`` when ``"torch"`` (the keys of
        runs made before those fields existed)."""
        fields = {k: v for k, v in self.to_dict().items() if k not in TEST_TIME_FIELDS}
        if not data.get_dataset(self.dataset).image_files:
            fields.pop("data_root")
        if not fields.get("allow_random_init"):  # keeps the keys of runs made before the field existed
            fields.pop("allow_random_init", None)
        if fields.get("precision") == "fp32":  # likewise: fp32 runs keep their keys, bf16 runs get their own
            fields.pop("precision")
        if fields.get("kernels") == "torch":  # and PyTorch-layer runs keep theirs, fused-kernel runs get their own
            fields.pop("kernels")
        return fields

    def key(self) -> str:
        """10-hex-digit SHA-256 of :meth:`training_fields` and :data:`MODEL_REVISION` (compact canonical JSON,
        :func:`wsol_utils.base.digest.canonical_digest`): the run's cache key."""
        return canonical_digest({**self.training_fields(), "model_revision": MODEL_REVISION}, 10)

    def run_name(self) -> str:
        """``<method>-<key>``: the run directory's name under ``runs_dir``."""
        return f"{self.method}-{self.key()}"

    # -- data ------------------------------------------------------------------------------------
    def dataset_for(self, split: str, *, train: bool = False) -> WSOLDataset:
        """:func:`wsol_utils.data.load` of ``split`` for this run: the synthetic set's own transforms (flip when
        ``train``, identity otherwise), for image files the ``"train"`` / ``"test"`` protocol (docs/methods.md §3)."""
        transform = data.get_dataset(self.dataset).default_transform(train)
        return data.load(
            self.dataset,
            root=self.data_root,
            split=split,
            transform=transform,
            image_size=self.image_size,
            **self.dataset_kwargs,
        )


def paper_config(method: str, data_root: str, *, dataset: str = "cub", **changes: Any) -> RunConfig:
    """The official ACoL CUB setting (docs/methods.md §4): VGG16 28x28, lr 1e-4, batch 20, 60 epochs, delta 0.6,
    224 px."""
    base: dict[str, Any] = dict(
        method=method,
        backbone="vgg16",
        layout="28x28",
        delta=0.6,
        dataset=dataset,
        data_root=data_root,
        image_size=224,
        epochs=60,
        batch_size=20,
        lr=1e-4,
        optimizer="acol",
        schedule="constant",
        val_split=None,
    )
    base.update(changes)
    return RunConfig(**base)
