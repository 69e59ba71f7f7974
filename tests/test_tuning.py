"""Lucic et al.'s expected best of k trials (report/tuning.py) against hand computations."""
from __future__ import annotations

import numpy as np
import pytest

from gan_bench.errors import GanBenchError
from gan_bench.report.tuning import exact_expected_best, expected_best


def test_the_closed_form_by_hand_for_a_lower_is_better_metric():
    # fd of 3 trials: 30, 10, 20 (lower is better), so worst to best y = 30, 20, 10.
    # k = 1: the mean, 20.
    # k = 2: P(best = 10) = 1 - (2/3)^2 = 5/9, P(20) = (2/3)^2 - (1/3)^2 = 3/9, P(30) = (1/3)^2 = 1/9:
    #        (50 + 60 + 30) / 9 = 140/9 = 15.556
    # k = 3: P(10) = 1 - 8/27 = 19/27, P(20) = 8/27 - 1/27 = 7/27, P(30) = 1/27:
    #        (190 + 140 + 30) / 27 = 360/27 = 13.333
    assert exact_expected_best([30.0, 10.0, 20.0], metric="fd") == pytest.approx([20.0, 140 / 9, 360 / 27])


def test_the_closed_form_by_hand_for_a_higher_is_better_metric_with_a_tie():
    # cond_acc of 4 trials: 0.2, 0.6, 0.6, 1.0 (higher is better), sorted worst to best as written.
    # k = 1: the mean, 0.6.
    # k = 2: P(best = 1.0) = 1 - (3/4)^2 = 7/16, P(0.6) = (3/4)^2 - (1/4)^2 = 8/16, P(0.2) = 1/16:
    #        (7.0 + 4.8 + 0.2) / 16 = 12/16 = 0.75
    # k = 3: P(1.0) = 1 - 27/64 = 37/64, P(0.6) = 27/64 - 1/64 = 26/64, P(0.2) = 1/64:
    #        (37 + 15.6 + 0.2) / 64 = 52.8/64 = 0.825
    got = exact_expected_best([0.6, 1.0, 0.2, 0.6], metric="cond_acc")
    assert got[:3] == pytest.approx([0.6, 0.75, 0.825])
    assert np.all(np.diff(got) > 0) and got[-1] < 1.0  # more trials never hurt; never past the best trial


def test_the_resampled_curve_converges_to_the_closed_form_and_its_band_holds_it():
    scores = [41.0, 35.5, 60.2, 38.1, 90.0, 33.3, 47.7]
    small = expected_best(scores, metric="fd", resamples=200)
    large = expected_best(scores, metric="fd", resamples=200_000)
    err_small = np.abs(small["mean"] - small["exact"]).max()
    err_large = np.abs(large["mean"] - large["exact"]).max()
    assert err_large < 0.15 and err_large < err_small  # 200k draws: standard error about 0.04
    assert list(large["k"]) == list(range(1, 8))
    assert (large["low"] <= large["exact"]).all() and (large["exact"] <= large["high"]).all()
    assert large["low"].iloc[0] == min(scores) and large["high"].iloc[0] == max(scores)  # k = 1: any trial
    assert large["high"].is_monotonic_decreasing  # for fd, more trials only lower the worst case
    assert large["minutes"].isna().all()
    # the same seed gives the same table
    assert expected_best(scores, metric="fd", resamples=200).equals(small)


def test_the_band_by_hand_and_minutes_of_k_trials():
    # fd 30, 10, 20: at k = 3 the best is 10 with probability 19/27, 20 with 7/27, 30 with 1/27 = 3.7 %:
    # the 2.5th percentile is 10, the 97.5th is 30 (3.7 % of searches draw only the worst trial)
    table = expected_best([30.0, 10.0, 20.0], metric="fd", minutes=[2.0, 4.0, 3.0], resamples=100_000)
    assert (table.loc[2, "low"], table.loc[2, "high"]) == (10.0, 30.0)
    assert list(table["minutes"]) == [3.0, 6.0, 9.0]  # k times the mean trial's 3 minutes


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(GanBenchError, match="'nosuch' is not a registered metric"):
        expected_best([1.0, 2.0], metric="nosuch")
    with pytest.raises(GanBenchError, match="one finite score per trial"):
        expected_best([1.0, float("nan")], metric="fd")
    with pytest.raises(GanBenchError, match="one finite score per trial"):
        expected_best([], metric="fd")
    with pytest.raises(GanBenchError, match="3 trial minutes for 2 scores"):
        expected_best([1.0, 2.0], metric="fd", minutes=[1.0, 2.0, 3.0])
