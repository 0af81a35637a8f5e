"""What the notebooks of the suite share: their parameters, turned into run configs, shared training runs and
evaluations, and where their figures go. (The rest of what notebooks call lives in the library's modules:
:mod:`wsol_utils.scoring.pipeline` for example maps, :mod:`wsol_utils.studies.analysis` for tables,
:mod:`wsol_utils.studies.stats` for
honest sentences, :mod:`wsol_utils.engine.equivalence` for notebook 01.)

Every notebook starts with the same papermill ``parameters`` cell and turns it into a :class:`Suite`::

    suite = Suite.from_parameters(DATASET, DATA_ROOT, EPOCHS, DEVICE, SMOKE, RUNS_DIR, FIGURES_DIR, PROGRESS)
    run = suite.train("acol", delta=0.6)      # trained once, then shared by every notebook (engine cache)

Smoke mode (``SMOKE=True``) trains on a tiny slice of the synthetic set for one epoch so the whole suite
runs in a few minutes, and writes its figures to ``outputs/smoke/figures`` so that it never touches the
committed ``figures/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from wsol_utils.data import get_dataset
from wsol_utils.engine import INSTRUMENT, EvalResult, RunConfig, evaluate_cached, paper_config, train, train_many
from wsol_utils.engine.run import read_config_json, run_pretrained_backbone
from wsol_utils.studies.provenance import NOTEBOOK_ENV
from wsol_utils.ui.viz import publish

#: Smoke mode: synthetic sizes and epochs (the whole suite in a few minutes on 2 CPU cores).
SMOKE_DATASET_KWARGS: dict[str, int] = {"num_train": 300, "num_val": 60, "num_test": 100}
SMOKE_EPOCHS = 1
SMOKE_ENV = "WSOL_SMOKE"
#: Training seeds of the main comparison (the primary family, :mod:`wsol_utils.ui.experiments`) and of every table on
#: its
#: runs; on the synthetic set each seed also draws its own data set (train, val and test: :meth:`Suite.config`), so
#: the spread over seeds includes the test set's own sampling noise. Smoke mode uses the first two.
SEEDS: tuple[int, ...] = tuple(range(10))
#: Seeds of the exploratory grids that train runs of their own (the delta sweep, the regime map): the first five.
EXPLORATORY_SEEDS: tuple[int, ...] = SEEDS[:5]
SMOKE_SEEDS: tuple[int, ...] = (0, 1)
#: Set by ``python -m wsol_utils reproduce --allow-random-init``: real-data runs may start from a random backbone
#: (smoke tests only; every table then says so).
ALLOW_RANDOM_INIT_ENV = "WSOL_ALLOW_RANDOM_INIT"
#: Set by ``python -m wsol_utils reproduce --backbone``: the backbone of the papers' setting on real data (not a
#: notebook parameter: the parameters cell is shared by every notebook).
BACKBONE_ENV = "WSOL_BACKBONE"
#: The backbones of the papers' setting on real data (docs/methods.md §1.2, §4.1); the first is the default.
REAL_DATA_BACKBONES: tuple[str, ...] = ("vgg16", "resnet50")
#: Smoke mode on real data: image side in px and classifier-branch width (the papers' 224 px and 1024-channel 3x3
#: branches on VGG16 / ResNet50 are too slow for a CPU smoke run; the code path is the same).
SMOKE_REAL_IMAGE_SIZE = 32
SMOKE_REAL_MODEL_KWARGS: dict[str, Any] = {"head_width": 64}
#: Training epochs of the papers' setting on ILSVRC (docs/methods.md §4.1; CUB: paper_config's 60).
ILSVRC_EPOCHS = 6
DEFAULT_FIGURES_DIR = "../figures"
SMOKE_FIGURES_DIR = "../outputs/smoke/figures"
#: :meth:`Suite.config` changes that are merged into the config's dict rather than replacing it.
MERGED_CHANGES = ("dataset_kwargs", "model_kwargs")


def real_data_backbone() -> str:
    """The backbone of the papers' setting on real data: ``WSOL_BACKBONE`` (set by ``python -m wsol_utils
    reproduce --backbone``), default ``vgg16``; one of :data:`REAL_DATA_BACKBONES`, a ValueError otherwise."""
    backbone = os.environ.get(BACKBONE_ENV, "").strip().lower() or REAL_DATA_BACKBONES[0]
    if backbone not in REAL_DATA_BACKBONES:
        raise ValueError(
            f"{BACKBONE_ENV}={os.environ.get(BACKBONE_ENV)!r}: the papers' setting on real data takes one of "
            f"{', '.join(REAL_DATA_BACKBONES)} (python -m wsol_utils reproduce --backbone ...)"
        )
    return backbone


@dataclass(frozen=True)
class Suite:
    """The notebook parameters, validated. Paths are relative to the notebook folder unless absolute."""

    dataset: str = "synthetic"
    data_root: str | None = None
    epochs: int | None = None
    device: str = "auto"
    smoke: bool = False
    runs_dir: Path = Path("../runs")
    figures_dir: Path = Path(DEFAULT_FIGURES_DIR)
    progress: bool = False
    notebook: str | None = None

    @classmethod
    def from_parameters(
        cls,
        dataset: str = "synthetic",
        data_root: str | None = None,
        epochs: int | None = None,
        device: str = "auto",
        smoke: bool = False,
        runs_dir: str | Path = "../runs",
        figures_dir: str | Path | None = None,
        progress: bool = False,
        notebook: str | None = None,
    ) -> Suite:
        """Build from a notebook's parameters; ``figures_dir=None`` picks ``../figures`` or, in smoke
        mode, ``../outputs/smoke/figures``. The folder is created. ``notebook`` (default: the environment
        variable ``WSOL_NOTEBOOK``, else unknown) names the notebook in the provenance of what it writes.

        The environment variable ``WSOL_SMOKE=1`` also turns smoke mode on: the test suite sets it so
        that nbval, which runs notebooks with their default parameters, runs them small."""
        if epochs is not None and (not isinstance(epochs, int) or epochs < 1):
            raise ValueError(f"EPOCHS={epochs!r}: give a positive integer, or None for the engine's default")
        if get_dataset(dataset).image_files and data_root is None:
            raise ValueError(f"DATASET={dataset!r} needs DATA_ROOT (the data set folder); or use DATASET='synthetic'")
        smoke = bool(smoke) or os.environ.get(SMOKE_ENV, "0") == "1"
        figures = Path(figures_dir if figures_dir is not None else SMOKE_FIGURES_DIR if smoke else DEFAULT_FIGURES_DIR)
        figures.mkdir(parents=True, exist_ok=True)
        return cls(
            dataset=dataset,
            data_root=data_root,
            epochs=epochs,
            device=device,
            smoke=bool(smoke),
            runs_dir=Path(runs_dir),
            figures_dir=figures,
            progress=bool(progress),
            notebook=notebook or os.environ.get(NOTEBOOK_ENV) or None,
        )

    def config(self, method: str, **changes: Any) -> RunConfig:
        """The :class:`~wsol_utils.engine.RunConfig` of ``method`` for this suite.

        Synthetic: the engine's defaults with the default instrument (:data:`wsol_utils.engine.INSTRUMENT`: backbone
        and data knobs chosen on val by the papers' conditions); other data sets: the papers' setting
        (:func:`~wsol_utils.engine.paper_config`, docs/methods.md §4.1) with the backbone of ``WSOL_BACKBONE``
        (``reproduce --backbone``; default vgg16) and 6 epochs on ILSVRC. Then ``EPOCHS`` when given, smoke sizes
        in smoke mode (synthetic: fewer images; real data: :data:`SMOKE_REAL_IMAGE_SIZE` px and
        :data:`SMOKE_REAL_MODEL_KWARGS`), and ``changes``
        (e.g. ``delta=0.7``) last. The dict-valued changes ``dataset_kwargs`` and
        ``model_kwargs`` are *merged* into the config's (so ``dataset_kwargs={"head_size": 0.22}`` keeps the
        smoke sizes), every other change replaces the field. On the synthetic set the data set's ``seed`` is the
        run's ``seed`` unless ``dataset_kwargs`` names one: each training seed trains, chooses and is scored on its
        own draw of the data, and runs paired by seed (CAM and HCLNet seed 3) share it.
        """
        if not get_dataset(self.dataset).image_files:
            config = RunConfig(method=method, device=self.device, **INSTRUMENT)
        else:
            config = paper_config(
                method, str(self.data_root), dataset=self.dataset, device=self.device, **self._real_data_setting()
            )
        overrides: dict[str, Any] = {}
        if get_dataset(self.dataset).image_files and os.environ.get(ALLOW_RANDOM_INIT_ENV, "0") == "1":
            overrides["allow_random_init"] = True
        if self.smoke:
            overrides["epochs"] = SMOKE_EPOCHS
            if self.dataset == "synthetic":
                overrides["dataset_kwargs"] = {**config.dataset_kwargs, **SMOKE_DATASET_KWARGS}
            else:
                overrides["image_size"] = SMOKE_REAL_IMAGE_SIZE
                overrides["model_kwargs"] = {**config.model_kwargs, **SMOKE_REAL_MODEL_KWARGS}
        if self.epochs is not None:
            overrides["epochs"] = self.epochs
        for name in MERGED_CHANGES:
            if name in changes:
                changes[name] = {**overrides.get(name, getattr(config, name)), **changes[name]}
        config = config.replace(**{**overrides, **changes})
        if self.dataset == "synthetic" and "seed" not in config.dataset_kwargs:
            config = config.replace(dataset_kwargs={**config.dataset_kwargs, "seed": config.seed})
        return config

    def _real_data_setting(self) -> dict[str, Any]:
        """:func:`~wsol_utils.engine.paper_config` changes on real data (docs/methods.md §4.1): the backbone of
        :func:`real_data_backbone` and, for ILSVRC (a wsoleval folder whose training ids carry WordNet ids),
        :data:`ILSVRC_EPOCHS` epochs instead of CUB's 60."""
        from wsol_utils.data.wsoleval import is_ilsvrc

        setting: dict[str, Any] = {"backbone": real_data_backbone()}
        if self.dataset == "wsoleval" and is_ilsvrc(str(self.data_root)):
            setting["epochs"] = ILSVRC_EPOCHS
        return setting

    def train(self, method: str, **changes: Any) -> Path:
        """Train (or reuse from the run cache) ``self.config(method, **changes)``; returns the run dir."""
        return train(self.config(method, **changes), runs_dir=self.runs_dir, progress=self.progress)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The training seeds of the main comparison: :data:`SEEDS`, or :data:`SMOKE_SEEDS` in smoke mode."""
        return SMOKE_SEEDS if self.smoke else SEEDS

    @property
    def exploratory_seeds(self) -> tuple[int, ...]:
        """The seeds of grids that train runs of their own: :data:`EXPLORATORY_SEEDS` (smoke: :data:`SMOKE_SEEDS`)."""
        return SMOKE_SEEDS if self.smoke else EXPLORATORY_SEEDS

    def train_seeds(self, method: str, *, seeds: Sequence[int] | None = None, **changes: Any) -> dict[int, Path]:
        """:meth:`train` once per seed of ``seeds`` (default :attr:`seeds`); ``{seed: run dir}``."""
        return self.train_many([(method, changes)], seeds=seeds)[0]

    def train_many(
        self,
        requests: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        evaluate: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        seeds: Sequence[int] | None = None,
    ) -> list[dict[int, Path]]:
        """Every ``(method, changes)`` request at every seed of ``seeds`` (default :attr:`seeds`), trained side by
        side in worker processes (:func:`wsol_utils.engine.train_many`; ``WSOL_TRAIN_JOBS`` sets how many); one
        ``{seed: run dir}`` per request, in order. Train a whole grid with one call so that every core stays busy.

        ``evaluate`` (per request, a list of option dicts): each worker also runs :meth:`evaluate` with each of
        them right after training, so the evaluations overlap with the other runs' training; the notebook's own
        :meth:`evaluate` with the same options then reads them from the cache."""
        requests = list(requests)
        seeds = tuple(self.seeds if seeds is None else seeds)
        if evaluate is not None and len(evaluate) != len(requests):
            raise ValueError(f"train_many: {len(evaluate)} evaluate option sets for {len(requests)} requests")
        configs = [self.config(method, **{**changes, "seed": seed}) for method, changes in requests for seed in seeds]
        evaluations = None
        if evaluate is not None:
            evaluations = [[self.evaluation_options(**options) for options in sets] for sets in evaluate for _ in seeds]
        dirs = iter(train_many(configs, runs_dir=self.runs_dir, progress=self.progress, evaluations=evaluations))
        return [{seed: next(dirs) for seed in seeds} for _ in requests]

    def evaluate_seeds(self, runs: dict[int, Path], **options: Any) -> dict[int, EvalResult]:
        """:meth:`evaluate` of each seed's run with the same ``options``; ``{seed: result}``."""
        return {seed: self.evaluate(run, **options) for seed, run in runs.items()}

    def evaluate(self, run_dir: str | Path, **options: Any) -> EvalResult:
        """:func:`wsol_utils.engine.evaluate` of ``run_dir`` on the test split with ``options`` (``fusion``,
        ``delta``, ...), MaxBoxAcc on the main map only unless ``wsoleval`` says otherwise, and on real data the
        papers' 10-crop classification (``ten_crop=True``, docs/methods.md §4.1); cached in the run folder
        (:func:`~wsol_utils.engine.evaluate_cached`) so that notebooks share evaluations as they share runs.
        """
        return evaluate_cached(run_dir, progress=self.progress, **self.evaluation_options(**options))

    def evaluation_options(self, **options: Any) -> dict[str, Any]:
        """The options of :meth:`evaluate` (its defaults, the suite's device, then ``options``): what
        :func:`~wsol_utils.engine.evaluate_cached` gets, so a worker's evaluation hits the same cache entry."""
        defaults: dict[str, Any] = {"split": "test", "wsoleval": "main", "device": self.device}
        if get_dataset(self.dataset).image_files:
            defaults["ten_crop"] = True
        return {**defaults, **options}

    def figure_path(self, name: str) -> Path:
        """``figures_dir / name`` (e.g. ``"acol_maps.png"``)."""
        return self.figures_dir / name

    def publish(self, fig: Figure, name: str, *, provenance: dict[str, Any] | None = None) -> Path:
        """Save ``fig`` as ``figures_dir / name`` and show it once in the notebook (:func:`wsol_utils.ui.viz.publish`).

        ``provenance`` (usually ``suite.provenance(*runs)``) goes into ``PROVENANCE.json``; ``None`` records
        the notebook's name only (with the source hash and date, as always)."""
        return publish(fig, self.figure_path(name), provenance=self.provenance() if provenance is None else provenance)

    def provenance(self, *run_dirs: str | Path) -> dict[str, Any]:
        """What made a table or figure, for ``write_table(..., provenance=...)`` / :meth:`publish`:
        ``{"notebook": name or None, "runs": [{"run": folder name, "config": its config.json,
        "pretrained_backbone": bool or None}], "seeds": [...]}`` with the runs' distinct seeds sorted.
        ``pretrained_backbone`` is what training recorded (:func:`wsol_utils.engine.run.run_pretrained_backbone`):
        whether the ImageNet weights were really loaded; :func:`wsol_utils.studies.tables.write_table` flags a table
        with a random-init row from it. (:func:`wsol_utils.studies.provenance.stamp` adds the source hash, date and
        versions.) A run folder without ``config.json`` raises ``FileNotFoundError`` naming it."""
        runs: list[dict[str, Any]] = []
        for run_dir in run_dirs:
            hint = f"Suite.provenance({str(run_dir)!r}) takes run folders as returned by suite.train(...)"
            runs.append(
                {
                    "run": Path(run_dir).name,
                    "config": read_config_json(run_dir, hint),
                    "pretrained_backbone": run_pretrained_backbone(run_dir),
                }
            )
        seeds = sorted({run["config"]["seed"] for run in runs if run["config"].get("seed") is not None})
        return {"notebook": self.notebook, "runs": runs, "seeds": seeds}
