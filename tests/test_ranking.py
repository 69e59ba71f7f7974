"""The ranking view (report/ranking.py) and the lever view of runs bounded by time."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gan_bench.report.compare import compare
from gan_bench.report.ranking import clearly_better, ranking, ranking_markdown
from test_timing import timed_run


def long(rows: list[tuple[str, str, float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "model", "mean", "std", "n"])


def test_models_within_each_others_spread_share_a_rank_and_one_seed_is_not_ranked():
    table = ranking(long([("mnist", "a", 10.0, 1.0, 3), ("mnist", "b", 10.5, 1.0, 3),
                          ("mnist", "c", 20.0, 1.0, 3), ("mnist", "d", 5.0, float("nan"), 1)]), lower=True)
    by = table.set_index("model")
    assert list(table["model"]) == ["a", "b", "c", "d"]  # rank order, the unranked one-seed model last
    assert by.loc["a", "rank"] == 1 and by.loc["b", "rank"] == 1  # 0.5 apart, spreads of 1: a tie
    assert by.loc["c", "rank"] == 3                                # two models clearly better
    assert pd.isna(by.loc["d", "rank"])                            # one seed: no spread, no rank
    assert str(table["rank"].dtype) == "Int64"                     # 1, 3, not 1.0, 3.0 in the CSV
    assert by.loc["a", "tied_with"] == "b" and by.loc["c", "tied_with"] == ""
    md = ranking_markdown(table, "fd", lower=True)
    assert "No single first: a, b" in md and "| one seed | d |" in md and "| 1 | a |" in md


def test_a_better_one_seed_model_does_not_make_the_only_ranked_one_first():
    md = ranking_markdown(ranking(long([("cifar10", "a", 10.0, 1.0, 3), ("cifar10", "x", 5.0, float("nan"), 1)]),
                                 lower=True), "fd", lower=True)
    assert "Not ranked: fewer than two models have two or more seeds" in md and "**a**" not in md
    one = ranking_markdown(ranking(long([("celeba", "a", 10.0, 1.0, 3)]), lower=True), "fd", lower=True)
    assert "Not ranked: one model" in one


def test_a_wide_spread_keeps_a_rank_and_a_chain_of_ties_is_said_as_it_is():
    # y's spread is so wide that nothing is clearly better than it: it keeps rank 1 above x
    table = ranking(long([("m", "o", 0.0, 0.1, 3), ("m", "x", 1.0, 0.1, 3), ("m", "y", 2.0, 10.0, 3)]), lower=True)
    assert list(table["model"]) == ["o", "y", "x"] and list(table["rank"]) == [1, 1, 2]
    # a ~ b, b ~ c, a clearly better than c: the verdict names the first's ties, the table each one's
    chain = ranking(long([("m", "a", 10.0, 1.0, 3), ("m", "b", 10.8, 1.0, 3), ("m", "c", 11.6, 0.5, 3)]),
                    lower=True)
    assert list(chain["rank"]) == [1, 1, 2]
    assert chain.set_index("model").loc["c", "tied_with"] == "b"
    md = ranking_markdown(chain, "fd", lower=True)
    assert "No single first: a, b" in md


def test_ranks_count_the_clearly_better_and_a_lone_first_beats_everyone_on_random_tables():
    rng = np.random.default_rng(0)
    lone = 0
    for _ in range(120):
        k = int(rng.integers(2, 7))
        rows = [("d", f"m{i}", float(rng.normal(0, 3)), float(rng.uniform(0.05, 3)), 3) for i in range(k)]
        table = ranking(long(rows), lower=True)
        stats = {m: pd.Series({"mean": mu, "std": sd, "n": n}) for _, m, mu, sd, n in rows}
        for _, r in table.iterrows():
            better = [o for o in stats if o != r["model"] and clearly_better(stats[o], stats[r["model"]], True)]
            assert r["rank"] == 1 + len(better)
        firsts = list(table.loc[table["rank"] == 1, "model"])
        if len(firsts) == 1:
            lone += 1
            assert all(clearly_better(stats[firsts[0]], stats[o], True) for o in stats if o != firsts[0])
        for a in firsts:
            assert not any(clearly_better(stats[b], stats[a], True) for b in firsts)
    assert lone > 10  # the property was exercised


def test_a_clear_first_is_named_and_the_direction_is_the_metrics():
    rows = [("quickdraw", "x", 0.9, 0.01, 3), ("quickdraw", "y", 0.7, 0.02, 3), ("quickdraw", "z", 0.69, 0.05, 3)]
    higher = ranking(long(rows), lower=False).set_index("model")
    assert (higher.loc["x", "rank"], higher.loc["y", "rank"], higher.loc["z", "rank"]) == (1, 2, 2)
    assert "**x** is first, beyond the seed spread" in ranking_markdown(ranking(long(rows), lower=False), "cond_acc",
                                                                        lower=False)
    lower = ranking(long(rows), lower=True).set_index("model")  # the same numbers as distances: x is last
    assert lower.loc["x", "rank"] == 3 and lower.loc["z", "rank"] == 1 and lower.loc["y", "rank"] == 1


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
    assert "**cdcgan_tuned** is first, beyond the seed spread" in rank and "Note:" not in rank
    csv = pd.read_csv(out / "ranking_fd.csv").set_index("model")
    assert csv.loc["cdcgan_tuned", "rank"] == 1 and csv.loc["cdcgan", "rank"] == 2
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
    lines = [line for line in ttq_markdown(table, ["cpu"]).splitlines() if line.startswith("| ") and "minutes" not in line]
    assert [line.split(" | ")[0].strip("| *") for line in lines] == ["always", "fast_once", "never"]
    assert "**always**" not in ttq_markdown(table, ["cpu"])  # a seed of another model got there sooner


def test_the_glance_table_sets_every_variant_beside_the_baseline_at_the_last_budget_all_reached():
    """A 10-epoch baseline, a 5-epoch variant and one stopped earlier: the table is at the latest step
    all three have, one column per metric, the better-beyond-the-spread marks as in the full view."""
    from gan_bench.report.levers import glance

    def rows(variant, steps, cond_acc, std, delta=None, beyond=None):
        return [{"dataset": "quickdraw", "model": "cdcgan", "variant": variant, "changes": "", "step": s,
                 "budget": f"step {s}", "metric": m, "mean": v, "std": std, "n": 3, "delta": delta,
                 "beyond_spread": beyond} for s in steps for m, v in (("cond_acc", cond_acc), ("fd", 50.0))]

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
