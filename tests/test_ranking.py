"""The ranking view (report/ranking.py, report/stats.py) and the lever view of runs bounded by time."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from gan_bench.report import stats
from gan_bench.report.compare import compare
from gan_bench.report.ranking import ranking, ranking_markdown
from test_timing import timed_run


def seeds(rows: dict[str, list[float]], dataset: str = "mnist") -> pd.DataFrame:
    """One row per seed: (dataset, model, value)."""
    return pd.DataFrame([(dataset, m, v) for m, vs in rows.items() for v in vs], columns=["dataset", "model", "value"])


def scipy_interval(*samples, statistic) -> tuple[float, float]:
    res = scipy.stats.bootstrap(samples, statistic, n_resamples=9999, confidence_level=0.95, method="percentile",
                                vectorized=True, rng=np.random.default_rng(0))
    return res.confidence_interval.low, res.confidence_interval.high


def test_the_intervals_are_scipys_percentile_bootstrap_with_the_same_seed():
    a, b = [14.7, 16.9, 13.0, 15.2], [24.4, 22.1, 26.7]
    mean = stats.mean_interval(a)
    assert (mean.low, mean.high) == scipy_interval(np.array(a), statistic=np.mean)
    diff = stats.difference_interval(a, b)
    want = scipy_interval(np.array(a), np.array(b), statistic=lambda x, y, axis: x.mean(axis) - y.mean(axis))
    assert (diff.low, diff.high) == want and diff.high < 0
    # the ranking's tables carry exactly these numbers
    r = ranking(seeds({"a": a, "b": b}), lower=True)
    row = r.models.set_index("model").loc["a"]
    assert (row["ci_low"], row["ci_high"]) == (mean.low, mean.high)
    (pair,) = r.pairs.itertuples()
    assert (pair.a, pair.b, pair.ci_low, pair.ci_high) == ("a", "b", *want)
    assert pair.difference == pytest.approx(np.mean(a) - np.mean(b))
    # seeded: a second table from the same numbers is the same table
    assert ranking(seeds({"a": a, "b": b}), lower=True).pairs.equals(r.pairs)
    assert stats.mean_interval([3.0]) is None and stats.difference_interval([1.0, 2.0], [3.0]) is None


def test_separated_groups_are_ranked_and_overlapping_ones_tied():
    r = ranking(seeds({"a": [10.0, 10.5, 11.0], "b": [10.2, 10.9, 11.6],      # overlaps a
                       "c": [20.0, 20.4, 21.0], "d": [5.0]}), lower=True)     # c far behind; d one seed
    by = r.models.set_index("model")
    assert list(r.models["model"]) == ["a", "b", "c", "d"]  # rank order, the unranked one-seed model last
    assert (by.loc["a", "rank"], by.loc["b", "rank"], by.loc["c", "rank"]) == (1, 1, 3)
    assert pd.isna(by.loc["d", "rank"]) and pd.isna(by.loc["d", "ci_low"])
    assert str(r.models["rank"].dtype) == "Int64"  # 1, 3, not 1.0, 3.0 in the CSV
    assert by.loc["a", "not_distinguishable_from"] == "b" and by.loc["c", "not_distinguishable_from"] == ""
    pairs = r.pairs.set_index(["a", "b"])
    assert not pairs.loc[("a", "b"), "distinguishable"] and pairs.loc[("a", "c"), "distinguishable"]
    assert pairs.loc[("a", "b"), "seeds_needed"] > 3 and pd.isna(pairs.loc[("a", "c"), "seeds_needed"])
    assert len(r.pairs) == 3  # the one-seed model is in no pair
    md = ranking_markdown(r, "fd", lower=True)
    assert "No single first: a, b are not distinguishable from each other. 2 of 3 pairs" in md
    assert "| one seed | d |" in md and "| 1 | a | 10.50 ± 0.50 | [10, 11] | 3 | b |" in md
    assert "percentile bootstrap" in md and "95% confidence" in md and "1 to 3 seeds per model" in md
    assert f"| a − b | -0.4 | [{pairs.loc[('a', 'b'), 'ci_low']:.4g}, " in md


def test_a_clear_first_is_named_and_the_direction_is_the_callers():
    rows = {"x": [0.90, 0.91, 0.89], "y": [0.70, 0.72, 0.68], "z": [0.69, 0.74, 0.64]}
    higher = ranking(seeds(rows, "quickdraw"), lower=False)
    by = higher.models.set_index("model")
    assert (by.loc["x", "rank"], by.loc["y", "rank"], by.loc["z", "rank"]) == (1, 2, 2)
    md = ranking_markdown(higher, "cond_acc", lower=False)
    assert "**x** is first: the 95% interval of its difference to every other ranked model excludes zero" in md
    assert "3 seeds per model" in md and "higher is better" in md
    lower = ranking(seeds(rows, "quickdraw"), lower=True).models.set_index("model")  # as distances: x is last
    assert lower.loc["x", "rank"] == 3 and lower.loc["y", "rank"] == 1 and lower.loc["z", "rank"] == 1


def test_one_model_or_one_seed_is_not_ranked():
    md = ranking_markdown(ranking(seeds({"a": [10.0, 11.0, 12.0], "x": [5.0]}, "cifar10"), lower=True), "fd",
                          lower=True)
    assert "Not ranked: fewer than two models have two or more seeds" in md and "**a**" not in md
    one = ranking_markdown(ranking(seeds({"a": [10.0, 11.0]}, "celeba"), lower=True), "fd", lower=True)
    assert "Not ranked: one model" in one


def test_seeds_needed_is_the_normal_approximation_by_hand():
    # a = 10, 12, 14 and b = 11, 13, 15: both std 2, so the pooled std is 2; the gap of the means is 1.
    # n = 2 (z_0.975 + z_0.8)^2 s^2 / d^2 = 2 (1.959964 + 0.841621)^2 * 4 / 1 = 2 * 7.848879 * 4 = 62.79 -> 63
    a, b = [10.0, 12.0, 14.0], [11.0, 13.0, 15.0]
    assert stats.pooled_std(a, b) == pytest.approx(2.0)
    assert stats.seeds_factor() == pytest.approx(15.6978, abs=1e-4)
    assert stats.seeds_needed(1.0, 2.0) == 63
    # unequal groups pool by degrees of freedom: s_a^2 = 4 (2 dof), s_b^2 = 1 (1 dof): (8 + 1) / 3 = 3
    assert stats.pooled_std(a, [1.0, 2.414213562373095]) == pytest.approx(math.sqrt(3.0))
    assert stats.seeds_needed(0.0, 2.0) is None  # no gap: no number of seeds finds it
    assert stats.seeds_needed(10.0, 0.1) == 2    # the fewest that have a spread
    (pair,) = ranking(seeds({"a": a, "b": b}), lower=True).pairs.itertuples()
    assert not pair.distinguishable and pair.seeds_needed == 63


def test_ranks_count_the_distinguishable_better_models_on_random_tables():
    rng = np.random.default_rng(0)
    for _ in range(15):
        k = int(rng.integers(2, 5))
        rows = {f"m{i}": list(rng.normal(rng.normal(0, 3), rng.uniform(0.05, 3), size=3)) for i in range(k)}
        r = ranking(seeds(rows, "d"), lower=True)
        for _, m in r.models.iterrows():
            better = [o for o in rows if o != m["model"] and np.mean(rows[o]) < np.mean(rows[m["model"]])
                      and stats.difference_interval(rows[o], rows[m["model"]]).excludes_zero()]
            assert m["rank"] == 1 + len(better)


def timed_budget(run: Path, steps: int) -> None:
    s = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**s, "budget": "time", "max_minutes": 4, "budget_reached": True,
                                                  "steps": steps}))


def test_compare_ranks_and_sets_equal_time_variants_side_by_side(tmp_path: Path):
    root = tmp_path / "suite"
    for seed in range(3):
        # the same 4 minutes: the plain recipe makes more steps, the variant better quality
        timed_budget(timed_run(root, "quickdraw_cdcgan", seed, model="cdcgan", metric="fd",
                               curve=[(200, 120.0, 80.0 + seed), (480, 240.0, 60.0 + seed)]), 480)
        timed_budget(timed_run(root, "quickdraw_cdcgan_tuned", seed, model="cdcgan", metric="fd",
                               config_extra={"mismatch": 1.0},
                               curve=[(150, 120.0, 70.0 + seed), (350, 240.0, 40.0 + seed)]), 350)
    out = tmp_path / "report"
    compare(results=root, out=out, metric="fd")
    rank = (out / "ranking_fd.md").read_text()
    assert "**cdcgan_tuned** is first: the 95% interval" in rank and "Note:" not in rank
    csv = pd.read_csv(out / "ranking_fd.csv").set_index("model")
    assert csv.loc["cdcgan_tuned", "rank"] == 1 and csv.loc["cdcgan", "rank"] == 2
    pairs = pd.read_csv(out / "ranking_fd_pairs.csv")
    assert list(pairs[["a", "b", "distinguishable"]].itertuples(index=False)) == [("cdcgan_tuned", "cdcgan", True)]
    levers = (out / "levers.md").read_text()
    assert "quickdraw cdcgan, 4 min" in levers and "step 480" not in levers  # compared at equal minutes
    row = next(line for line in levers.splitlines() if line.startswith("| _tuned"))
    assert "(-20 ▲)" in row and "train.mismatch=1.0" in levers


def test_a_seed_that_finished_its_epochs_first_stays_in_its_group_and_an_unmatched_variant_is_named(tmp_path):
    root = tmp_path / "suite"
    for seed in range(3):
        run = timed_run(root, "mnist_cdcgan", seed, model="cdcgan", metric="fd",
                        curve=[(100, 120.0, 50.0 + seed), (300, 240.0, 30.0 + seed)])
        timed_budget(run, 300)
        if seed == 2:  # its epochs ran out before the clock: still the 4-minute group
            s = json.loads((run / "summary.json").read_text())
            (run / "summary.json").write_text(json.dumps({**s, "budget_reached": False}))
        # a variant bounded by steps beside a timed baseline shares no budget with it
        timed_run(root, "mnist_cdcgan+ema", seed, model="cdcgan", metric="fd", config_extra={"ema": 0.999},
                  curve=[(100, 60.0, 40.0 + seed), (200, 120.0, 20.0 + seed)])
    out = tmp_path / "report"
    compare(results=root, out=out, metric="fd")
    levers = (out / "levers.md").read_text()
    assert "Not in the view, since they share no budget with their baseline: mnist cdcgan+ema (step 100, step 200)" \
        in levers
    table = pd.read_csv(out / "levers.csv")
    assert set(table["budget"]) == {"4 min"} and set(table["n"]) == {3}  # no seed split off
    rank = (out / "ranking_fd.md").read_text()
    assert "Note: the runs of mnist trained for different budgets" in rank


def test_time_to_quality_lists_models_every_seed_reached_before_those_only_some_did():
    from gan_bench.report.timing import ttq_markdown

    row = dict(dataset="mnist", metric="fd", target=50.0, seeds=3, images_seen_mean=1.0, steps_mean=1.0, final_mean=40.0)
    table = pd.DataFrame([{**row, "model": "fast_once", "reached": 1, "seconds_mean": 100.0, "seconds_std": None},
                          {**row, "model": "always", "reached": 3, "seconds_mean": 200.0, "seconds_std": 5.0},
                          {**row, "model": "never", "reached": 0, "seconds_mean": None, "seconds_std": None}])
    md = ttq_markdown(table.assign(fastest=False), ["cpu"])
    lines = [line for line in md.splitlines() if line.startswith("| ") and "minutes" not in line]
    assert [line.split(" | ")[0].strip("| *") for line in lines] == ["always", "fast_once", "never"]
    assert "**" not in md
    bold = ttq_markdown(table.assign(fastest=[False, True, False]), ["cpu"])
    assert "| **always** |" in bold and "bootstrap interval" in bold


def test_the_fastest_model_is_ahead_of_every_other_by_the_bootstrap_interval():
    from gan_bench.report.timing import fastest

    always = [195.0, 200.0, 205.0]  # every seed reached the target
    # one seed of fast_once got there at 100 s, the two others had not by their last evaluation at 300 s
    assert fastest({"always": always, "fast_once": [100.0, 300.0, 300.0], "never": [400.0] * 3},
                   {"always"}) is None
    assert fastest({"always": always, "late": [290.0, 300.0, 310.0], "never": [400.0] * 3}, {"always", "late"}) \
        == "always"
    # a model whose runs stopped at 60 s, before any seed of always reached: nothing says it is slower
    assert fastest({"always": always, "short": [60.0, 61.0, 62.0]}, {"always"}) is None
    assert fastest({"always": [200.0], "late": [290.0, 300.0]}, {"always", "late"}) is None  # one seed: no interval
    # the rule is the ranking's: always - late excludes zero exactly where the ranking separates them
    for late in ([290.0, 300.0, 310.0], [180.0, 210.0, 330.0]):
        ranked = ranking(pd.DataFrame({"dataset": "d", "model": ["always"] * 3 + ["late"] * 3, "value": always + late}),
                         lower=True)
        assert (fastest({"always": always, "late": late}, {"always", "late"}) == "always") \
            == bool(ranked.pairs["distinguishable"].iloc[0])


def test_the_glance_table_sets_every_variant_beside_the_baseline_at_the_last_budget_all_reached():
    """A 10-epoch baseline, a 5-epoch variant and one stopped earlier: the table is at the latest step
    all three have, one column per metric, the distinguishable-difference marks as in the full view."""
    from gan_bench.report.levers import glance

    def rows(variant, steps, cond_acc, std, delta=None, apart=None):
        return [{"dataset": "quickdraw", "model": "cdcgan", "variant": variant, "changes": "", "step": s,
                 "budget": f"step {s}", "metric": m, "mean": v, "std": std, "n": 3, "delta": delta,
                 "distinguishable": apart} for s in steps for m, v in (("cond_acc", cond_acc), ("fd", 50.0))]

    table = pd.DataFrame(rows("baseline", (325, 650, 975, 1950), 0.3, 0.01)
                         + rows("+mismatch", (325, 650, 975), 0.6, 0.02, 0.3, True)
                         + rows("+ema", (325, 650), 0.31, 0.02, 0.01, False))
    (section,) = glance(table)
    assert section.startswith("### quickdraw cdcgan, every variant at step 650 (the last budget")
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    assert lines[0] == "| variant | fd | cond_acc |"  # metrics in the view's order, fd first
    assert [line.split(" | ")[0] for line in lines[1:]] == ["| baseline", "| +ema", "| +mismatch"]
    assert "(+0.3 ▲)" in lines[3] and "(+0.01)" in lines[2] and "▲" not in lines[2]
    assert glance(table[table["variant"] != "+ema"])[0].count("step 975") == 1  # without it: step 975
