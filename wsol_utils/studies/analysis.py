"""Tables and measurements the notebooks read from evaluation results: branch comparisons, best rows and best
tau, part mass shares and the receptive-field geometry of the head (docs/methods.md §3)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

from wsol_utils.data.synthetic import SyntheticConfig
from wsol_utils.nets.models import create_model, feature_stride, receptive_field
from wsol_utils.scoring.protocol import PAPERS
from wsol_utils.studies.stats import (
    INTERVAL_SUFFIXES,
    PERCENT,
    PERCENT_DIFFERENCE,
    Interval,
    describe_difference,
    format_interval,
    interval_columns,
    paired_seed_difference,
    seed_interval,
)

if TYPE_CHECKING:
    from wsol_utils.engine import EvalResult, RunConfig

_SeedIndexed = TypeVar("_SeedIndexed", pd.DataFrame, pd.Series)

__all__ = [
    "PROTOCOL_METRICS",
    "name_protocols",
    "RECEPTIVE_FIELDS",
    "aggregate_summaries",
    "head_area_share",
    "chosen_on_val",
    "by_seed",
    "on_common_seeds",
    "pair_by_seed",
    "paired_differences",
    "run_frame",
    "seed_rows",
    "seed_summary",
    "branch_comparison",
    "cells_seeing_part",
    "head_geometry",
    "part_mass",
]


def branch_comparison(results: dict[str, EvalResult]) -> pd.DataFrame:
    """One row per named :class:`~wsol_utils.engine.EvalResult`: classification and localization errors
    of the fused map, GT-known loc accuracy of branch A and B, MaxBoxAccV2, and the mean share (%) of
    branch B's map on the object mask (``NaN`` when the data set has no masks)."""
    rows = []
    for name, result in results.items():
        summary, branches = result.summary, result.summary["branches"]
        mass = result.records.get("b_mass_object")
        rows.append(
            {
                "variant": name,
                "cls err top-1": summary["cls_err_top1"],
                "cls err top-5": summary["cls_err_top5"],
                "loc err top-1": summary["loc_err_top1"],
                "GT-known loc err": summary["gt_known_loc_err"],
                "GT-known loc acc A": branches["a"]["gt_known_loc_acc"],
                "GT-known loc acc B": branches["b"]["gt_known_loc_acc"],
                "MaxBoxAccV2": summary.get("maxboxacc_v2", math.nan),
                "B mass on object (%)": 100 * float(mass.mean()) if mass is not None else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _row(frame: pd.DataFrame, label: Hashable) -> pd.Series:
    """``frame.loc[label]``: the row of an index label such as ``idxmax()`` returns (pandas-stubs type ``.loc``
    keys narrower than the labels pandas accepts)."""
    return frame.loc[label]  # type: ignore[call-overload]


def part_mass(records: pd.DataFrame, branch: str = "b") -> dict[str, float]:
    """Mean share (%) of ``branch``'s map mass on the head, the rest of the object (body) and the background.

    ``records``: :attr:`~wsol_utils.engine.EvalResult.records` with the per-image columns
    ``{branch}_mass_head``, ``{branch}_mass_object`` (head + body) and ``{branch}_mass_background``, each
    in [0, 1] (data sets with part masks, e.g. the synthetic set). Returns ``{"head", "body",
    "background"}`` in percent; body = object - head. Missing columns give ``NaN``.
    """

    def mean(column: str) -> float:
        name = f"{branch}_{column}"
        return 100 * float(records[name].mean()) if name in records.columns else math.nan

    head, whole = mean("mass_head"), mean("mass_object")
    return {"head": head, "body": whole - head, "background": mean("mass_background")}


def cells_seeing_part(receptive_field: int, stride: int, part_size: float) -> float:
    """How many map cells per axis see (part of) a part of ``part_size`` px: ``(R + p) / s`` (docs/methods.md §3).

    A cell at stride ``s`` with receptive field ``R`` px sees the part when their windows overlap, i.e. when
    the cell's centre lies within ``(R + p) / 2`` px of the part's centre on each axis."""
    if receptive_field < 1 or stride < 1 or part_size <= 0:
        raise ValueError(
            f"cells_seeing_part: need receptive_field >= 1, stride >= 1 and part_size > 0; "
            f"got {receptive_field!r}, {stride!r}, {part_size!r}"
        )
    return (receptive_field + part_size) / stride


def head_geometry(config: RunConfig) -> dict[str, float]:
    """Receptive field and stride of a synthetic-data :class:`~wsol_utils.engine.RunConfig`'s model, the head
    diameter in px (``head_size`` x ``image_size``) and :func:`cells_seeing_part` of the head (docs/methods.md §3)."""
    if config.dataset != "synthetic":
        raise ValueError(f"head_geometry: config.dataset={config.dataset!r}; the head size is a synthetic-set knob")
    model = create_model(config.method, num_classes=2, backbone=config.backbone, **config.model_kwargs)
    field, stride = receptive_field(model), feature_stride(model)
    head = float(config.dataset_kwargs.get("head_size", SyntheticConfig.head_size)) * config.image_size
    return {
        "receptive field (px)": field,
        "stride (px)": stride,
        "head (px)": head,
        "map cells (per axis)": config.image_size // stride,
        "cells seeing the head (per axis)": cells_seeing_part(field, stride, head),
    }


# -- seeds: one row per run, then mean and 95% interval over seeds -------------------------------------------------

#: Flat summary keys of an evaluation and their table labels, each named with its protocol: the papers' (a box at
#: tau = 0.2 of the max, docs/methods.md §2.1) or wsoleval's (the best threshold per metric, §2.2).
PROTOCOL_METRICS: dict[str, str] = {
    "cls_acc_top1": "cls acc top-1",
    "cls_acc_top5": "cls acc top-5",
    "loc_acc_top1": "top-1 loc @0.2 (papers)",
    "loc_acc_top5": "top-5 loc @0.2 (papers)",
    "gt_known_loc_acc": "GT-known loc @0.2 (papers)",
    "maxboxacc": "MaxBoxAcc (wsoleval)",
    "maxboxacc_v2": "MaxBoxAccV2 (wsoleval)",
}


def run_frame(
    results: Mapping[tuple[Any, ...], EvalResult],
    keys: Sequence[str],
    metrics: Mapping[str, str] = PROTOCOL_METRICS,
    masses: Sequence[str] = (),
) -> pd.DataFrame:
    """One row per evaluated run: the ``keys`` columns (e.g. ``("method", "seed")``, the tuple keys of ``results``),
    each metric's label and, for every branch in ``masses``, its mass shares (%) on head / body / background
    (:func:`part_mass`; columns ``"<branch> mass head (%)"`` ...). Missing metrics are NaN."""
    rows = []
    for key, result in results.items():
        if len(key) != len(keys):
            raise ValueError(f"run_frame: key {key!r} does not match the key columns {list(keys)}")
        row: dict[str, Any] = dict(zip(keys, key))
        row.update({label: float(result.summary.get(name, math.nan)) for name, label in metrics.items()})
        for branch in masses:
            row.update({f"{branch} mass {part} (%)": v for part, v in part_mass(result.records, branch).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def seed_summary(
    frame: pd.DataFrame,
    by: Sequence[str],
    values: Sequence[str],
    seed: str = "seed",
    *,
    bounds: tuple[float, float] | None = PERCENT,
) -> pd.DataFrame:
    """Mean and 95% Student-t interval over seeds (:func:`wsol_utils.studies.stats.seed_interval`) of each ``values``
    column, per group of ``by`` (groups in order of appearance), within ``bounds`` (default: a percentage's range;
    ``None`` for unbounded values such as ratios). Columns: ``by``, ``seeds`` (how many), then for each value ``v``
    the :func:`~wsol_utils.studies.stats.interval_columns`: ``v`` (mean), ``"v ±"`` (t half width, NaN from one seed),
    ``"v low"``, ``"v high"``."""
    rows = []
    for group, part in frame.groupby(list(by), sort=False):
        row: dict[str, Any] = dict(zip(by, group if isinstance(group, tuple) else (group,)))
        row["seeds"] = int(part[seed].nunique())
        for value in values:
            row.update(interval_columns(value, seed_interval(part[value].tolist(), bounds=bounds)))
        rows.append(row)
    return pd.DataFrame(rows)


def by_seed(rows: pd.DataFrame, what: str, seed: str = "seed", *, have: str = "") -> pd.DataFrame:
    """``rows`` (the rows of one setting, described by ``what`` for the error) indexed and sorted by ``seed``. A
    ValueError when there are none (``have``: what the frame has instead, for the message), or when a seed appears
    twice (a frame mixing two runs of one seed cannot be paired)."""
    if rows.empty:
        raise ValueError(f"{what} has no rows in the frame{have}")
    if rows[seed].duplicated().any():
        raise ValueError(f"{what} has a seed twice: {rows[seed].tolist()}")
    return rows.set_index(seed).sort_index()


def seed_rows(frame: pd.DataFrame, key: Hashable, *, column: str = "variant", seed: str = "seed") -> pd.DataFrame:
    """The rows of ``frame`` whose ``column`` is ``key``, indexed and sorted by ``seed`` (:func:`by_seed`)."""
    have = f"; have {list(pd.unique(frame[column]))}"
    return by_seed(frame[frame[column] == key], f"{column}={key!r}", seed, have=have)


def on_common_seeds(first: _SeedIndexed, second: _SeedIndexed) -> tuple[_SeedIndexed, _SeedIndexed]:
    """Two seed-indexed frames or series (:func:`by_seed`) cut to the seeds both have, in ascending order, so that
    row ``i`` of one is paired with row ``i`` of the other: the one pairing of the suite."""
    common = first.index.intersection(second.index).sort_values()
    return first.loc[common], second.loc[common]


def pair_by_seed(
    frame: pd.DataFrame, pair: tuple[Hashable, Hashable], *, column: str = "variant", seed: str = "seed"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The one pairing of the suite: the rows of ``pair[0]`` and of ``pair[1]`` (values of ``column``,
    :func:`seed_rows`) on the seeds both have, each indexed by seed in ascending order, so that row ``i`` of one
    is paired with row ``i`` of the other. Seeds only one side has are left out."""
    first, second = (seed_rows(frame, key, column=column, seed=seed) for key in pair)
    return on_common_seeds(first, second)


def paired_differences(
    frame: pd.DataFrame,
    by: Sequence[str],
    values: Sequence[str],
    *,
    against: str,
    column: str = "method",
    seed: str = "seed",
    bounds: tuple[float, float] | None = PERCENT_DIFFERENCE,
) -> pd.DataFrame:
    """``X - against`` per seed (same seeds paired), for every other value of ``column`` within each group of
    ``by``, as a mean and 95% t interval (:func:`wsol_utils.studies.stats.paired_seed_difference`) within ``bounds``
    (default: the range of a difference of two percentages). Columns: ``by``, ``column``, ``seeds``, then per value
    ``v`` its :func:`~wsol_utils.studies.stats.interval_columns` (``"v"`` the mean difference, ``"v ±"``, ``"v low"``,
    ``"v high"``) and ``"v excludes 0"``. Pairs by :func:`pair_by_seed` (a group without ``against`` rows, or with
    a seed twice, is an error)."""
    rows = []
    for group, part in frame.groupby(list(by), sort=False):
        for name, _ in part[part[column] != against].groupby(column, sort=False):
            mine, base = pair_by_seed(part, (name, against), column=column, seed=seed)
            row: dict[str, Any] = dict(zip(by, group if isinstance(group, tuple) else (group,)))
            row.update({column: name, "seeds": len(mine)})
            for value in values:
                interval = paired_seed_difference(mine[value].tolist(), base[value].tolist(), bounds=bounds)
                row.update(interval_columns(value, interval))
                row[f"{value} excludes 0"] = interval.excludes_zero()
            rows.append(row)
    return pd.DataFrame(rows)


def chosen_on_val(val: pd.DataFrame, test: pd.DataFrame, by: Sequence[str], knob: str, value: str) -> pd.DataFrame:
    """A hyperparameter chosen on **val**, scored on **test** once, beside the test-chosen "oracle".

    ``val`` / ``test``: long frames with the columns ``by``, ``knob`` (e.g. ``"tau"`` or ``"delta"``) and ``value``
    (higher is better; e.g. the mean over seeds). Per group of ``by``: the knob with the best val value (first on
    ties), the test value there, and the oracle knob and value (best on test, labelled so). Columns: ``by``,
    ``"<knob> (val)"``, ``"<value> test @ val choice"``, ``"<knob> (oracle: test)"``, ``"<value> oracle"``."""
    rows = []
    for group, part in val.groupby(list(by), sort=False):
        keys = dict(zip(by, group if isinstance(group, tuple) else (group,)))
        chosen = _row(part, part[value].idxmax())[knob]
        on_test = test.loc[(test[list(by)] == pd.Series(keys)).all(axis=1)]
        if on_test.empty:
            raise ValueError(f"chosen_on_val: no test rows for {keys}")
        at_choice = _row(on_test, (on_test[knob] - chosen).abs().idxmin())[value]
        oracle = _row(on_test, on_test[value].idxmax())
        rows.append(
            {
                **keys,
                f"{knob} (val)": float(chosen),
                f"{value} test @ val choice": float(at_choice),
                f"{knob} (oracle: test)": float(oracle[knob]),
                f"{value} oracle": float(oracle[value]),
            }
        )
    return pd.DataFrame(rows)


def aggregate_summaries(summaries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Evaluation summaries of the same setting trained with different seeds -> one summary: every numeric flat
    key present in all of them becomes the mean over seeds, plus ``"<key> ±"``, the 95% Student-t half width
    (:func:`wsol_utils.studies.stats.seed_interval`; NaN from one seed), for a percentage (:func:`is_percent_metric`)
    also ``"<key> low"`` / ``"<key> high"``, the interval's ends within [0, 100], and ``"seeds"``, how many.
    Non-numeric keys (``run``, ``branches`` ...) are left out. :func:`wsol_utils.studies.tables.localization_table`
    and its siblings turn the ``±`` keys into columns."""
    if not summaries:
        raise ValueError("aggregate_summaries: no summaries; pass one per seed")
    keys = [
        k
        for k, v in summaries[0].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and all(k in s for s in summaries)
    ]
    out: dict[str, Any] = {"seeds": len(summaries)}
    for key in keys:
        interval = seed_interval([float(s[key]) for s in summaries], bounds=PERCENT if is_percent_metric(key) else None)
        out[key], out[f"{key} ±"] = interval.mean, interval.half_width
        if is_percent_metric(key):
            out[f"{key} low"], out[f"{key} high"] = interval.low, interval.high
    return out


#: Prefixes of the evaluation summary keys that are percentages (accuracies, errors, MaxBoxAcc, PxAP).
PERCENT_METRIC_PREFIXES: tuple[str, ...] = ("cls_", "loc_", "gt_known_", "maxboxacc", "pxap")


def is_percent_metric(key: str) -> bool:
    """Whether the evaluation summary key ``key`` is a percentage in [0, 100] (e.g. ``"maxboxacc_v2"``; not
    ``"delta"``, ``"tau"`` or ``"num_images"``)."""
    return key.startswith(PERCENT_METRIC_PREFIXES)


# -- the regime map: receptive field x head size ------------------------------------------------------------------

#: Small-backbone settings (``model_kwargs``) from a receptive field below the default head (~7 px at 64 px) to far
#: above it (docs/methods.md §3.2); the key is the receptive field of one cell of branch A's maps in px. Each entry
#: sets every geometry knob, so merging it into another setting's ``model_kwargs`` gives exactly this field.
RECEPTIVE_FIELDS: dict[int, dict[str, Any]] = {
    5: {"downsamples": 0, "depth": 2, "head_kernel": 1},
    8: {"downsamples": 1, "depth": 2, "head_kernel": 1},
    12: {"downsamples": 1, "depth": 3, "head_kernel": 1},
    18: {"downsamples": 2, "depth": 3, "head_kernel": 1},  # the small backbone's defaults
    34: {"downsamples": 2, "depth": 3, "head_kernel": 3},
}


def head_area_share(config: RunConfig, split: str = "val") -> float:
    """Mean share (%) of the image that the head part covers on ``split`` of a synthetic-data config."""
    return part_area_share(config, split, "head")


def object_area_share(config: RunConfig, split: str = "test") -> float:
    """Mean share (%) of the image that the whole object (head and body) covers on ``split`` of a synthetic-data
    config: the mass share a uniform map puts on the object (the reference of
    :data:`wsol_utils.ui.experiments.COLLAPSE_RULE`)."""
    return part_area_share(config, split, "object")


def part_area_share(config: RunConfig, split: str, part: str) -> float:
    """Mean share (%) of the image that ``part`` (``"head"``, ``"body"`` or ``"object"``, their union) covers on
    ``split`` of a synthetic-data config."""
    dataset = config.dataset_for(split)
    if not hasattr(dataset, "part_masks"):
        raise ValueError(f"part_area_share: the {config.dataset!r} data set has no part masks (synthetic only)")
    head, body = dataset.part_masks(slice(None))
    masks = {"head": head, "body": body, "object": head | body}
    if part not in masks:
        raise ValueError(f"part_area_share: part={part!r}; choose one of {sorted(masks)}")
    return 100.0 * float(masks[part].mean())


# -- naming the protocol of every column --------------------------------------------------------------------------

#: Table labels of box metrics (:mod:`wsol_utils.studies.tables`, :func:`branch_comparison`) -> the same label with its
#: protocol named: the papers' (a box at tau = 0.2 of the max, docs/methods.md §2.1) or wsoleval's (§2.2).
PROTOCOL_COLUMNS: dict[str, str] = {
    "loc err top-1": "top-1 loc err @0.2 (papers)",
    "loc err top-5": "top-5 loc err @0.2 (papers)",
    "GT-known loc err": "GT-known loc err @0.2 (papers)",
    "GT-known loc acc A": "A: GT-known loc acc @0.2 (papers)",
    "GT-known loc acc B": "B: GT-known loc acc @0.2 (papers)",
    "MaxBoxAcc": "MaxBoxAcc (wsoleval)",
    "MaxBoxAccV2": "MaxBoxAccV2 (wsoleval)",
}


def name_protocols(table: pd.DataFrame, *, drop_top5: bool = False) -> pd.DataFrame:
    """``table`` with the protocol named in every box-metric column (:data:`PROTOCOL_COLUMNS`).

    Our columns ``"<label>"`` and their half widths ``"<label> ±"`` get the label with ``@0.2 (papers)`` or
    ``(wsoleval)``; published columns ``"paper <source>: <label>"`` get ``(papers)`` (the papers' own protocol, as
    published). Classification columns and unknown labels are kept as they are. ``drop_top5`` removes *our* top-5
    columns (and their ``±``), e.g. when top-5 covers half of the classes or more and says nothing; the paper's stay.
    E.g. ``"loc err top-1 ±"`` -> ``"top-1 loc err @0.2 (papers) ±"``, ``"paper CUB: loc err top-1"`` ->
    ``"paper CUB: top-1 loc err (papers)"``."""

    names: dict[str, str] = {}
    dropped: list[str] = []
    for column in map(str, table.columns):
        if column.startswith("paper ") and ": " in column:
            prefix, label = column.split(": ", 1)
            if label in PROTOCOL_COLUMNS:
                names[column] = f"{prefix}: {PROTOCOL_COLUMNS[label].replace(' @0.2 (papers)', ' (papers)')}"
            continue
        suffix = next((end for end in INTERVAL_SUFFIXES if column.endswith(end)), "")
        base = column.removesuffix(suffix) if suffix else column
        if drop_top5 and "top-5" in base:
            dropped.append(column)
        elif base in PROTOCOL_COLUMNS:
            names[column] = PROTOCOL_COLUMNS[base] + suffix
    return table.drop(columns=dropped).rename(columns=names)


def paired_readings(
    frame: pd.DataFrame,
    pair: tuple[str, str],
    readings: Sequence[tuple[str, str, str]],
    *,
    column: str = "variant",
    seed: str = "seed",
    names: tuple[str, str] | None = None,
) -> str:
    """Markdown sentences on ``pair[0] - pair[1]`` (values of ``column``), paired by ``seed``: one per reading
    ``(value column, metric name, protocol)`` of ``frame``, with the 95% t interval within [-100, 100]
    (:func:`wsol_utils.studies.stats.paired_seed_difference`), stating a difference only when the interval excludes 0
    (:func:`wsol_utils.studies.stats.describe_difference`). ``names`` prints the two (default: the values). Only the
    seeds both have are paired (:func:`pair_by_seed`); a repeated seed is an error."""
    first, second = pair_by_seed(frame, pair, column=column, seed=seed)
    shown = names or (str(pair[0]), str(pair[1]))
    lines = [
        describe_difference(
            shown[0],
            shown[1],
            paired_seed_difference(first[value].tolist(), second[value].tolist(), bounds=PERCENT_DIFFERENCE),
            metric,
            protocol,
        )
        for value, metric, protocol in readings
    ]
    return "\n\n".join(lines)


# -- top-5 columns, per-seed values, and a threshold chosen on val (notebook 05) ----------------------------------

__all__ += [
    "KNOB_TOLERANCE",
    "TOP5_MIN_CLASSES",
    "best_tau_table",
    "criterion_frame",
    "delta_choice_table",
    "delta_readings",
    "long_series",
    "rows_where",
    "seed_values",
    "paired_where",
    "tau_readings",
    "top5_informative",
    "top5_note",
    "with_chosen_column",
]

#: Top-5 says (almost) nothing when the top 5 classes are half of all classes or more: a data set needs more classes
#: than this for our top-5 columns to be shown.
TOP5_MIN_CLASSES = 10


def top5_informative(num_classes: int) -> bool:
    """Whether top-5 columns say something with ``num_classes`` classes: more than :data:`TOP5_MIN_CLASSES`."""
    if num_classes < 1:
        raise ValueError(f"top5_informative: num_classes={num_classes!r} must be >= 1")
    return num_classes > TOP5_MIN_CLASSES


def top5_note(num_classes: int, *, kept: str = "") -> str:
    """The sentence a table note gets when :func:`top5_informative` is false (else ``""``), starting with a space:
    our top-5 columns are left out because top-5 error is about 0; ``kept`` (e.g. ``"the paper's top-5 columns
    stay"``) is added in parentheses."""
    if top5_informative(num_classes):
        return ""
    tail = f" ({kept})" if kept else ""
    return (
        f" Our top-5 columns are left out: with {num_classes} classes the top 5 are half of them or more, so "
        f"top-5 error is about 0 and says nothing{tail}."
    )


#: Two knob values closer than this are the same point (a tau of the grid read back from a float column).
KNOB_TOLERANCE = 1e-9


def rows_where(frame: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    """The rows of ``frame`` whose column ``c`` equals ``where[c]`` for every key: numbers within
    :data:`KNOB_TOLERANCE` (so a tau of 0.2 finds ``0.2000000001``), anything else exactly."""
    mask = pd.Series(True, index=frame.index)
    for column, value in where.items():
        if column not in frame.columns:
            raise ValueError(f"rows_where: no column {column!r}; have {list(map(str, frame.columns))}")
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        mask &= (frame[column] - value).abs() < KNOB_TOLERANCE if numeric else frame[column] == value
    return frame[mask]


def seed_values(frame: pd.DataFrame, where: Mapping[str, Any], column: str, seed: str = "seed") -> pd.Series:
    """``column`` of the rows :func:`rows_where` ``where`` finds, as floats indexed and sorted by seed
    (:func:`by_seed`: no rows or a repeated seed is an error); pair two settings with :func:`on_common_seeds`."""
    return by_seed(rows_where(frame, where), f"seed_values: {dict(where)}", seed)[column].astype(float)


def paired_where(
    frame: pd.DataFrame, first: Mapping[str, Any], second: Mapping[str, Any], column: str
) -> tuple[list[float], list[float]]:
    """``column`` of the settings ``first`` and ``second`` (:func:`seed_values`) on the seeds both have, in seed
    order: what :func:`wsol_utils.studies.stats.paired_seed_difference` takes."""
    a, b = on_common_seeds(seed_values(frame, first, column), seed_values(frame, second, column))
    return a.tolist(), b.tolist()


def _first_row(frame: pd.DataFrame, where: Mapping[str, Any]) -> pd.Series:
    rows = rows_where(frame, where)
    if rows.empty:
        raise ValueError(f"no row with {dict(where)}")
    return rows.iloc[0]


def criterion_frame(means: pd.DataFrame, split: str, criteria: Mapping[str, str], knob: str = "delta") -> pd.DataFrame:
    """``split``'s rows of a :func:`seed_summary` frame (columns ``split``, ``knob``, each label with its interval
    columns ``"<label> ±"``, ``"<label> low"``, ``"<label> high"``) as one long frame: per criterion
    ``name -> label`` of ``criteria``, columns ``knob``, ``acc`` (the label's mean), ``"acc ±"``, ``"acc low"``,
    ``"acc high"`` and ``criterion`` (the name); criteria in the given order."""
    part = means[means["split"] == split]
    suffixes = ("", " ±", " low", " high")
    return pd.concat(
        [
            part[[knob, *(label + s for s in suffixes)]]
            .set_axis([knob, *("acc" + s for s in suffixes)], axis=1)
            .assign(criterion=name)
            for name, label in criteria.items()
        ],
        ignore_index=True,
    )


def _interval_cells(target: str, row: pd.Series, source: str) -> dict[str, float]:
    """``row``'s mean ``source`` and its interval (``" ±"``, ``" low"``, ``" high"``) as the columns of ``target``."""
    return {target + s: float(row[source + s]) for s in ("", " ±", " low", " high")}


def delta_choice_table(means: pd.DataFrame, criteria: Mapping[str, str], *, paper_delta: float) -> pd.DataFrame:
    """ACoL's erasing threshold chosen on val, scored on test, per criterion (docs/methods.md §1.3).

    ``means``: :func:`seed_summary` of a delta sweep by ``["split", "delta"]`` (val and test rows); ``criteria``:
    ``{name: label}``, the mean accuracy columns to choose by (higher is better). Per criterion (:func:`chosen_on_val`:
    the best mean val accuracy, first on ties): the chosen delta, its val accuracy, the test accuracy there, at
    ``paper_delta`` and at the test-chosen oracle delta, each with its 95% t interval over seeds (``" ±"``, and the
    ends ``" low"`` / ``" high"`` within the metric's range, as :func:`seed_summary` gives them)."""
    val, test = criterion_frame(means, "val", criteria), criterion_frame(means, "test", criteria)
    paper = f"test acc at delta {paper_delta:g} (paper's value)"
    rows = []
    for record in chosen_on_val(val, test, ["criterion"], "delta", "acc").to_dict("records"):
        name, on_val = str(record["criterion"]), float(record["delta (val)"])
        oracle = float(record["delta (oracle: test)"])
        at_val, at_test, at_paper, at_oracle = (
            _first_row(frame, {"criterion": name, "delta": delta})
            for frame, delta in ((val, on_val), (test, on_val), (test, paper_delta), (test, oracle))
        )
        rows.append(
            {
                "criterion (protocol)": name,
                "delta chosen on val": on_val,
                **_interval_cells("val acc", at_val, "acc"),
                **_interval_cells("test acc at the val choice", at_test, "acc"),
                **_interval_cells(paper, at_paper, "acc"),
                "oracle (test): delta": oracle,
                **_interval_cells("oracle (test): acc", at_oracle, "acc"),
            }
        )
    return pd.DataFrame(rows)


def best_tau_table(
    mean_curves: pd.DataFrame, value: str, *, paper_tau: float = PAPERS.tau, by: str = "method"
) -> pd.DataFrame:
    """The box threshold tau chosen on val per ``by`` (e.g. method), scored on test (docs/methods.md §2.1).

    ``mean_curves``: :func:`seed_summary` of tau curves by ``["split", by, "tau"]`` with the mean ``value`` (higher is
    better) and its interval columns. Per group (:func:`chosen_on_val`): the tau of the best mean val value, the
    test value there, at the papers' ``paper_tau`` and at the test-chosen oracle tau, each with its 95% t interval
    over seeds (``" ±"``, ``" low"``, ``" high"``, bounded as :func:`seed_summary` gives them)."""
    val, test = (mean_curves[mean_curves["split"] == split] for split in ("val", "test"))
    paper = f"test acc @{paper_tau:g} (papers)"
    rows = []
    for record in chosen_on_val(val, test, [by], "tau", value).to_dict("records"):
        name, on_val, oracle = str(record[by]), float(record["tau (val)"]), float(record["tau (oracle: test)"])
        at_val, at_oracle, at_paper = (_first_row(test, {by: name, "tau": tau}) for tau in (on_val, oracle, paper_tau))
        rows.append(
            {
                by: name,
                "tau chosen on val": on_val,
                **_interval_cells("test acc at the val tau", at_val, value),
                **_interval_cells(paper, at_paper, value),
                "oracle (test): tau": oracle,
                **_interval_cells("oracle (test): acc", at_oracle, value),
            }
        )
    return pd.DataFrame(rows)


def with_chosen_column(sweep_table: pd.DataFrame, delta_choice: pd.DataFrame) -> pd.DataFrame:
    """``sweep_table`` (one row per ``delta``) with a ``"chosen"`` column second: for each delta, which criteria of
    :func:`delta_choice_table` chose it on val (``"val: <criterion>"``) and which test-chosen oracles
    (``"oracle (test): <criterion>"``), joined by ``"; "``; empty for a delta nobody chose."""
    marks: dict[float, list[str]] = {float(delta): [] for delta in sweep_table["delta"]}
    for row in delta_choice.to_dict("records"):
        marks[float(row["delta chosen on val"])].append(f"val: {row['criterion (protocol)']}")
        marks[float(row["oracle (test): delta"])].append(f"oracle (test): {row['criterion (protocol)']}")
    out = sweep_table.copy()
    out.insert(1, "chosen", ["; ".join(marks[float(delta)]) for delta in out["delta"]])
    return out


def long_series(table: pd.DataFrame, x: str, series: Mapping[str, str], value: str, source: str) -> pd.DataFrame:
    """Columns of a wide ``table`` stacked for :func:`wsol_utils.ui.viz.plot_mean_curves`: per ``name -> column`` of
    ``series``, the rows ``x``, ``value`` (the column), ``"<value> ±"`` (the column's ``" ±"`` half width, NaN when
    the table has none, e.g. a published column), ``series`` (the name) and ``source``."""
    parts = []
    for name, column in series.items():
        half = table[f"{column} ±"] if f"{column} ±" in table.columns else float("nan")
        part = pd.DataFrame({x: table[x], value: table[column], f"{value} ±": half})
        parts.append(part.assign(series=name, source=source))
    return pd.concat(parts, ignore_index=True)


def delta_readings(
    frame: pd.DataFrame,
    delta_choice: pd.DataFrame,
    criteria: Mapping[str, tuple[str, str, str]],
    *,
    paper_delta: float,
) -> list[str]:
    """Markdown sentences on :func:`delta_choice_table`, from the per-seed test rows of a delta sweep (``frame``:
    columns ``split``, ``delta``, ``seed`` and the criteria's labels). ``criteria``: ``{name: (label, metric,
    protocol)}``. Per criterion: the test value at the val-chosen delta and at the oracle's (mean ± 95% t over seeds);
    the paper's delta minus the chosen one (when they differ); every other delta's difference from the chosen one
    whose paired interval excludes 0, or a sentence that none does."""
    lines = []
    for row in delta_choice.to_dict("records"):
        name, on_val = str(row["criterion (protocol)"]), float(row["delta chosen on val"])
        oracle = float(row["oracle (test): delta"])
        label, metric, protocol = criteria[name]

        def values(delta: float, label: str = label) -> list[float]:
            return seed_values(frame, {"split": "test", "delta": delta}, label).tolist()

        def paired(delta: float, label: str = label, on_val: float = on_val) -> Interval:
            first, second = ({"split": "test", "delta": d} for d in (delta, on_val))
            return paired_seed_difference(*paired_where(frame, first, second, label))

        lines.append(
            f"**{name}**: val chooses delta = {on_val:.1f}; on test that gives "
            f"{format_interval(seed_interval(values(on_val)))}% (the oracle, delta = {oracle:.1f} chosen on "
            f"test, gives {format_interval(seed_interval(values(oracle)))}% and is not a result)."
        )
        deltas = [float(d) for d in pd.unique(frame["delta"]) if float(d) != on_val]
        intervals = {d: paired(d) for d in deltas}
        if on_val != paper_delta:
            paper = f"delta {paper_delta:g} (the paper's value)"
            lines.append(describe_difference(paper, f"delta {on_val:.1f}", intervals[paper_delta], metric, protocol))
        shown = [
            describe_difference(f"delta {d:.1f}", f"delta {on_val:.1f}", iv, metric, protocol)
            for d, iv in intervals.items()
            if d != paper_delta and iv.excludes_zero()
        ]
        lines += shown or [f"No other delta differs from {on_val:.1f} in {metric} by an interval that excludes 0."]
    return lines


def tau_readings(
    curves: pd.DataFrame, best_tau: pd.DataFrame, value: str, *, paper_tau: float = PAPERS.tau, against: str = "CAM"
) -> list[str]:
    """Markdown sentences on :func:`best_tau_table`, from per-seed tau curves (``curves``: columns ``split``,
    ``method``, ``tau``, ``seed`` and ``value``, GT-known loc accuracy), test split, paired by seed: each method at
    its val-chosen tau minus itself at ``paper_tau``; then every other method minus ``against`` at ``paper_tau`` and
    at each one's val-chosen tau. A difference is stated only when its 95% t interval excludes 0."""
    metric, papers = "test GT-known loc accuracy", f"the papers' protocol (tau {paper_tau:g})"
    each_val = "the papers' box rule at each method's tau chosen on val"

    def paired(first: tuple[str, float], second: tuple[str, float]) -> Interval:
        where = [{"split": "test", "method": method, "tau": tau} for method, tau in (first, second)]
        return paired_seed_difference(*paired_where(curves, where[0], where[1], value))

    val_tau = {str(row["method"]): float(row["tau chosen on val"]) for row in best_tau.to_dict("records")}
    lines = []
    for method, tau in val_tau.items():
        if abs(tau - paper_tau) < KNOB_TOLERANCE:
            lines.append(f"{method}: val chooses the papers' tau = {paper_tau:g} itself.")
            continue
        interval = paired((method, tau), (method, paper_tau))
        lines.append(
            describe_difference(
                f"{method} at tau {tau:.2f} (chosen on val)",
                f"{method} at tau {paper_tau:g}",
                interval,
                metric,
                "the papers' box rule",
            )
        )
    for method in (m for m in val_tau if m != against):
        at_paper = paired((method, paper_tau), (against, paper_tau))
        at_val = paired((method, val_tau[method]), (against, val_tau[against]))
        lines.append(describe_difference(method, against, at_paper, metric, papers))
        lines.append(describe_difference(method, against, at_val, metric, each_val))
    return lines
