"""Tests for wsol_utils.studies.analysis: table helpers, part mass shares and the head geometry, hand-computed."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from wsol_utils.engine import RunConfig, paper_config
from wsol_utils.studies import analysis


def test_part_mass_splits_object_into_head_and_body():
    records = pd.DataFrame({"b_mass_head": [0.1, 0.3], "b_mass_object": [0.5, 0.7], "b_mass_background": [0.5, 0.3]})
    # head mean 0.2, object mean 0.6 -> body 0.4, background mean 0.4
    assert analysis.part_mass(records) == pytest.approx({"head": 20.0, "body": 40.0, "background": 40.0})
    a_only = analysis.part_mass(records.rename(columns=lambda c: c.replace("b_", "a_")), branch="a")
    assert a_only == pytest.approx({"head": 20.0, "body": 40.0, "background": 40.0})
    missing = analysis.part_mass(records, branch="a")
    assert all(math.isnan(v) for v in missing.values())


def test_cells_seeing_part_hand_computed():
    assert analysis.cells_seeing_part(18, 4, 7.0) == pytest.approx(6.25)  # (18 + 7) / 4
    assert analysis.cells_seeing_part(34, 4, 14.0) == pytest.approx(12.0)  # (34 + 14) / 4
    with pytest.raises(ValueError, match="stride"):
        analysis.cells_seeing_part(18, 0, 7.0)


def test_head_geometry_of_the_default_and_wide_models():
    default = analysis.head_geometry(RunConfig(method="acol"))
    # conv, pool, conv, pool, conv (3x3): 1 + 2 + 2*2 + 2*2 + 2*4 = 18 px at stride 4; head 0.11 * 64 px
    assert default == pytest.approx(
        {
            "receptive field (px)": 18,
            "stride (px)": 4,
            "head (px)": 7.04,
            "map cells (per axis)": 16,
            "cells seeing the head (per axis)": 25.04 / 4,
        }
    )
    wide = analysis.head_geometry(
        RunConfig(method="acol", model_kwargs={"head_kernel": 3}, dataset_kwargs={"head_size": 0.22})
    )
    assert (wide["receptive field (px)"], wide["head (px)"]) == (34, pytest.approx(14.08))
    with pytest.raises(ValueError, match="synthetic"):
        analysis.head_geometry(paper_config("acol", "."))


class _Result:  # the two fields of an EvalResult that run_frame reads
    def __init__(self, summary: dict[str, float], records: pd.DataFrame | None = None) -> None:
        self.summary, self.records = summary, records if records is not None else pd.DataFrame()


def test_run_frame_seed_summary_and_paired_differences_hand_computed():
    accs = {
        ("cam", 0): 10.0,
        ("cam", 1): 20.0,
        ("cam", 2): 30.0,
        ("acol", 0): 14.0,
        ("acol", 1): 22.0,
        ("acol", 2): 36.0,
    }
    results = {key: _Result({"gt_known_loc_acc": acc}) for key, acc in accs.items()}
    frame = analysis.run_frame(results, ("method", "seed"))  # type: ignore[arg-type]
    label = analysis.PROTOCOL_METRICS["gt_known_loc_acc"]
    assert frame[label].tolist() == [10.0, 20.0, 30.0, 14.0, 22.0, 36.0]
    assert math.isnan(float(frame[analysis.PROTOCOL_METRICS["maxboxacc"]].iloc[0]))
    summary = analysis.seed_summary(frame, ["method"], [label])
    # cam: mean 20, sd 10 -> 4.302653 * 10 / sqrt(3) = 24.8414
    assert summary["method"].tolist() == ["cam", "acol"] and summary["seeds"].tolist() == [3, 3]
    assert summary[label].tolist() == [20.0, 24.0]
    assert summary[f"{label} ±"].iloc[0] == pytest.approx(24.8414, abs=1e-4)
    frame["cell"] = "all"
    diff = analysis.paired_differences(frame, ["cell"], [label], against="cam")
    # differences 4, 2, 6: mean 4, sd 2 -> 4.302653 * 2 / sqrt(3) = 4.9683 -> the interval includes 0
    assert diff[["cell", "method", "seeds"]].values.tolist() == [["all", "acol", 3]]
    assert diff[label].iloc[0] == pytest.approx(4.0)
    assert diff[f"{label} ±"].iloc[0] == pytest.approx(4.9683, abs=1e-4)
    assert not diff[f"{label} excludes 0"].iloc[0]


def test_chosen_on_val_scores_test_once_and_labels_the_oracle():
    val = pd.DataFrame({"method": ["a"] * 3, "tau": [0.1, 0.2, 0.3], "acc": [5.0, 9.0, 7.0]})
    test = pd.DataFrame({"method": ["a"] * 3, "tau": [0.1, 0.2, 0.3], "acc": [6.0, 4.0, 8.0]})
    row = analysis.chosen_on_val(val, test, ["method"], "tau", "acc").iloc[0].to_dict()
    assert row == {
        "method": "a",
        "tau (val)": 0.2,
        "acc test @ val choice": 4.0,
        "tau (oracle: test)": 0.3,
        "acc oracle": 8.0,
    }


def test_aggregate_summaries_means_and_half_widths():
    summaries = [{"gt_known_loc_acc": v, "run": f"r{i}", "branches": {}} for i, v in enumerate((1.0, 2.0, 3.0))]
    out = analysis.aggregate_summaries(summaries)
    assert set(out) == {"seeds", *(f"gt_known_loc_acc{s}" for s in ("", " ±", " low", " high"))} and out["seeds"] == 3
    assert out["gt_known_loc_acc"] == 2.0 and out["gt_known_loc_acc ±"] == pytest.approx(2.4842, abs=1e-4)
    # 2 ± 2.4842 leaves [0, 100] below: the low end is clipped to 0, the high end is the t interval's
    assert out["gt_known_loc_acc low"] == 0.0 and out["gt_known_loc_acc high"] == pytest.approx(4.4842, abs=1e-4)
    ratio = analysis.aggregate_summaries([{"delta": v} for v in (0.5, 0.6)])
    assert set(ratio) == {"seeds", "delta", "delta ±"}  # not a percentage: no range, no ends
    with pytest.raises(ValueError, match="no summaries"):
        analysis.aggregate_summaries([])


def test_name_protocols_names_ours_and_the_papers_and_drops_only_our_top5():
    table = pd.DataFrame(
        columns=[
            "variant",
            "cls err top-1",
            "cls err top-5",
            "cls err top-5 ±",
            "loc err top-1",
            "loc err top-1 ±",
            "MaxBoxAccV2",
            "GT-known loc acc B",
            "paper CUB: loc err top-1",
            "paper CUB: loc err top-5",
            "paper CUB (wsoleval): MaxBoxAccV2",
            "B mass on object (%)",
        ]
    )
    assert list(analysis.name_protocols(table, drop_top5=True).columns) == [
        "variant",
        "cls err top-1",
        "top-1 loc err @0.2 (papers)",
        "top-1 loc err @0.2 (papers) ±",
        "MaxBoxAccV2 (wsoleval)",
        "B: GT-known loc acc @0.2 (papers)",
        "paper CUB: top-1 loc err (papers)",
        "paper CUB: top-5 loc err (papers)",
        "paper CUB (wsoleval): MaxBoxAccV2 (wsoleval)",
        "B mass on object (%)",
    ]
    kept = analysis.name_protocols(table)
    assert ["cls err top-5", "cls err top-5 ±"] == [c for c in kept.columns if c.startswith("cls err top-5")]


def test_paired_readings_pair_common_seeds_and_state_only_what_the_interval_shows():
    frame = pd.DataFrame(
        [{"variant": "B", "seed": s, "acc": 50.0 + s} for s in range(4)]
        + [{"variant": "A", "seed": s, "acc": 60.0 + s + (0.5 if s % 2 else -0.5)} for s in range(5)]
    )
    text = analysis.paired_readings(frame, ("A", "B"), [("acc", "accuracy", "the papers' protocol")])
    # differences 9.5, 10.5, 9.5, 10.5 over the 4 common seeds: 10 ± 3.182 * 0.57735 / 2 = 10 ± 0.92
    assert text.startswith("A's accuracy is 10.0 points above B's under the papers' protocol (+10.0 ± 0.9; 95%")
    assert "over 4 seeds" in text
    same = analysis.paired_readings(frame, ("B", "B"), [("acc", "accuracy", "p")], names=("X", "Y"))
    assert "not shown to differ" in same and same.startswith("X's accuracy")
    with pytest.raises(ValueError, match="seed twice"):
        analysis.paired_readings(pd.concat([frame, frame.iloc[[0]]]), ("B", "A"), [("acc", "a", "p")])


def test_name_protocols_renames_an_intervals_ends_with_its_mean():
    table = pd.DataFrame(
        columns=["method", "loc err top-1", "loc err top-1 ±", "loc err top-1 low", "loc err top-1 high"]
    )
    named = analysis.name_protocols(table)
    mean = "top-1 loc err @0.2 (papers)"
    assert list(named.columns) == ["method", mean, f"{mean} ±", f"{mean} low", f"{mean} high"]


def test_pair_by_seed_keeps_the_common_seeds_in_order_and_refuses_a_seed_twice():
    frame = pd.DataFrame(
        {"variant": ["a", "a", "a", "b", "b"], "seed": [2, 0, 1, 1, 2], "x": [12.0, 10.0, 11.0, 21.0, 22.0]}
    )
    first, second = analysis.pair_by_seed(frame, ("a", "b"))
    assert first.index.tolist() == second.index.tolist() == [1, 2]
    assert first["x"].tolist() == [11.0, 12.0] and second["x"].tolist() == [21.0, 22.0]
    assert analysis.seed_rows(frame, "a")["x"].tolist() == [10.0, 11.0, 12.0]  # sorted by seed
    with pytest.raises(ValueError, match="variant='c' has no rows in the frame; have \\['a', 'b'\\]"):
        analysis.pair_by_seed(frame, ("a", "c"))
    with pytest.raises(ValueError, match="variant='b' has a seed twice: \\[1, 2, 2\\]"):
        analysis.pair_by_seed(pd.concat([frame, frame.iloc[[4]]]), ("a", "b"))
    with pytest.raises(ValueError, match="seed twice"):  # paired_differences pairs the same way
        twice = pd.concat([frame, frame.iloc[[4]]]).assign(cell="all")
        analysis.paired_differences(twice, ["cell"], ["x"], against="b", column="variant")
