"""Tests for wsol_utils.ui.experiments: the pre-registered design (delta chosen on val, the primary family with Holm,
the collapse rule) and the study runners of notebook 05 on a stand-in suite."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from wsol_utils.engine import EvalResult
from wsol_utils.studies import analysis
from wsol_utils.ui import experiments
from wsol_utils.ui.experiments import (
    PRIMARY_FAMILY,
    branch_b_collapsed,
    choose_delta,
    main_table,
    main_variants,
    primary_table,
)


def val_frame(means: dict[float, float], seeds=(0, 1, 2)) -> pd.DataFrame:
    return pd.DataFrame([{"delta": d, "seed": s, "maxboxacc_v2": m + (s - 1)} for d, m in means.items() for s in seeds])


def test_the_primary_family_is_six_comparisons_against_cam_under_both_protocols():
    assert len(PRIMARY_FAMILY) == 6
    assert {c.against for c in PRIMARY_FAMILY} == {"cam"}
    assert {(c.variant, c.metric) for c in PRIMARY_FAMILY} == {
        (v, m) for v in ("hclnet", "acol", "acol_val") for m in ("gt_known_loc_acc", "maxboxacc_v2")
    }
    keys = {v.key for v in experiments.MAIN_VARIANTS}
    assert {c.variant for c in PRIMARY_FAMILY} <= keys


def test_choose_delta_takes_the_best_val_mean_first_on_ties_and_needs_every_delta_with_the_same_seeds():
    assert choose_delta(val_frame({0.5: 40.0, 0.6: 50.0, 0.7: 55.0, 0.8: 55.0, 0.9: 30.0})) == 0.7
    with pytest.raises(ValueError, match=r"no val scores for delta \[0.9\]"):
        choose_delta(val_frame({0.5: 40.0, 0.6: 50.0, 0.7: 55.0, 0.8: 55.0}))
    uneven = val_frame({0.5: 40.0, 0.6: 50.0, 0.7: 55.0, 0.8: 55.0, 0.9: 30.0})
    with pytest.raises(ValueError, match="different seeds"):
        choose_delta(uneven[~((uneven["delta"] == 0.7) & (uneven["seed"] == 0))])


def test_main_variants_fill_in_the_val_delta_and_say_so():
    variants = {v.key: v for v in main_variants(0.8)}
    assert variants["acol_val"].changes == {"delta": 0.8} and "0.8 chosen on val" in variants["acol_val"].label
    assert variants["acol"].changes == {"delta": 0.6} and variants["hclnet"].fusion == "add"


def frame_with(differences: dict[str, list[float]]) -> pd.DataFrame:
    """CAM at 50 on both metrics; each other variant at 50 + its differences (same on both metrics)."""
    rows = [{"variant": "cam", "seed": s, "gt_known_loc_acc": 50.0, "maxboxacc_v2": 50.0} for s in range(10)]
    for variant, diffs in differences.items():
        rows += [
            {"variant": variant, "seed": s, "gt_known_loc_acc": 50.0 + d, "maxboxacc_v2": 50.0 + d}
            for s, d in enumerate(diffs)
        ]
    return pd.DataFrame(rows)


def test_primary_table_pairs_by_seed_and_corrects_the_family_with_holm():
    scipy_stats = pytest.importorskip("scipy.stats")
    clear = [5.0, 6.0, 4.0, 5.5, 6.5, 4.5, 5.0, 6.0, 5.0, 5.5]  # far above 0
    marginal = [3.0, -1.0, 4.5, 2.0, 0.5, 6.0, 1.0, -2.0, 3.5, 2.5]  # p ~ 0.02 raw
    null = [1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.5, -1.5, 0.0, 0.0]
    table = primary_table(frame_with({"hclnet": clear, "acol": marginal, "acol_val": null}))
    assert table["seeds"].tolist() == [10] * 6
    raw = float(scipy_stats.ttest_1samp(marginal, 0.0).pvalue)
    rows = table.to_dict("records")
    assert rows[2]["p"] == pytest.approx(raw)
    # Holm over six: the marginal p (third smallest of six, two equal ones) is multiplied by 4 (ranks 3, 4 of 6)
    assert rows[2]["p (Holm)"] == pytest.approx(min(1.0, 4 * raw)) and rows[2]["p"] < 0.05
    assert table["verdict"].tolist() == ["higher", "higher", "not shown", "not shown", "not shown", "not shown"]
    assert rows[0]["difference"] == pytest.approx(np.mean(clear)) and rows[0]["higher in"] == 10
    assert rows[4]["difference low"] < 0 < rows[4]["difference high"]


def test_primary_table_refuses_a_seed_twice_and_pairs_only_common_seeds():
    frame = frame_with({"hclnet": [1.0] * 10, "acol": [2.0] * 10, "acol_val": [3.0] * 10})
    with pytest.raises(ValueError, match="seed twice"):
        primary_table(pd.concat([frame, frame.iloc[[12]]]))
    fewer = frame[~((frame["variant"] == "cam") & (frame["seed"] >= 7))]
    assert primary_table(fewer)["seeds"].tolist() == [7] * 6


def test_the_collapse_rule_compares_b_object_mass_with_a_uniform_maps():
    records = pd.DataFrame({"b_mass_object": [0.20, 0.30, float("nan")]})  # mean 25 %
    assert branch_b_collapsed(records, object_area_share=25.0)  # no more than a uniform map: collapsed
    assert not branch_b_collapsed(records, object_area_share=24.9)
    with pytest.raises(ValueError, match="b_mass_object"):
        branch_b_collapsed(pd.DataFrame({"a_mass_object": [0.5]}), 20.0)
    assert math.isclose(experiments.ALPHA, 0.05)


def comparison_with(frame: pd.DataFrame) -> experiments.MainComparison:
    variants = main_variants(0.6)
    return experiments.MainComparison(variants, 0.6, {}, {}, frame)


def main_frame() -> pd.DataFrame:
    rows = []
    for variant in main_variants(0.6):
        for seed in range(3):
            row = {"variant": variant.key, "label": variant.label, "seed": seed}
            row.update(dict.fromkeys(experiments.SEED_METRICS, 40.0 + 10 * seed))
            if variant.method != "cam":
                row["b_collapsed"] = seed == 0
            rows.append(row)
    return pd.DataFrame(rows)


def test_main_table_bounds_each_mean_and_counts_collapsed_seeds():
    table = main_table(comparison_with(main_frame()))
    assert table["method"].tolist() == [v.label for v in main_variants(0.6)]
    gt = "GT-known loc acc @0.2 (papers)"
    row = table.iloc[0]
    assert row[gt] == 50.0 and row[f"{gt} ±"] == pytest.approx(4.302653 * 10 / 3**0.5)  # 40, 50, 60
    assert row[f"{gt} low"] == pytest.approx(50.0 - row[f"{gt} ±"]) and row[f"{gt} high"] == pytest.approx(
        74.8414, 1e-4
    )
    assert table["branch B collapsed (seeds)"].tolist() == ["", "1/3", "1/3", "1/3"]


def test_exploratory_differences_are_paired_and_labelled_exploratory():
    frame = main_frame()
    frame.loc[frame["variant"] == "hclnet", "cls_acc_top1"] += [2.0, 2.5, 3.0]  # 2.5 ± 4.303 * 0.5 / sqrt(3)
    table = experiments.exploratory_differences(frame, ["cls_acc_top1"], labels={"hclnet": "H", "cam": "C"})
    row = table[table["comparison"] == "H - C"].iloc[0]
    assert row["cls acc top-1"] == pytest.approx(2.5) and bool(row["cls acc top-1 excludes 0"])
    assert set(table["family"]) == {"exploratory"} and len(table) == 3


def test_describe_regime_reads_converged_cells_only():
    rows = []
    for rf, head, value, ok in ((8, 7.0, 5.0, True), (18, 7.0, -4.0, True), (34, 7.0, 9.0, False)):
        rows.append(
            {
                "receptive field (px)": rf,
                "head (px)": head,
                "method": "acol",
                "acc": value,
                "acc low": value - 1,
                "acc high": value + 1,
                "acc excludes 0": True,
                "converged": ok,
            }
        )
    text = experiments.describe_regime(pd.DataFrame(rows), {"papers": "acc"})
    assert "above CAM beyond the seed noise in RF 8 px / head 7 px (+5.0 [+4.0, +6.0])" in text
    assert "below in RF 18 px / head 7 px (-4.0 [-5.0, -3.0])" in text
    assert "Not converged, not read: RF 34 px" in text


def test_regime_changes_leave_the_main_instrument_cell_identical_to_the_main_runs():
    from wsol_utils.engine import INSTRUMENT

    assert experiments.regime_changes(8, 0.11) == {"model_kwargs": INSTRUMENT["model_kwargs"]}
    assert experiments.regime_changes(8, 0.22)["dataset_kwargs"] == {"head_size": 0.22}


def test_planned_runs_hold_every_run_once_with_its_evaluations(tmp_path, monkeypatch):
    from wsol_utils.ui.suite import Suite

    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("WSOL_SMOKE", raising=False)
    suite = Suite.from_parameters(device="cpu")
    planned = experiments.planned_runs(suite)
    keys = [config.key() for config, _ in planned]
    assert len(keys) == len(set(keys))
    # 25 sweep runs, CAM / ACoL 0.6 / HCLNet at ten seeds (ACoL 0.6 seeds 0-4 are sweep runs), 2 new regime cells
    assert len(planned) == 25 + 10 + 5 + 10 + 2 * 3 * 5
    sweep_06 = next(e for c, e in planned if c.method == "acol" and c.delta == 0.6 and c.seed == 0)
    assert [o["split"] for o in sweep_06] == ["val", "test"]
    assert [get_two_branch(c) for c, _ in planned] == sorted((get_two_branch(c) for c, _ in planned), reverse=True)


def get_two_branch(config) -> bool:
    from wsol_utils.nets.methods import get_method

    return get_method(config.method).two_branch


class _Requested(Exception):
    """Raised by the recording ``train_many`` once a study has asked for its runs."""


def test_planned_runs_are_the_union_of_what_the_studies_request(monkeypatch, tmp_path):
    """Each study is run against a ``Suite.train_many`` that records its request and stops it; the configs and
    evaluation options of the records, merged per run, are exactly :func:`planned_runs`."""
    from wsol_utils.ui.suite import Suite

    suite = Suite(smoke=True, runs_dir=tmp_path / "runs", figures_dir=tmp_path / "figures", device="cpu")
    asked: dict[str, list[dict]] = {}

    def record(self, requests, *, evaluate=None, seeds=None):
        for (method, changes), options in zip(requests, evaluate):
            for seed in self.seeds if seeds is None else seeds:
                run = asked.setdefault(self.config(method, **{**changes, "seed": seed}).to_json(), [])
                run.extend(o for o in (self.evaluation_options(**o) for o in options) if o not in run)
        raise _Requested

    monkeypatch.setattr(Suite, "train_many", record)
    for study in (
        experiments.delta_sweep,
        experiments.run_regime_map,
        lambda s: experiments.run_main_comparison(s, 0.6),
    ):
        with pytest.raises(_Requested):
            study(suite)
    planned = {config.to_json(): options for config, options in experiments.planned_runs(suite)}
    # smoke: seeds 0, 1. Sweep 5 x 2, main 3 x 2 (its ACoL = the sweep's delta 0.6), regime 9 x 2 (its 8 px / 7 px
    # cell = the main comparison's runs): 10 + 6 - 2 + 18 - 6 distinct runs
    assert planned == asked and len(planned) == 26
    assert all(options for options in planned.values())


# -- the study runners on a stand-in suite --------------------------------------------------------------------------


class StandInSuite:
    """What the runners use of :class:`wsol_utils.ui.suite.Suite`, with run folders that are only names."""

    exploratory_seeds = (0, 1)
    progress = False

    def __init__(self) -> None:
        self.trained: list[tuple[str, dict[str, Any]]] = []

    def train_seeds(self, method: str, *, seeds: list[int], **changes: Any) -> dict[int, Path]:
        self.trained.append((method, changes))
        return {seed: Path(f"{method}-{seed}") for seed in seeds}

    def train_many(self, requests: list[tuple[str, dict[str, Any]]], *, evaluate: Any, seeds: Any) -> list:
        return [{seed: Path(f"{m}-{c['delta']}-{seed}") for seed in seeds} for m, c in requests]

    def evaluate_seeds(self, runs: dict[int, Path], *, split: str, fusion: str) -> dict[int, EvalResult]:
        assert fusion == "max"
        out = {}
        for seed, run in runs.items():
            delta = float(str(run).split("-")[1])
            value = 100 * delta + seed + (50 if split == "val" else 0)  # e.g. delta 0.6, seed 1, test: 61
            out[seed] = EvalResult(pd.DataFrame(), {"gt_known_loc_acc": value, "run": str(run)})
        return out


def test_run_delta_sweep_study_gathers_every_delta_split_and_seed(monkeypatch):
    monkeypatch.setattr(experiments, "load_run", lambda run: (None, SimpleNamespace(num_classes=3)))
    study = experiments.run_delta_sweep_study(StandInSuite())  # type: ignore[arg-type]
    assert list(study.runs) == list(experiments.DELTA_GRID) and study.num_classes == 3
    assert len(study.run_dirs) == 10 and study.run_dirs[0] == Path("acol-0.5-0")
    assert len(study.frame) == 2 * 5 * 2 and list(study.frame.columns[:3]) == ["split", "delta", "seed"]
    label = analysis.PROTOCOL_METRICS["gt_known_loc_acc"]
    test_06 = study.frame[(study.frame["split"] == "test") & (study.frame["delta"] == 0.6)]
    assert test_06[label].tolist() == pytest.approx([60.0, 61.0])
    assert study.summaries[0.6]["gt_known_loc_acc"] == pytest.approx(60.5) and study.summaries[0.6]["seeds"] == 2
    val_06 = study.means[(study.means["split"] == "val") & (study.means["delta"] == 0.6)]
    assert val_06[label].tolist() == pytest.approx([110.5]) and math.isnan(study.means["cls acc top-1"].iloc[0])


def test_run_tau_study_scores_each_method_on_its_map_every_seed_and_split(monkeypatch):
    calls = []

    def tau_curve(run: Path, *, split: str, fusion: str | None, branches: list[str], progress: bool) -> pd.DataFrame:
        calls.append((str(run), split, fusion, tuple(branches)))
        return pd.DataFrame({"tau": [0.1, 0.2], "branch": branches * 2, "gt_known_loc_acc": [1.0, 2.0]})

    monkeypatch.setattr(experiments, "tau_curve", tau_curve)
    suite = StandInSuite()
    acol = {0: Path("acol-0.6-0"), 1: Path("acol-0.6-1")}
    study = experiments.run_tau_study(suite, acol=acol)  # type: ignore[arg-type]
    assert suite.trained == [("cam", {}), ("hclnet", {})] and study.runs["ACoL"] == acol
    assert list(study.curves.columns) == ["tau", "branch", "gt_known_loc_acc", "method", "seed", "split"]
    assert len(study.curves) == 3 * 2 * 2 * 2
    assert calls[:2] == [("cam-0", "val", None, ("a",)), ("cam-0", "test", None, ("a",))]
    assert ("acol-0.6-1", "test", "max", ("fused",)) in calls and ("hclnet-1", "val", "add", ("fused",)) in calls
    assert study.curves[["method", "seed", "split"]].iloc[-1].tolist() == ["HCLNet", 1, "test"]
