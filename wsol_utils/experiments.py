"""The suite's experiment design, fixed in code before the numbers it produces were read.

What the suite *concludes* rests on a small pre-registered family of comparisons; everything else it prints is
exploratory and says so.

* **Main comparison** (:data:`MAIN_VARIANTS`): CAM, ACoL at the paper's delta 0.6, ACoL at the delta chosen on
  **val** (:data:`DELTA_CRITERION` over :data:`DELTA_GRID`, mean over the exploratory seeds), and HCLNet (add), each
  trained with every seed of :attr:`wsol_utils.suite.Suite.seeds` (ten) on the main instrument. On the synthetic set
  each seed trains and is scored on its own draw of the data (:meth:`wsol_utils.suite.Suite.config`), so the spread
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
from typing import Any

import numpy as np
import pandas as pd

from wsol_utils.stats import PERCENT_DIFFERENCE, holm_adjust, interval_columns, paired_seed_difference, paired_t_pvalue

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
    "primary_table",
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


def choose_delta(val_scores: pd.DataFrame, criterion: str = DELTA_CRITERION) -> float:
    """The delta of :data:`DELTA_GRID` with the highest mean ``criterion`` on val over seeds (first on ties).

    ``val_scores``: one row per (``delta``, ``seed``) ACoL run scored on the **val** split, with a ``criterion``
    column. Every delta of the grid must be there with the same seeds, so that no delta wins by missing a bad seed.
    """
    missing = [delta for delta in DELTA_GRID if not np.isclose(val_scores["delta"], delta).any()]
    if missing:
        raise ValueError(f"choose_delta: no val scores for delta {missing}; score every delta of {DELTA_GRID}")
    seeds = {float(d): frozenset(part["seed"]) for d, part in val_scores.groupby("delta")}
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
    seed; a repeated seed is an error (a frame mixing two runs of one seed cannot be paired)."""
    rows = frame[frame["variant"] == variant]
    if rows.empty:
        raise ValueError(f"per_seed_values: no rows of variant {variant!r}; have {sorted(set(frame['variant']))}")
    if rows["seed"].duplicated().any():
        raise ValueError(f"per_seed_values: variant {variant!r} has a seed twice: {rows['seed'].tolist()}")
    return rows.set_index("seed")[column].sort_index().astype(float)


def primary_table(
    frame: pd.DataFrame, family: Sequence[Comparison] = PRIMARY_FAMILY, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The pre-registered comparisons, each paired by seed, corrected together.

    ``frame``: the per-seed frame of the main comparison, one row per (``variant``, ``seed``) with a column per
    summary key (``gt_known_loc_acc``, ``maxboxacc_v2`` ...). Per comparison: the seeds both variants have, the mean
    difference with its 95% t interval within [-100, 100] (:func:`wsol_utils.stats.paired_seed_difference`), the
    paired t test's two-sided p, Holm's adjusted p over the whole ``family`` (:func:`wsol_utils.stats.holm_adjust`)
    and the verdict: ``"higher"`` / ``"lower"`` when the adjusted p is below :data:`ALPHA`, else ``"not shown"``.
    ``labels`` maps variant keys to the names printed (default: the keys)."""
    names = dict(labels or {})
    rows = []
    for comparison in family:
        mine = per_seed_values(frame, comparison.variant, comparison.metric)
        base = per_seed_values(frame, comparison.against, comparison.metric)
        seeds = mine.index.intersection(base.index)
        differences = (mine[seeds] - base[seeds]).tolist()
        interval = paired_seed_difference(mine[seeds].tolist(), base[seeds].tolist(), bounds=PERCENT_DIFFERENCE)
        rows.append(
            {
                "comparison": f"{names.get(comparison.variant, comparison.variant)} - "
                f"{names.get(comparison.against, comparison.against)}",
                "protocol": comparison.protocol,
                "metric": comparison.metric,
                "seeds": len(seeds),
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
    (:func:`wsol_utils.analysis.object_area_share`). A run without branch B's masses is an error."""
    if "b_mass_object" not in records.columns:
        raise ValueError("branch_b_collapsed: the records have no b_mass_object (a one-branch method, or no masks)")
    mass = float(np.nanmean(records["b_mass_object"].to_numpy(dtype=float)))
    return bool(100.0 * mass <= float(object_area_share))
