"""The pre-registered design: delta chosen on val, the primary family with Holm, the collapse rule."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from wsol_utils import experiments
from wsol_utils.experiments import PRIMARY_FAMILY, branch_b_collapsed, choose_delta, main_variants, primary_table


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
