"""Tables and measurements the notebooks read from evaluation results: branch comparisons, best rows and best
tau, part mass shares and the receptive-field geometry of the head (docs/methods.md §3)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from wsol_utils.data.synthetic import SyntheticConfig
from wsol_utils.models import create_model, feature_stride, receptive_field
from wsol_utils.stats import difference_noise

if TYPE_CHECKING:
    from wsol_utils.engine import EvalResult, RunConfig

__all__ = [
    "PAPER_TAU",
    "best_row",
    "best_tau_table",
    "branch_comparison",
    "cells_seeing_part",
    "erasing_gain_row",
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


def best_row(table: pd.DataFrame, column: str, lower_is_better: bool = True) -> pd.Series:
    """The row (``pandas.Series``) of ``table`` with the lowest (or highest) ``column``; first on ties."""
    if column not in table.columns:
        raise ValueError(f"best_row: no column {column!r}; columns are {list(table.columns)}")
    return table.loc[table[column].idxmin() if lower_is_better else table[column].idxmax()]


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


def erasing_gain_row(
    cam: EvalResult, acol: EvalResult, cam_curve: pd.DataFrame, acol_curve: pd.DataFrame
) -> dict[str, float]:
    """One cell of an erasing experiment: CAM vs ACoL on the same data.

    ``cam`` / ``acol``: :class:`~wsol_utils.engine.EvalResult` (ACoL's summary is its fused map);
    ``cam_curve`` / ``acol_curve``: :func:`~wsol_utils.engine.tau_curve` frames of one branch each (columns
    ``tau``, ``gt_known_loc_acc``). Returns GT-known loc accuracy (%) at tau 0.2 (the summaries) and at each
    curve's best tau, ACoL - CAM at both, the 95% noise level of the difference at tau 0.2
    (:func:`difference_noise`), and the mass shares (%) of CAM's map and of ACoL's branch B
    (:func:`part_mass`)."""
    cam_acc, acol_acc = float(cam.summary["gt_known_loc_acc"]), float(acol.summary["gt_known_loc_acc"])
    cam_best, acol_best = (curve.loc[curve["gt_known_loc_acc"].idxmax()] for curve in (cam_curve, acol_curve))
    n = int(acol.summary["num_images"])
    b_mass, cam_mass = part_mass(acol.records, "b"), part_mass(cam.records, "a")
    return {
        "CAM @0.2": cam_acc,
        "ACoL @0.2": acol_acc,
        "ACoL - CAM @0.2": acol_acc - cam_acc,
        "noise ±": difference_noise(acol_acc, cam_acc, n),
        "CAM best": float(cam_best["gt_known_loc_acc"]),
        "CAM best tau": float(cam_best["tau"]),
        "ACoL best": float(acol_best["gt_known_loc_acc"]),
        "ACoL best tau": float(acol_best["tau"]),
        "ACoL - CAM best": float(acol_best["gt_known_loc_acc"] - cam_best["gt_known_loc_acc"]),
        "CAM mass head (%)": cam_mass["head"],
        **{f"B mass {region} (%)": value for region, value in b_mass.items()},
    }


PAPER_TAU = 0.2


def best_tau_table(curves: pd.DataFrame, hue: str = "method", value: str = "gt_known_loc_acc") -> pd.DataFrame:
    """Per ``hue`` group of a tau curve (columns ``tau``, ``hue``, ``value``): the best ``tau``, the
    accuracy there, and the accuracy at the papers' ``tau = 0.2`` (the nearest tau on the curve)."""
    rows = []
    for name, group in curves.groupby(hue, sort=False):
        best = group.loc[group[value].idxmax()]
        at_ref = group.loc[(group["tau"] - PAPER_TAU).abs().idxmin()]
        rows.append(
            {
                hue: name,
                "best_tau": float(best["tau"]),
                "best_acc": float(best[value]),
                "acc_at_0_2": float(at_ref[value]),
            }
        )
    return pd.DataFrame(rows)


# -- naming the protocol of every column --------------------------------------------------------------------------

#: Table labels of box metrics (:mod:`wsol_utils.tables`, :func:`branch_comparison`) -> the same label with its
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
        base, suffix = (column.removesuffix(" ±"), " ±") if column.endswith(" ±") else (column, "")
        if drop_top5 and "top-5" in base:
            dropped.append(column)
        elif base in PROTOCOL_COLUMNS:
            names[column] = PROTOCOL_COLUMNS[base] + suffix
    return table.drop(columns=dropped).rename(columns=names)
