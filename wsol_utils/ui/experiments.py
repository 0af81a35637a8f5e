"""The suite's experiment design, fixed in code before the numbers it produces were read.

What the suite *concludes* rests on a small pre-registered family of comparisons; everything else it prints is
exploratory and says so.

* **Main comparison** (:data:`MAIN_VARIANTS`): CAM, ACoL at the paper's delta 0.6, ACoL at the delta chosen on
  **val** (:data:`DELTA_CRITERION` over :data:`DELTA_GRID`, mean over the exploratory seeds), and HCLNet (add), each
  trained with every seed of :attr:`wsol_utils.ui.suite.Suite.seeds` (ten) on the main instrument. On the synthetic set
  each seed trains and is scored on its own draw of the data (:meth:`wsol_utils.ui.suite.Suite.config`), so the spread
  over seeds includes the test set's sampling noise. Test-time maps are label-free (branch B erased with branch A's
  *predicted* class).
* **Primary family** (:data:`PRIMARY_FAMILY`): each ACoL variant and HCLNet minus CAM, paired by seed, under each
  protocol: GT-known loc accuracy at the papers' tau = 0.2 (docs/methods.md §2.1) and wsoleval's MaxBoxAccV2
  (§2.2). Six comparisons, corrected together with Holm's step-down procedure (:func:`primary_table`): a difference
  is declared only when its Holm-adjusted paired-t p value is below :data:`ALPHA`.
* **ACoL's instability** is counted, not averaged away: a seed's branch B has *collapsed* by the rule
  :data:`COLLAPSE_RULE` (:func:`branch_b_collapsed`), written before any count was seen.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from wsol_utils.data.synthetic import SyntheticConfig
from wsol_utils.engine import EvalResult, RunConfig, example_maps, load_run, read_history, tau_curve, train_many
from wsol_utils.nets.methods import get_method
from wsol_utils.studies.analysis import (
    PROTOCOL_METRICS,
    RECEPTIVE_FIELDS,
    aggregate_summaries,
    head_area_share,
    object_area_share,
    pair_by_seed,
    run_frame,
    seed_rows,
    seed_summary,
)
from wsol_utils.studies.stats import (
    PERCENT_DIFFERENCE,
    holm_adjust,
    interval_columns,
    paired_seed_difference,
    paired_t_pvalue,
)
from wsol_utils.ui.suite import Suite

__all__ = [
    "ALPHA",
    "COLLAPSE_RULE",
    "DELTA_CRITERION",
    "DELTA_GRID",
    "MAIN_VARIANTS",
    "PRIMARY_FAMILY",
    "PRIMARY_METRICS",
    "Comparison",
    "Variant",
    "branch_b_collapsed",
    "choose_delta",
    "main_variants",
    "per_seed_values",
    "paired_values",
    "primary_table",
    "MainComparison",
    "SEED_METRICS",
    "SEED_METRIC_LABELS",
    "delta_sweep",
    "main_table",
    "run_main_comparison",
    "sweep_frame",
    "baseline_frame",
    "primary_readings",
    "exploratory_differences",
    "CONVERGED_VAL_ACC",
    "REGIME_CELLS",
    "REGIME_METHODS",
    "final_val_accuracy",
    "regime_changes",
    "RegimeMap",
    "run_regime_map",
    "RegimeExamples",
    "describe_regime",
    "regime_examples",
    "planned_runs",
    "StudyRuns",
    "delta_sweep_runs",
    "main_comparison_runs",
    "regime_map_runs",
    "train_suite_runs",
    "has_val_split",
    "val_chosen_delta",
    "baseline_summaries",
]

#: Family-wise error rate of the primary family (Holm).
ALPHA = 0.05


@dataclass(frozen=True)
class Variant:
    """One row of the main comparison: a method trained with ``changes`` and mapped with ``fusion`` at test time.

    ``key`` names the row in code and per-seed CSVs; ``label`` is what tables print."""

    key: str
    label: str
    method: str
    changes: Mapping[str, Any] = field(default_factory=dict)
    fusion: str | None = None


#: The deltas of ACoL Table 6, among which the main comparison's second ACoL row is chosen on val.
DELTA_GRID: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
#: How that delta is chosen: the highest mean val MaxBoxAccV2 over the exploratory seeds (wsoleval's threshold-free
#: criterion, so the choice does not favour the papers' tau); ties go to the first in :data:`DELTA_GRID`.
DELTA_CRITERION = "maxboxacc_v2"
#: The paper's delta (ACoL §3.2; docs/methods.md §1.3).
PAPER_DELTA = 0.6

#: The main comparison's rows with the val-chosen delta left open (:func:`main_variants` fills it in).
MAIN_VARIANTS: tuple[Variant, ...] = (
    Variant("cam", "CAM", "cam"),
    Variant("acol", "ACoL (delta 0.6, paper)", "acol", {"delta": PAPER_DELTA}, "max"),
    Variant("acol_val", "ACoL (delta chosen on val)", "acol", {}, "max"),
    Variant("hclnet", "HCLNet (add)", "hclnet", {}, "add"),
)


def main_variants(val_delta: float) -> tuple[Variant, ...]:
    """:data:`MAIN_VARIANTS` with the ACoL row chosen on val trained at ``val_delta`` (and its label saying so)."""
    out = []
    for variant in MAIN_VARIANTS:
        if variant.key == "acol_val":
            label = f"ACoL (delta {val_delta:g} chosen on val)"
            variant = Variant(variant.key, label, variant.method, {"delta": float(val_delta)}, variant.fusion)
        out.append(variant)
    return tuple(out)


@dataclass(frozen=True)
class StudyRuns:
    """The runs one study trains, written once for planning (:func:`planned_runs`) and running.

    ``requests``: ``(method, changes)`` per request (:meth:`wsol_utils.ui.suite.Suite.config` changes), each named by
    the same position of ``keys`` (a variant key, a delta, a regime cell) and trained at every seed of ``seeds``;
    ``evaluate``: per request, the :meth:`~wsol_utils.ui.suite.Suite.evaluate` options its workers run right after
    training."""

    keys: tuple[Any, ...]
    requests: tuple[tuple[str, dict[str, Any]], ...]
    evaluate: tuple[tuple[dict[str, Any], ...], ...]
    seeds: tuple[int, ...]

    def only(self, keys: Sequence[Any]) -> StudyRuns:
        """The requests named by ``keys``, in this study's order."""
        picked = [i for i, key in enumerate(self.keys) if key in keys]
        return StudyRuns(
            tuple(self.keys[i] for i in picked),
            tuple(self.requests[i] for i in picked),
            tuple(self.evaluate[i] for i in picked),
            self.seeds,
        )

    def train(self, suite: Suite) -> dict[Any, dict[int, Path]]:
        """Train (or find in the run cache) every request at every seed with :meth:`~wsol_utils.ui.suite.Suite.
        train_many`; ``{key: {seed: run dir}}``."""
        grid = suite.train_many(
            list(self.requests), evaluate=[list(options) for options in self.evaluate], seeds=self.seeds
        )
        return dict(zip(self.keys, grid))


def choose_delta(val_scores: pd.DataFrame, criterion: str = DELTA_CRITERION) -> float:
    """The delta of :data:`DELTA_GRID` with the highest mean ``criterion`` on val over seeds (first on ties).

    ``val_scores``: one row per (``delta``, ``seed``) ACoL run scored on the **val** split, with a ``criterion``
    column. Every delta of the grid must be there with the same seeds, so that no delta wins by missing a bad seed.
    """
    missing = [delta for delta in DELTA_GRID if not np.isclose(val_scores["delta"], delta).any()]
    if missing:
        raise ValueError(f"choose_delta: no val scores for delta {missing}; score every delta of {DELTA_GRID}")
    seeds = {str(d): frozenset(part["seed"]) for d, part in val_scores.groupby("delta")}
    if len(set(seeds.values())) != 1:
        raise ValueError(f"choose_delta: the deltas were scored with different seeds {seeds}; use the same seeds")
    means = val_scores.groupby("delta", sort=True)[criterion].mean()
    ordered = [float(means[means.index[np.isclose(means.index, delta)][0]]) for delta in DELTA_GRID]
    return DELTA_GRID[int(np.argmax(ordered))]


# -- the primary family ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """``variant - against`` of the summary key ``metric`` under ``protocol``, paired by seed."""

    variant: str
    against: str
    metric: str
    protocol: str


#: The metric of each protocol in the primary family: GT-known loc accuracy at the papers' tau = 0.2, and wsoleval's
#: MaxBoxAccV2 (docs/methods.md §2.1, §2.2).
PRIMARY_METRICS: dict[str, str] = {"papers (tau 0.2)": "gt_known_loc_acc", "wsoleval": "maxboxacc_v2"}
#: The six primary comparisons: each of HCLNet, ACoL (paper's delta), ACoL (val delta) minus CAM under each protocol.
PRIMARY_FAMILY: tuple[Comparison, ...] = tuple(
    Comparison(variant, "cam", metric, protocol)
    for variant in ("hclnet", "acol", "acol_val")
    for protocol, metric in PRIMARY_METRICS.items()
)


def per_seed_values(frame: pd.DataFrame, variant: str, column: str) -> pd.Series:
    """``column`` of ``variant``'s rows of a per-seed frame (columns ``variant``, ``seed``, ...), indexed and sorted by
    seed (:func:`wsol_utils.studies.analysis.seed_rows`); a repeated seed is an error (a frame mixing two runs of one
    seed cannot be paired)."""
    return seed_rows(frame, variant)[column].astype(float)


def paired_values(frame: pd.DataFrame, pair: tuple[str, str], column: str) -> tuple[pd.Series, pd.Series]:
    """``column`` of the two variants of ``pair`` on the seeds both have, sorted by seed
    (:func:`wsol_utils.studies.analysis.pair_by_seed` of a per-seed frame), as floats."""
    first, second = pair_by_seed(frame, pair)
    return first[column].astype(float), second[column].astype(float)


def primary_table(
    frame: pd.DataFrame, family: Sequence[Comparison] = PRIMARY_FAMILY, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The pre-registered comparisons, each paired by seed, corrected together.

    ``frame``: the per-seed frame of the main comparison, one row per (``variant``, ``seed``) with a column per
    summary key (``gt_known_loc_acc``, ``maxboxacc_v2`` ...). Per comparison: the seeds both variants have, the mean
    difference with its 95% t interval within [-100, 100] (:func:`wsol_utils.studies.stats.paired_seed_difference`), the
    paired t test's two-sided p, Holm's adjusted p over the whole ``family``
    (:func:`wsol_utils.studies.stats.holm_adjust`)
    and the verdict: ``"higher"`` / ``"lower"`` when the adjusted p is below :data:`ALPHA`, else ``"not shown"``.
    ``labels`` maps variant keys to the names printed (default: the keys)."""
    names = dict(labels or {})
    rows = []
    for comparison in family:
        mine, base = paired_values(frame, (comparison.variant, comparison.against), comparison.metric)
        differences = (mine - base).tolist()
        interval = paired_seed_difference(mine.tolist(), base.tolist(), bounds=PERCENT_DIFFERENCE)
        rows.append(
            {
                "comparison": f"{names.get(comparison.variant, comparison.variant)} - "
                f"{names.get(comparison.against, comparison.against)}",
                "protocol": comparison.protocol,
                "metric": SEED_METRIC_LABELS.get(comparison.metric, comparison.metric),
                "seeds": len(mine),
                **interval_columns("difference", interval),
                "p": paired_t_pvalue(differences),
                "higher in": int(sum(d > 0 for d in differences)),
            }
        )
    table = pd.DataFrame(rows)
    table["p (Holm)"] = holm_adjust(table["p"].tolist())
    table["verdict"] = [_verdict(mean, p) for mean, p in zip(table["difference"], table["p (Holm)"])]
    return table


def _verdict(mean: float, adjusted_p: float) -> str:
    if math.isnan(adjusted_p) or adjusted_p >= ALPHA:
        return "not shown"
    return "higher" if mean > 0 else "lower"


# -- ACoL's branch B: collapsed or not -------------------------------------------------------------------------

#: The rule, written before any count was seen: branch B has collapsed in a run when its normalized map puts no more
#: of its mass on the object than a uniform map would, i.e. the mean over test images of B's mass share on the
#: object mask is at most the mean share of the image the object covers.
COLLAPSE_RULE = (
    "branch B collapsed: the mean share of B's map mass on the object (test images) is at most the object's mean "
    "area share, i.e. B's map is no more on the object than a uniform map"
)


def branch_b_collapsed(records: pd.DataFrame, object_area_share: float) -> bool:
    """:data:`COLLAPSE_RULE` for one run: ``records`` of its evaluation (column ``b_mass_object``, fractions in
    [0, 1]), ``object_area_share`` the object's mean area share of the same images in percent
    (:func:`wsol_utils.studies.analysis.object_area_share`). A run without branch B's masses is an error."""
    if "b_mass_object" not in records.columns:
        raise ValueError("branch_b_collapsed: the records have no b_mass_object (a one-branch method, or no masks)")
    mass = float(np.nanmean(records["b_mass_object"].to_numpy(dtype=float)))
    return bool(100.0 * mass <= float(object_area_share))


# -- running the design on a suite -------------------------------------------------------------------------------

#: The evaluation summary keys of the per-seed frames (all percentages; docs/methods.md §2).
SEED_METRICS: tuple[str, ...] = (
    "cls_acc_top1",
    "loc_acc_top1",
    "gt_known_loc_acc",
    "maxboxacc",
    "maxboxacc_v2",
    "pxap",
)


def has_val_split(suite: Suite) -> bool:
    """Whether the suite's data set has a val split to choose delta on: the synthetic set and wsoleval folders do;
    CUB only when ``val_per_class`` holds training images out (the papers' CUB setting has no val split)."""
    return suite.dataset != "cub" or bool(suite.config("acol").dataset_kwargs.get("val_per_class"))


def val_chosen_delta(suite: Suite) -> float:
    """:func:`choose_delta` on the :func:`delta_sweep` scored on val; the paper's delta when the data set has no val
    split (:func:`has_val_split`: then the "chosen on val" row repeats the paper's, and its label says delta 0.6)."""
    if not has_val_split(suite):
        return PAPER_DELTA
    return choose_delta(sweep_frame(suite, delta_sweep(suite), "val"))


def delta_sweep(suite: Suite) -> dict[float, dict[int, Path]]:
    """ACoL trained at every delta of :data:`DELTA_GRID` with the exploratory seeds, each run evaluated on val and
    test (fusion max) by its worker; ``{delta: {seed: run dir}}``."""
    return delta_sweep_runs(suite).train(suite)


def delta_sweep_runs(suite: Suite) -> StudyRuns:
    """The runs of :func:`delta_sweep`: ACoL at each delta of :data:`DELTA_GRID` (keys: the deltas), exploratory
    seeds, each evaluated on val and test with fusion max."""
    return StudyRuns(
        keys=DELTA_GRID,
        requests=tuple(("acol", {"delta": delta}) for delta in DELTA_GRID),
        evaluate=tuple(({"fusion": "max", "split": "val"}, {"fusion": "max"}) for _ in DELTA_GRID),
        seeds=tuple(suite.exploratory_seeds),
    )


def sweep_frame(suite: Suite, sweep: Mapping[float, Mapping[int, Path]], split: str) -> pd.DataFrame:
    """One row per (``delta``, ``seed``) of a :func:`delta_sweep` scored on ``split`` (fusion max), with
    :data:`SEED_METRICS` and the errors of the papers' tables."""
    rows = []
    for delta, runs in sweep.items():
        for seed, run in runs.items():
            summary = suite.evaluate(run, split=split, fusion="max").summary
            keys = (*SEED_METRICS, "loc_err_top1", "loc_err_top5", "gt_known_loc_err")
            rows.append({"delta": delta, "seed": seed, **{key: float(summary.get(key, math.nan)) for key in keys}})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MainComparison:
    """The main comparison run on a suite: its variants, their runs and evaluations per seed, and the per-seed frame
    (one row per variant and seed: ``variant``, ``label``, ``seed``, ``delta``, :data:`SEED_METRICS`, and for
    two-branch methods ``b_collapsed`` by :data:`COLLAPSE_RULE`)."""

    variants: tuple[Variant, ...]
    val_delta: float
    runs: dict[str, dict[int, Path]]
    results: dict[str, dict[int, EvalResult]]
    frame: pd.DataFrame

    @property
    def labels(self) -> dict[str, str]:
        """Variant key -> label."""
        return {variant.key: variant.label for variant in self.variants}


def run_main_comparison(suite: Suite, val_delta: float) -> MainComparison:
    """Train (or find in the run cache) every :func:`main_variants` row at every seed of ``suite.seeds``, evaluate
    each on test with its fusion (label-free), and build the per-seed frame. The ACoL row chosen on val reuses the
    paper-delta runs when ``val_delta`` is 0.6."""
    variants = main_variants(val_delta)
    runs = main_comparison_runs(suite, val_delta).train(suite)
    if "acol_val" not in runs:
        runs["acol_val"] = runs["acol"]
    results = {v.key: suite.evaluate_seeds(runs[v.key], fusion=v.fusion) for v in variants}
    rows = []
    for variant in variants:
        for seed, result in results[variant.key].items():
            summary = result.summary
            row: dict[str, Any] = {"variant": variant.key, "label": variant.label, "seed": seed}
            row["delta"] = float(variant.changes["delta"]) if "delta" in variant.changes else math.nan
            row.update({key: float(summary.get(key, math.nan)) for key in SEED_METRICS})
            if get_method(variant.method).two_branch and suite.dataset == "synthetic":
                share = object_area_share(suite.config(variant.method, seed=seed), "test")
                row["object area (%)"] = share
                row["b_collapsed"] = branch_b_collapsed(result.records, share)
            rows.append(row)
    return MainComparison(variants, float(val_delta), runs, results, pd.DataFrame(rows))


def main_comparison_runs(suite: Suite, val_delta: float) -> StudyRuns:
    """The runs of :func:`run_main_comparison`: each :func:`main_variants` row (keys: the variant keys) at every
    seed of ``suite.seeds``, evaluated on test with its fusion; the row chosen on val is left out when ``val_delta``
    is the paper's (it is the paper-delta row)."""
    distinct = [v for v in main_variants(val_delta) if not (v.key == "acol_val" and val_delta == PAPER_DELTA)]
    return StudyRuns(
        keys=tuple(v.key for v in distinct),
        requests=tuple((v.method, dict(v.changes)) for v in distinct),
        evaluate=tuple(({"fusion": v.fusion},) for v in distinct),
        seeds=tuple(suite.seeds),
    )


def main_table(comparison: MainComparison, extra: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per variant (then per ``extra`` group, e.g. :func:`baseline_frame`'s rows): the seeds, each of
    :data:`SEED_METRICS` as its mean with the 95% t interval within [0, 100] (``"x"``, ``"x ±"``, ``"x low"``,
    ``"x high"``), and how many seeds' branch B collapsed (two-branch methods). Column labels name their protocol
    (:data:`SEED_METRIC_LABELS`)."""
    per_seed = pd.concat([comparison.frame, extra], ignore_index=True) if extra is not None else comparison.frame
    table = seed_summary(per_seed.rename(columns=SEED_METRIC_LABELS), ["label"], list(SEED_METRIC_LABELS.values()))
    if "b_collapsed" in per_seed:
        table["branch B collapsed (seeds)"] = [
            collapse_count(per_seed[per_seed["label"] == label]["b_collapsed"]) for label in table["label"]
        ]
    return table.rename(columns={"label": "method"})


def exploratory_differences(
    frame: pd.DataFrame, metrics: Sequence[str], labels: Mapping[str, str] | None = None, against: str = "cam"
) -> pd.DataFrame:
    """Every other variant minus ``against``, paired by seed, for summary keys outside the primary family (e.g.
    classification): one row per variant with ``seeds`` and per metric its
    :func:`~wsol_utils.studies.stats.interval_columns`
    within [-100, 100] and ``"<metric> excludes 0"``. Labelled exploratory: not corrected for multiplicity."""
    names = dict(labels or {})
    rows = []
    for variant in pd.unique(frame["variant"]):
        if variant == against:
            continue
        row: dict[str, Any] = {"comparison": f"{names.get(variant, variant)} - {names.get(against, against)}"}
        for metric in metrics:
            mine, base = paired_values(frame, (variant, against), metric)
            interval = paired_seed_difference(mine.tolist(), base.tolist(), bounds=PERCENT_DIFFERENCE)
            row["seeds"] = len(mine)
            label = SEED_METRIC_LABELS.get(metric, metric)
            row.update(interval_columns(label, interval))
            row[f"{label} excludes 0"] = interval.excludes_zero()
        rows.append(row)
    return pd.DataFrame(rows).assign(family="exploratory")


def collapse_count(flags: pd.Series) -> str:
    """``"k/n"``: how many of ``n`` seeds' branch B collapsed (:data:`COLLAPSE_RULE`); ``""`` for a one-branch
    method (all NaN)."""
    known = flags.dropna()
    return f"{int(known.astype(bool).sum())}/{len(known)}" if len(known) else ""


#: Per-seed frame columns -> table labels, each naming its protocol (docs/methods.md §2.1, §2.2).
SEED_METRIC_LABELS: dict[str, str] = {
    "cls_acc_top1": "cls acc top-1",
    "loc_acc_top1": "top-1 loc acc @0.2 (papers)",
    "gt_known_loc_acc": "GT-known loc acc @0.2 (papers)",
    "maxboxacc": "MaxBoxAcc (wsoleval)",
    "maxboxacc_v2": "MaxBoxAccV2 (wsoleval)",
    "pxap": "PxAP (wsoleval)",
}


def baseline_frame(suite: Suite, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """The calibration baselines (docs/methods.md §2.4) scored on each seed's own test set (the same draws as the
    main comparison's runs), one row per (baseline, seed): ``variant`` ``"baseline:<name>"``, ``label``, ``seed``,
    :data:`SEED_METRICS` and the summary's errors."""
    from wsol_utils.engine.baselines import BASELINES, available_baselines, evaluate_baseline

    rows = []
    for seed in suite.seeds if seeds is None else seeds:
        config = suite.config("cam", seed=seed)
        for name in available_baselines(config):
            summary = evaluate_baseline(name, config, progress=False).summary
            row: dict[str, Any] = {"variant": f"baseline:{name}", "label": f"baseline: {BASELINES[name].label}"}
            row["seed"] = seed
            row.update({key: float(summary.get(key, math.nan)) for key in (*SEED_METRICS, *ERROR_KEYS)})
            rows.append(row)
    return pd.DataFrame(rows)


#: The errors of the papers' tables (HCLNet Table 1), as evaluation summary keys.
ERROR_KEYS: tuple[str, ...] = ("cls_err_top1", "loc_err_top1", "gt_known_loc_err")


def primary_readings(table: pd.DataFrame, digits: int = 1) -> str:
    """One Markdown line per row of :func:`primary_table`: the difference with its interval, the seeds on which it
    was positive, the raw and Holm-adjusted p, and the verdict in words (a difference is stated only when Holm's
    adjusted p is below :data:`ALPHA`)."""
    lines = []
    for row in table.to_dict("records"):
        spread = f"[{row['difference low']:+.{digits}f}, {row['difference high']:+.{digits}f}]"
        verdict = {
            "higher": f"**higher**, after Holm's correction over the {len(table)} primary comparisons",
            "lower": f"**lower**, after Holm's correction over the {len(table)} primary comparisons",
        }.get(row["verdict"], f"**not shown** to differ (Holm over the {len(table)} primary comparisons)")
        lines.append(
            f"- {row['comparison']}, {row['metric']} under the {row['protocol']} protocol: "
            f"{row['difference']:+.{digits}f} {spread} (95% t over {row['seeds']} seeds; higher on "
            f"{row['higher in']} of {row['seeds']}); p = {row['p']:.3g}, Holm p = {row['p (Holm)']:.3g}: {verdict}."
        )
    return "\n".join(lines)


# -- the regime map (exploratory) ------------------------------------------------------------------------------

#: The regime map's cells, ``(receptive field px, head size as a share of the image side)``: field over head from
#: 0.57 (8 px field, 14 px head) through 1.1 (the main instrument: 8 px, 7 px; its runs are the main comparison's) to
#: 2.6 (18 px, 7 px), each at the instrument's budget (5,000 training images, 6 epochs). The 5 px field (97 s per
#: CAM run, 75% val top-1 at 6 epochs) and the 34 px field (78%) did not reach :data:`CONVERGED_VAL_ACC` in a
#: seed-0 pilot on val and would need twice the epochs; they were cut to fit the suite's budget.
REGIME_CELLS: tuple[tuple[int, float], ...] = ((8, 0.22), (8, 0.11), (18, 0.11))
#: A cell counts only when its CAM runs reach this mean val top-1 accuracy (%) at their last epoch; otherwise it is
#: marked not converged and left out of the colour scale.
CONVERGED_VAL_ACC = 90.0
#: The methods of every cell and their test-time fusion (ACoL at the paper's delta).
REGIME_METHODS: dict[str, tuple[dict[str, Any], str | None]] = {
    "cam": ({}, None),
    "acol": ({"delta": PAPER_DELTA}, "max"),
    "hclnet": ({}, "add"),
}


def regime_changes(field: int, head_size: float) -> dict[str, Any]:
    """The :meth:`~wsol_utils.ui.suite.Suite.config` changes of one regime cell: the receptive field's
    ``model_kwargs`` (:data:`wsol_utils.studies.analysis.RECEPTIVE_FIELDS`) and, unless it is the data set's default,
    the head size (so the main instrument's cell is exactly the main comparison's runs)."""
    changes: dict[str, Any] = {"model_kwargs": RECEPTIVE_FIELDS[field]}
    if not math.isclose(head_size, SyntheticConfig().head_size):
        changes["dataset_kwargs"] = {"head_size": head_size}
    return changes


def final_val_accuracy(run_dir: str | Path) -> float:
    """The run's val top-1 accuracy (%) after its last epoch, from ``history.csv`` (NaN without a val column)."""
    rows = read_history(run_dir)
    value = rows[-1].get("val_acc", "") if rows else ""
    return 100.0 * float(value) if value not in ("", None) else math.nan


@dataclass(frozen=True)
class RegimeMap:
    """The regime map run on a suite: ``runs[(field, head_size, method)] = {seed: run dir}`` and the per-seed frame
    (one row per cell, method and seed: ``receptive field (px)``, ``head (px)``, ``method``, ``seed``, the metrics of
    :func:`wsol_utils.studies.analysis.run_frame` with branch masses, ``head area (%)``, ``CAM val top-1 (%)`` of the
    same cell and seed, and ``converged``: whether the cell's CAM reaches :data:`CONVERGED_VAL_ACC` on mean)."""

    runs: dict[tuple[int, float, str], dict[int, Path]]
    frame: pd.DataFrame

    @property
    def all_runs(self) -> list[Path]:
        return [run for seeds in self.runs.values() for run in seeds.values()]


def run_regime_map(suite: Suite) -> RegimeMap:
    """Train (or find cached) every :data:`REGIME_CELLS` x :data:`REGIME_METHODS` run with the exploratory seeds,
    each evaluated on its own test set (label-free) by its worker, and build the per-seed frame."""
    runs = regime_map_runs(suite).train(suite)
    parts = []
    for (rf, head, method), seeds in runs.items():
        fusion = REGIME_METHODS[method][1]
        results = {
            (rf, round(head * suite.config(method).image_size, 2), method, seed): result
            for seed, result in suite.evaluate_seeds(seeds, fusion=fusion).items()
        }
        part = run_frame(results, ("receptive field (px)", "head (px)", "method", "seed"), masses=("a", "b"))
        part["head area (%)"] = [
            head_area_share(suite.config(method, seed=seed, **regime_changes(rf, head)), "test") for seed in seeds
        ]
        part["CAM val top-1 (%)"] = [final_val_accuracy(runs[(rf, head, "cam")][seed]) for seed in seeds]
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    cells = ["receptive field (px)", "head (px)"]
    frame["converged"] = frame.groupby(cells)["CAM val top-1 (%)"].transform("mean") >= CONVERGED_VAL_ACC
    return RegimeMap(runs, frame)


def regime_map_runs(suite: Suite) -> StudyRuns:
    """The runs of :func:`run_regime_map`: every :data:`REGIME_CELLS` x :data:`REGIME_METHODS` (keys:
    ``(field, head_size, method)``) with the exploratory seeds, each evaluated on test with its method's fusion."""
    cells = [(rf, head, method) for rf, head in REGIME_CELLS for method in REGIME_METHODS]
    return StudyRuns(
        keys=tuple(cells),
        requests=tuple(
            (method, {**REGIME_METHODS[method][0], **regime_changes(rf, head)}) for rf, head, method in cells
        ),
        evaluate=tuple(({"fusion": REGIME_METHODS[method][1]},) for _, _, method in cells),
        seeds=tuple(suite.exploratory_seeds),
    )


def describe_regime(differences: pd.DataFrame, protocols: Mapping[str, str]) -> str:
    """Markdown sentences over :func:`wsol_utils.studies.analysis.paired_differences` of the regime map (with a
    ``converged`` column): per protocol and method, the converged cells where the method is above or below CAM
    beyond the seed noise, and the cells left out because CAM did not converge. Exploratory: no correction."""
    names = {"acol": "ACoL", "hclnet": "HCLNet"}
    lines = []
    for protocol, column in protocols.items():
        for method, part in differences.groupby("method", sort=False):
            counted = part[part["converged"].astype(bool)]
            above = _cells(counted[counted[f"{column} excludes 0"] & (counted[column] > 0)], column)
            below = _cells(counted[counted[f"{column} excludes 0"] & (counted[column] < 0)], column)
            left_out = _cells(part[~part["converged"].astype(bool)], column)
            line = (
                f"**{names.get(str(method), method)} vs CAM, {protocol}** (exploratory): above CAM beyond the seed "
                f"noise "
                f"in {above or 'no cell'}; below in {below or 'no cell'}; elsewhere no difference is shown."
            )
            lines.append(line + (f" Not converged, not read: {left_out}." if left_out else ""))
    return "\n\n".join(lines)


def _cells(rows: pd.DataFrame, column: str) -> str:
    """``"RF 8 px / head 7 px (+9.1 [+4.9, +13.3])"``, ... for rows of a regime differences table."""
    return ", ".join(
        f"RF {row['receptive field (px)']:g} px / head {row['head (px)']:.0f} px ({row[column]:+.1f} "
        f"[{row[f'{column} low']:+.1f}, {row[f'{column} high']:+.1f}])"
        for row in rows.to_dict("records")
    )


@dataclass(frozen=True)
class RegimeExamples:
    """One test image per regime cell with the maps of each method: ``images`` ``(N, H, W, 3)``, ``maps[title]``
    ``(N, H, W)`` in [0, 1], ``gt_boxes`` N x ``(N_i, 4)``, ``labels`` one per row (the cell)."""

    images: np.ndarray
    maps: dict[str, np.ndarray]
    gt_boxes: list[np.ndarray]
    labels: list[str]


def regime_examples(regime: RegimeMap, seed: int) -> RegimeExamples:
    """The first test image of each cell (its own data draw for ``seed``) with CAM's map, ACoL's branch B and
    fused (max) maps and HCLNet's fused (add) map, made as every evaluation makes them (label-free)."""
    images, gt_boxes, labels = [], [], []
    maps: dict[str, list[np.ndarray]] = {"CAM": [], "ACoL branch B": [], "ACoL fused": [], "HCLNet fused": []}
    for rf, head in REGIME_CELLS:
        cam = example_maps(regime.runs[(rf, head, "cam")][seed], count=1)
        acol = example_maps(regime.runs[(rf, head, "acol")][seed], count=1, fusion="max")
        hclnet = example_maps(regime.runs[(rf, head, "hclnet")][seed], count=1, fusion="add")
        images.append(cam.images[0])
        gt_boxes.append(cam.gt_boxes[0])
        labels.append(f"RF {rf} px\nhead {head * cam.images.shape[1]:.0f} px")
        for title, source, key in (
            ("CAM", cam, "a"),
            ("ACoL branch B", acol, "b"),
            ("ACoL fused", acol, "fused"),
            ("HCLNet fused", hclnet, "fused"),
        ):
            maps[title].append(source.maps[key][0])
    return RegimeExamples(np.stack(images), {k: np.stack(v) for k, v in maps.items()}, gt_boxes, labels)


# -- every run of the suite, trained in one pool ---------------------------------------------------------------


def planned_runs(suite: Suite) -> list[tuple[RunConfig, list[dict[str, Any]]]]:
    """Every run the notebooks train before the val-chosen delta is known, once each, with the evaluations their
    workers run right after training: the delta sweep (:func:`delta_sweep`), the main comparison at the paper's
    delta (:data:`MAIN_VARIANTS` less the val row) and, on the synthetic set, the regime map
    (:func:`run_regime_map`). Two-branch runs first (they take longest), seeds alternating, so that both workers
    rarely generate the same data draw at once. The studies' own request lists (:class:`StudyRuns`)."""
    studies = [delta_sweep_runs(suite)] if has_val_split(suite) else []
    studies.append(main_comparison_runs(suite, PAPER_DELTA))
    if suite.dataset == "synthetic":
        studies.append(regime_map_runs(suite))
    requests = [
        (method, changes, study.seeds, evaluations)
        for study in studies
        for (method, changes), evaluations in zip(study.requests, study.evaluate)
    ]
    planned: dict[str, tuple[RunConfig, list[dict[str, Any]]]] = {}
    for method, changes, seeds, evaluations in requests:
        for seed in seeds:
            config = suite.config(method, **{**changes, "seed": seed})
            entry = planned.setdefault(config.key(), (config, []))
            options = [suite.evaluation_options(**o) for o in evaluations]
            entry[1].extend(o for o in options if o not in entry[1])
    return sorted(planned.values(), key=lambda item: not get_method(item[0].method).two_branch)


def train_suite_runs(suite: Suite) -> float:
    """Train every run of the suite in one pool of workers (``WSOL_TRAIN_JOBS``, default one per core), so that the
    cores stay busy whichever notebook needs a run: :func:`planned_runs`, then the delta chosen on val from the sweep
    (:func:`choose_delta`) and the main comparison's ACoL row at that delta. The notebooks then find every run in the
    cache. Returns the val-chosen delta."""
    planned = planned_runs(suite)
    configs = [config for config, _ in planned]
    train_many(configs, runs_dir=suite.runs_dir, progress=suite.progress, evaluations=[e for _, e in planned])
    val_delta = val_chosen_delta(suite)
    if val_delta != PAPER_DELTA:
        main_comparison_runs(suite, val_delta).only(["acol_val"]).train(suite)
    return val_delta


def baseline_summaries(baselines: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{"baseline:<name>": summary}`` over seeds of :func:`baseline_frame`'s rows
    (:func:`wsol_utils.studies.analysis.aggregate_summaries`: means with their intervals), for
    :func:`wsol_utils.studies.tables.localization_table`."""
    metrics = [column for column in baselines.columns if column not in ("variant", "label", "seed")]
    return {
        str(variant): aggregate_summaries([{key: float(row[key]) for key in metrics} for _, row in part.iterrows()])
        for variant, part in baselines.groupby("variant", sort=False)
    }


# -- notebook 05: the erasing threshold delta and the box threshold tau, each chosen on val ------------------------

__all__ += ["TAU_FUSIONS", "DeltaSweepStudy", "TauStudy", "run_delta_sweep_study", "run_tau_study"]


@dataclass(frozen=True)
class DeltaSweepStudy:
    """ACoL trained at every delta of :data:`DELTA_GRID` (:func:`delta_sweep`), scored on val and test (fusion max).

    ``frame``: one row per (``split``, ``delta``, ``seed``) with the
    :data:`~wsol_utils.studies.analysis.PROTOCOL_METRICS` labels (:func:`wsol_utils.studies.analysis.run_frame`);
    ``means``: its mean and 95% t interval over seeds per (``split``, ``delta``)
    (:func:`wsol_utils.studies.analysis.seed_summary`); ``summaries``: the test summaries aggregated over seeds per
    delta (:func:`wsol_utils.studies.analysis.aggregate_summaries`, what
    :func:`wsol_utils.studies.tables.threshold_sweep_table` reads); ``num_classes``: the data set's classes."""

    runs: dict[float, dict[int, Path]]
    frame: pd.DataFrame
    means: pd.DataFrame
    summaries: dict[float, dict[str, Any]]
    num_classes: int

    @property
    def run_dirs(self) -> list[Path]:
        """Every run folder of the sweep, delta by delta, seed by seed."""
        return [run for per_seed in self.runs.values() for run in per_seed.values()]


def run_delta_sweep_study(suite: Suite) -> DeltaSweepStudy:
    """:func:`delta_sweep` (the runs notebook 02 chose its val delta from), each run scored on val and test with
    fusion max, gathered into a :class:`DeltaSweepStudy`."""
    runs = delta_sweep(suite)
    evaluations = {
        (split, delta): suite.evaluate_seeds(per_seed, split=split, fusion="max")
        for split in ("val", "test")
        for delta, per_seed in runs.items()
    }
    frame = run_frame(
        {(split, delta, seed): r for (split, delta), by_seed in evaluations.items() for seed, r in by_seed.items()},
        ("split", "delta", "seed"),
    )
    summaries = {
        delta: aggregate_summaries([r.summary for r in evaluations[("test", delta)].values()]) for delta in runs
    }
    means = seed_summary(frame, ["split", "delta"], list(PROTOCOL_METRICS.values()))
    first = next(run for per_seed in runs.values() for run in per_seed.values())
    return DeltaSweepStudy(runs, frame, means, summaries, int(load_run(first)[1].num_classes))


#: The methods of the tau study and their test-time fusion: CAM's one map, ACoL's max, HCLNet's addition (their
#: papers' choices); a two-branch method is scored on its fused map, CAM on branch A.
TAU_FUSIONS: dict[str, str | None] = {"CAM": None, "ACoL": "max", "HCLNet": "add"}


@dataclass(frozen=True)
class TauStudy:
    """GT-known loc accuracy against the box threshold tau (:func:`wsol_utils.engine.tau_curve`) of every method of
    :data:`TAU_FUSIONS`, seed and split. ``curves``: the tau curve's columns (``tau``, ``branch``,
    ``gt_known_loc_acc``) plus ``method``, ``seed``, ``split`` (val, then test, per run)."""

    runs: dict[str, dict[int, Path]]
    curves: pd.DataFrame

    @property
    def run_dirs(self) -> list[Path]:
        """Every run folder of the study, method by method, seed by seed."""
        return [run for per_seed in self.runs.values() for run in per_seed.values()]


def run_tau_study(suite: Suite, acol: Mapping[int, Path]) -> TauStudy:
    """CAM and HCLNet trained with the exploratory seeds, ``acol`` (``{seed: run}``, e.g. the sweep's delta 0.6
    runs), and each run's tau curve on val and test (:class:`TauStudy`)."""
    seeds = list(suite.exploratory_seeds)
    runs = {
        "CAM": suite.train_seeds("cam", seeds=seeds),
        "ACoL": dict(acol),
        "HCLNet": suite.train_seeds("hclnet", seeds=seeds),
    }
    curves = pd.concat(
        [
            tau_curve(
                run,
                split=split,
                fusion=TAU_FUSIONS[name],
                branches=["fused" if TAU_FUSIONS[name] else "a"],
                progress=suite.progress,
            ).assign(method=name, seed=seed, split=split)
            for name, per_seed in runs.items()
            for seed, run in per_seed.items()
            for split in ("val", "test")
        ],
        ignore_index=True,
    )
    return TauStudy(runs, curves)
