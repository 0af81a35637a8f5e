"""Notebook 05's lesson in the library, hand-computed: a threshold chosen on val and scored on test
(:func:`wsol_utils.studies.analysis.delta_choice_table`, :func:`~wsol_utils.studies.analysis.best_tau_table`), its
readings, the top-5 rule, and the study runners :func:`wsol_utils.ui.experiments.run_delta_sweep_study` /
:func:`~wsol_utils.ui.experiments.run_tau_study` on a stand-in suite (no training)."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from wsol_utils.engine import EvalResult
from wsol_utils.studies import analysis
from wsol_utils.ui import experiments

# -- top-5 columns ------------------------------------------------------------------------------------------------


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
    assert analysis.seed_values(frame, {"split": "test"}, "acc") == [10.0, 20.0, 30.0]
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
