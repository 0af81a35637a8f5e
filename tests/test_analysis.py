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


# -- notebook 05's lesson: a threshold chosen on val, scored on test, and its readings ----------------------------


def test_top5_is_informative_only_beyond_ten_classes_and_the_note_says_why():
    assert not analysis.top5_informative(10) and analysis.top5_informative(11)
    assert analysis.top5_note(200) == ""
    assert analysis.top5_note(2) == (
        " Our top-5 columns are left out: with 2 classes the top 5 are half of them or more, so top-5 error is "
        "about 0 and says nothing."
    )
    assert analysis.top5_note(2, kept="the paper's top-5 columns stay").endswith(
        "says nothing (the paper's top-5 columns stay)."
    )
    with pytest.raises(ValueError, match="num_classes"):
        analysis.top5_informative(0)


# -- rows and per-seed values ---------------------------------------------------------------------------------------


def test_rows_where_matches_numbers_within_the_tolerance_and_text_exactly():
    frame = pd.DataFrame({"method": ["CAM", "CAM", "ACoL"], "tau": [0.1, 0.1 + 0.2, 0.3], "v": [1.0, 2.0, 3.0]})
    assert frame["tau"][1] != 0.3  # 0.30000000000000004: float noise
    assert analysis.rows_where(frame, {"method": "CAM", "tau": 0.3})["v"].tolist() == [2.0]
    assert analysis.rows_where(frame, {"tau": 0.3})["v"].tolist() == [2.0, 3.0]
    assert analysis.rows_where(frame, {"tau": 0.3 + 1e-6}).empty
    with pytest.raises(ValueError, match="no column 'delta'"):
        analysis.rows_where(frame, {"delta": 0.6})


def test_seed_values_sorted_by_seed_and_refuses_a_seed_twice_or_none():
    frame = pd.DataFrame({"split": ["test"] * 3 + ["val"], "seed": [2, 0, 1, 0], "acc": [30.0, 10.0, 20.0, 99.0]})
    values = analysis.seed_values(frame, {"split": "test"}, "acc")
    assert values.tolist() == [10.0, 20.0, 30.0] and values.index.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="a seed twice"):
        analysis.seed_values(frame, {}, "acc")
    with pytest.raises(ValueError, match="no rows"):
        analysis.seed_values(frame, {"split": "train"}, "acc")


# -- delta chosen on val ------------------------------------------------------------------------------------------


def sweep_means() -> pd.DataFrame:
    """A hand-made seed summary of a sweep over delta 0.5, 0.6, 0.7 with two criteria A and B."""
    val_a, test_a = [50.0, 60.0, 55.0], [70.0, 52.0, 65.0]
    val_b, test_b = [60.0, 60.0, 10.0], [1.0, 2.0, 3.0]
    rows = []
    for split, a, b in (("val", val_a, val_b), ("test", test_a, test_b)):
        for i, delta in enumerate((0.5, 0.6, 0.7)):
            rows.append({"split": split, "delta": delta, "A": a[i], "A ±": a[i] / 10, "B": b[i], "B ±": 0.5})
            # interval ends as seed_summary bounds them to [0, 100]: B's 1 ± 0.5 stays, A's never reaches a bound
            rows[-1].update({"A low": a[i] * 0.9, "A high": a[i] * 1.1, "B low": b[i] - 0.5, "B high": b[i] + 0.5})
    return pd.DataFrame(rows)


def test_delta_choice_table_chooses_on_val_and_reads_test_at_the_choice_the_paper_and_the_oracle():
    table = analysis.delta_choice_table(sweep_means(), {"crit A": "A", "crit B": "B"}, paper_delta=0.5)
    paper = "test acc at delta 0.5 (paper's value)"
    assert list(table.columns) == [
        "criterion (protocol)",
        "delta chosen on val",
        *(f"val acc{s}" for s in ("", " ±", " low", " high")),
        *(f"test acc at the val choice{s}" for s in ("", " ±", " low", " high")),
        *(f"{paper}{s}" for s in ("", " ±", " low", " high")),
        "oracle (test): delta",
        *(f"oracle (test): acc{s}" for s in ("", " ±", " low", " high")),
    ]
    a, b = table.to_dict("records")
    # A: val best at 0.6 (60); test there 52 (± 5.2); paper's 0.5: 70; the oracle is 0.5 on test (70).
    assert a == pytest.approx(
        {
            "criterion (protocol)": "crit A",
            "delta chosen on val": 0.6,
            "val acc": 60.0,
            "val acc ±": 6.0,
            "val acc low": 54.0,
            "val acc high": 66.0,
            "test acc at the val choice": 52.0,
            "test acc at the val choice ±": 5.2,
            "test acc at the val choice low": 46.8,
            "test acc at the val choice high": 57.2,
            paper: 70.0,
            f"{paper} ±": 7.0,
            f"{paper} low": 63.0,
            f"{paper} high": 77.0,
            "oracle (test): delta": 0.5,
            "oracle (test): acc": 70.0,
            "oracle (test): acc ±": 7.0,
            "oracle (test): acc low": 63.0,
            "oracle (test): acc high": 77.0,
        }
    )
    # B: a val tie (60 at 0.5 and 0.6) goes to the first delta; the oracle is 0.7 on test.
    assert (b["delta chosen on val"], b["test acc at the val choice"], b["oracle (test): delta"]) == (0.5, 1.0, 0.7)


def test_with_chosen_column_marks_every_criterions_val_choice_and_oracle_second():
    sweep = pd.DataFrame({"delta": [0.5, 0.6, 0.7], "err": [1.0, 2.0, 3.0]})
    choice = pd.DataFrame(
        {"criterion (protocol)": ["A", "B"], "delta chosen on val": [0.6, 0.6], "oracle (test): delta": [0.5, 0.6]}
    )
    out = analysis.with_chosen_column(sweep, choice)
    assert list(out.columns) == ["delta", "chosen", "err"]
    assert out["chosen"].tolist() == ["oracle (test): A", "val: A; val: B; oracle (test): B", ""]
    assert "chosen" not in sweep.columns  # the input is left as it was


def test_long_series_stacks_columns_with_their_half_width_or_nan():
    table = pd.DataFrame({"delta": [0.5, 0.6], "ours": [10.0, 20.0], "ours ±": [1.0, 2.0], "paper": [5.0, 6.0]})
    ours = analysis.long_series(table, "delta", {"mine": "ours"}, "error", "us")
    published = analysis.long_series(table, "delta", {"theirs": "paper"}, "error", "paper")
    assert list(ours.columns) == ["delta", "error", "error ±", "series", "source"]
    assert ours.values.tolist() == [[0.5, 10.0, 1.0, "mine", "us"], [0.6, 20.0, 2.0, "mine", "us"]]
    assert published["error"].tolist() == [5.0, 6.0] and published["error ±"].isna().all()


def sweep_frame() -> pd.DataFrame:
    """Per-seed test values of criterion A over three seeds: delta 0.5 is exactly 1 below 0.6 on every seed (an
    interval of width 0 that excludes 0), delta 0.7 scatters around 0.6 (an interval that contains 0)."""
    values = {0.5: [10.0, 20.0, 30.0], 0.6: [11.0, 21.0, 31.0], 0.7: [30.0, 10.0, 20.0]}
    rows = [
        {"split": split, "delta": delta, "seed": seed, "A": v + (100 if split == "val" else 0)}
        for split in ("val", "test")
        for delta, per_seed in values.items()
        for seed, v in zip((2, 0, 1), per_seed)
    ]
    return pd.DataFrame(rows)


def choice(on_val: float, oracle: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"criterion (protocol)": ["crit A"], "delta chosen on val": [on_val], "oracle (test): delta": [oracle]}
    )


def test_delta_readings_state_the_choice_and_only_differences_whose_interval_excludes_zero():
    criteria = {"crit A": ("A", "test A accuracy", "protocol P")}
    lines = analysis.delta_readings(sweep_frame(), choice(0.6, 0.7), criteria, paper_delta=0.6)
    # seeds 2, 0, 1 -> sorted by seed: 0.6 gives [21, 31, 11]: mean 21, sd 10, t(0.975, 2) 4.302653 / sqrt(3) -> 24.8
    assert lines[0] == (
        "**crit A**: val chooses delta = 0.6; on test that gives 21.0 ± 24.8% (the oracle, delta = 0.7 chosen on "
        "test, gives 20.0 ± 24.8% and is not a result)."
    )
    assert len(lines) == 2 and lines[1].startswith("delta 0.5's test A accuracy is 1.0 points below delta 0.6's")
    assert "+0.0" not in lines[1] and "which excludes 0" in lines[1]

    paper_elsewhere = analysis.delta_readings(sweep_frame(), choice(0.7, 0.7), criteria, paper_delta=0.6)
    assert paper_elsewhere[1].startswith("delta 0.6 (the paper's value)'s test A accuracy is not shown to differ")
    assert paper_elsewhere[2] == "No other delta differs from 0.7 in test A accuracy by an interval that excludes 0."


# -- tau chosen on val ----------------------------------------------------------------------------------------------


def tau_curves() -> pd.DataFrame:
    """Per-seed GT-known accuracy at tau 0.1, 0.2, 0.3 (the last one with float noise) of CAM and ACoL, two seeds:
    on test ACoL is CAM + 5 at every tau and seed, and ACoL at 0.3 is ACoL at 0.2 + 2 on every seed."""
    cam = {0.1: [40.0, 50.0], 0.2: [60.0, 64.0], 0.1 + 0.2: [50.0, 52.0]}
    rows = []
    for split in ("val", "test"):
        for method, shift in (("CAM", 0.0), ("ACoL", 5.0)):
            for tau, per_seed in cam.items():
                extra = 7.0 if method == "ACoL" and tau > 0.25 else 0.0  # ACoL's best tau is 0.3
                for seed, v in enumerate(per_seed):
                    rows.append({"tau": tau, "gt_known_loc_acc": v + shift + extra, "method": method, "seed": seed})
                    rows[-1]["split"] = split
    return pd.DataFrame(rows)


def test_best_tau_table_chooses_on_the_mean_val_curve_and_reads_test_at_the_choice_the_papers_and_the_oracle():
    curves = tau_curves()
    mean_curves = analysis.seed_summary(curves, ["split", "method", "tau"], ["gt_known_loc_acc"])
    table = analysis.best_tau_table(mean_curves, "gt_known_loc_acc", paper_tau=0.2)
    assert table.columns.tolist() == [
        "method",
        "tau chosen on val",
        *(f"test acc at the val tau{s}" for s in ("", " ±", " low", " high")),
        *(f"test acc @0.2 (papers){s}" for s in ("", " ±", " low", " high")),
        "oracle (test): tau",
        *(f"oracle (test): acc{s}" for s in ("", " ±", " low", " high")),
    ]
    cam, acol = table.to_dict("records")
    # mean curves at tau 0.1, 0.2, 0.3: CAM 45, 62, 51; ACoL 50, 67, 63 (51 + 5 + 7): both choose 0.2 on val.
    assert (cam["method"], cam["tau chosen on val"], cam["test acc at the val tau"]) == ("CAM", 0.2, 62.0)
    # t half width of (60, 64): t(0.975, 1) = 12.706205 * sd 2.828427 / sqrt(2) = 25.412
    assert cam["test acc @0.2 (papers) ±"] == pytest.approx(25.412, abs=1e-3)
    # its interval, 62 ± 25.412 = [36.588, 87.412], is inside [0, 100]; ACoL's oracle, 67 ± 25.412, is too
    assert (cam["test acc @0.2 (papers) low"], cam["test acc @0.2 (papers) high"]) == pytest.approx(
        (36.588, 87.412), abs=1e-3
    )
    assert acol["oracle (test): acc high"] == pytest.approx(92.412, abs=1e-3)
    assert acol["tau chosen on val"] == pytest.approx(0.2) and acol["oracle (test): acc"] == pytest.approx(67.0)


def test_tau_readings_pair_by_seed_at_the_papers_tau_and_at_each_methods_val_tau():
    best = pd.DataFrame({"method": ["CAM", "ACoL"], "tau chosen on val": [0.2, 0.1 + 0.2]})
    lines = analysis.tau_readings(tau_curves(), best, "gt_known_loc_acc", paper_tau=0.2)
    assert lines[0] == "CAM: val chooses the papers' tau = 0.2 itself."
    # ACoL at 0.3 minus ACoL at 0.2, per seed: (50 + 12) - 65 = -3 and (52 + 12) - 69 = -5: mean -4
    assert lines[1].startswith("ACoL at tau 0.30 (chosen on val)'s test GT-known loc accuracy is not shown to differ")
    assert "-4.0" in lines[1]
    # ACoL minus CAM at 0.2: +5 on every seed (excludes 0); at the val taus: (62 - 60, 64 - 64) = (2, 0): mean +1
    assert lines[2].startswith("ACoL's test GT-known loc accuracy is 5.0 points above CAM's under the papers' protocol")
    assert "+1.0" in lines[3] and "at each method's tau chosen on val" in lines[3]
    assert len(lines) == 4


def test_paired_where_pairs_by_seed_not_by_position():
    """Two settings with different seeds: only the common ones are paired, seed with seed (a positional pairing
    would subtract seed 0 from seed 1)."""
    frame = pd.DataFrame(
        {"tau": [0.2, 0.2, 0.2, 0.3, 0.3], "seed": [0, 1, 2, 2, 1], "acc": [10.0, 20.0, 30.0, 33.0, 21.0]}
    )
    first, second = analysis.paired_where(frame, {"tau": 0.3}, {"tau": 0.2000000001}, "acc")
    assert (first, second) == ([21.0, 33.0], [20.0, 30.0])
    a, b = analysis.on_common_seeds(pd.Series([1.0, 2.0], index=[5, 3]), pd.Series([7.0, 9.0, 8.0], index=[3, 4, 5]))
    assert (a.index.tolist(), a.tolist(), b.tolist()) == ([3, 5], [2.0, 1.0], [7.0, 8.0])
