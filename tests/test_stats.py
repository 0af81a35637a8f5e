"""Tests for wsol_utils.studies.stats: the noise level of a difference, intervals over seeds and images, and sentences
that never overclaim."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wsol_utils.studies import stats


# -- intervals over seeds and images ---------------------------------------------------------------------------------
def test_seed_interval_hand_computed():
    iv = stats.seed_interval([1.0, 2.0, 3.0])
    # sd = 1 (ddof=1), t(0.975, 2) = 4.302653: half width 4.302653 / sqrt(3) = 2.4842
    assert (iv.mean, iv.n, iv.kind) == (2.0, 3, "t")
    assert iv.half_width == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    assert iv.half_width == pytest.approx(2.4842, abs=1e-4)
    assert (iv.low, iv.high) == pytest.approx((2.0 - 2.4841377, 2.0 + 2.4841377))
    # 90%: t(0.95, 2) = 2.919986
    assert stats.seed_interval([1.0, 2.0, 3.0], confidence=0.9).half_width == pytest.approx(
        2.919986 / math.sqrt(3), abs=1e-6
    )
    one = stats.seed_interval([52.3])
    assert one.mean == 52.3 and math.isnan(one.half_width) and one.n == 1
    assert math.isnan(stats.seed_interval([1.0, math.nan]).mean)
    with pytest.raises(ValueError, match="no values"):
        stats.seed_interval([])
    with pytest.raises(ValueError, match="confidence"):
        stats.seed_interval([1.0, 2.0], confidence=95)


def test_t_quantile_scipy_and_fallback_agree():
    for p, df, expected in [
        (0.975, 1, 12.706205),
        (0.975, 2, 4.302653),
        (0.975, 9, 2.262157),
        (0.995, 4, 4.604095),
        (0.95, 29, 1.699127),
    ]:
        assert stats.t_quantile(p, df) == pytest.approx(expected, abs=1e-6)
        assert stats._t_quantile_fallback(p, df) == pytest.approx(expected, abs=1e-6)
    assert stats._t_quantile_fallback(0.025, 2) == pytest.approx(-4.302653, abs=1e-6)


def test_paired_seed_difference_hand_computed():
    # differences 2, 4, 6: mean 4, sd 2 -> half width 4.302653 * 2 / sqrt(3) = 4.9683
    iv = stats.paired_seed_difference([12.0, 14.0, 16.0], [10.0, 10.0, 10.0])
    assert iv.mean == pytest.approx(4.0) and iv.half_width == pytest.approx(4.302653 * 2 / math.sqrt(3), abs=1e-5)
    assert iv.excludes_zero() is False
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired_seed_difference([1.0, 2.0], [1.0])


def test_bootstrap_interval_deterministic_and_sane():
    rng = np.random.default_rng(3)
    correct = rng.integers(0, 2, 300)
    a = stats.bootstrap_interval(correct, seed=7)
    assert a == stats.bootstrap_interval(correct, seed=7)
    # other seeds draw other samples (percentiles of 300 images sit on a 1/3-point lattice, so some may tie)
    assert any(stats.bootstrap_interval(correct, seed=s).bounds != a.bounds for s in range(8, 12))
    assert a.kind == "bootstrap" and a.n == 300 and a.mean == pytest.approx(100 * correct.mean())
    assert a.low < a.mean < a.high and a.half_width == pytest.approx((a.high - a.low) / 2)
    # about the binomial's 1.96 * sqrt(p (1 - p) / n)
    assert a.half_width == pytest.approx(196 * math.sqrt(correct.mean() * (1 - correct.mean()) / 300), rel=0.15)
    ones = stats.bootstrap_interval(np.ones(40, dtype=bool))
    assert (ones.low, ones.high, ones.mean, ones.half_width) == (100.0, 100.0, 100.0, 0.0)
    zeros = stats.bootstrap_interval(np.zeros(40))
    assert (zeros.low, zeros.high) == (0.0, 0.0)
    # chunked drawing: the same numbers whatever the chunk size
    small_chunks = stats._BOOTSTRAP_CHUNK_ELEMENTS
    try:
        stats._BOOTSTRAP_CHUNK_ELEMENTS = 300 * 7  # 7 resamples per chunk
        assert stats.bootstrap_interval(correct, seed=7) == a
    finally:
        stats._BOOTSTRAP_CHUNK_ELEMENTS = small_chunks
    with pytest.raises(ValueError, match="0/1"):
        stats.bootstrap_interval(np.array([0, 2]))
    with pytest.raises(ValueError, match="non-empty"):
        stats.bootstrap_interval(np.array([]))


def test_aggregate_seeds():
    summaries = [
        {"gt_known_loc_acc": 1.0, "maxboxacc": 10.0},
        {"gt_known_loc_acc": 2.0, "maxboxacc": 10.0},
        {"gt_known_loc_acc": 3.0, "maxboxacc": 10.0},
    ]
    out = stats.aggregate_seeds(summaries, ["gt_known_loc_acc", "maxboxacc"])
    assert out["gt_known_loc_acc"] == stats.seed_interval([1.0, 2.0, 3.0])
    assert out["maxboxacc"].mean == 10.0 and out["maxboxacc"].half_width == 0.0
    with pytest.raises(ValueError, match="pxap"):
        stats.aggregate_seeds(summaries, ["pxap"])


def test_format_interval():
    assert stats.format_interval(stats.Interval(52.34, 4.06, 3, "t")) == "52.3 ± 4.1"
    assert stats.format_interval(stats.Interval(52.34, math.nan, 1, "t")) == "52.3"
    assert stats.format_interval(stats.Interval(52.346, 4.0, 3, "t"), digits=2) == "52.35 ± 4.00"
    assert stats.format_interval(stats.Interval(math.nan, math.nan, 3, "t")) == "n/a"


def test_describe_difference_sentences():
    within = stats.paired_seed_difference([45.0, 52.6, 43.9], [34.9, 33.9, 35.9])
    assert stats.describe_difference("HCLNet", "CAM", within, "GT-known loc accuracy", "the papers' protocol") == (
        "HCLNet's GT-known loc accuracy is not shown to differ from CAM's under the papers' protocol "
        "(+12.3 ± 14.1; 95% t-interval over 3 seeds, which contains 0)."
    )
    above = stats.paired_seed_difference([12.0, 14.0, 16.0], [2.0, 2.0, 2.0])  # 12 ± 4.97
    assert stats.describe_difference("ACoL", "CAM", above, "MaxBoxAccV2", "wsoleval's protocol") == (
        "ACoL's MaxBoxAccV2 is 12.0 points above CAM's under wsoleval's protocol "
        "(+12.0 ± 5.0; 95% t-interval over 3 seeds, which excludes 0)."
    )
    below = stats.paired_seed_difference([2.0, 2.0, 2.0], [12.0, 14.0, 16.0])
    assert stats.describe_difference("ACoL", "CAM", below, "MaxBoxAccV2", "wsoleval's protocol").startswith(
        "ACoL's MaxBoxAccV2 is 12.0 points below CAM's under wsoleval's protocol (-12.0 ± 5.0;"
    )
    one = stats.paired_seed_difference([45.0], [35.0])
    assert stats.describe_difference("HCLNet", "CAM", one, "GT-known loc accuracy", "the papers' protocol") == (
        "HCLNet's GT-known loc accuracy is not shown to differ from CAM's under the papers' protocol "
        "(+10.0 from 1 seed; an interval needs at least 2)."
    )
    boot = stats.Interval(3.0, 1.0, 1000, "bootstrap", bounds=(2.0, 4.5))
    assert stats.describe_difference("A", "B", boot, "accuracy", "the papers' protocol") == (
        "A's accuracy is 3.0 points above B's under the papers' protocol "
        "(+3.0 ± 1.0; 95% bootstrap interval over 1000 images, which excludes 0)."
    )
    nan = stats.Interval(math.nan, math.nan, 3, "t")
    assert stats.describe_difference("A", "B", nan, "PxAP", "wsoleval's protocol") == (
        "A's PxAP cannot be compared with B's under wsoleval's protocol: no value."
    )


# -- bounded intervals, paired t test, Holm -------------------------------------------------------------------------


def test_a_t_interval_leaving_the_metric_range_is_clipped_to_it_and_one_inside_is_not():
    from wsol_utils.studies.stats import PERCENT, seed_interval

    # 75.5 / 24.4 / 31.8: 43.9 ± 68.6 by hand (sd 27.6154) -> [-24.7, 112.5] -> [0, 100]
    wide = seed_interval([75.5, 24.4, 31.8], bounds=PERCENT)
    assert (wide.low, wide.high) == (0.0, 100.0)
    assert wide.half_width == pytest.approx(4.302653 * 27.615394 / 3**0.5, rel=1e-6)
    narrow = seed_interval([50.0, 52.0, 54.0], bounds=PERCENT)
    assert narrow.bounds is None and narrow.low == pytest.approx(52.0 - 4.302653 * 2 / 3**0.5)
    high = seed_interval([99.0, 100.0, 100.0], bounds=PERCENT)
    assert high.high == 100.0 and high.low == pytest.approx(99.6667 - high.half_width, abs=1e-3)


def test_clip_interval_refuses_an_empty_range():
    from wsol_utils.studies.stats import Interval, clip_interval

    with pytest.raises(ValueError, match="low < high"):
        clip_interval(Interval(1.0, 5.0, 3, "t"), (1.0, 1.0))


def test_paired_t_pvalue_matches_scipy_and_the_edge_cases():
    scipy_stats = pytest.importorskip("scipy.stats")
    from wsol_utils.studies.stats import paired_t_pvalue

    diffs = [3.0, -1.0, 4.5, 2.0, 0.5, 6.0, 1.0, -2.0, 3.5, 2.5]
    assert paired_t_pvalue(diffs) == pytest.approx(float(scipy_stats.ttest_1samp(diffs, 0.0).pvalue), rel=1e-9)
    assert paired_t_pvalue([1.0, 1.0]) == 0.0
    assert paired_t_pvalue([0.0, 0.0, 0.0]) == 1.0
    assert math.isnan(paired_t_pvalue([2.0]))


def test_holm_adjust_by_hand():
    from wsol_utils.studies.stats import holm_adjust

    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # monotone step-down: the second-smallest raw p x (m-1) is below the first's adjusted value -> carried up
    assert holm_adjust([0.02, 0.021, 0.5, 0.9]) == pytest.approx([0.08, 0.08, 1.0, 1.0])
    out = holm_adjust([float("nan"), 0.01, 0.2])
    assert math.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_adjust([1.5])


def test_format_interval_and_sentences_show_clipped_ends():
    from wsol_utils.studies.stats import PERCENT_DIFFERENCE, describe_difference, format_interval, seed_interval

    iv = seed_interval([90.0, -80.0, 95.0], bounds=PERCENT_DIFFERENCE)
    assert iv.low == -100.0
    assert format_interval(iv) == f"35.0 [-100.0, {iv.high:.1f}]"
    assert "[-100.0, +" in describe_difference("A", "B", iv, "acc", "p")
