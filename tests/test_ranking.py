"""The ranking view (report/ranking.py) and the lever view of runs bounded by time."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from gan_bench.report.compare import compare
from gan_bench.report.ranking import ranking, ranking_markdown
from test_timing import timed_run


def long(rows: list[tuple[str, str, float, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "model", "mean", "std", "n"])


def test_models_within_each_others_spread_share_a_rank_and_one_seed_is_not_ranked():
    table = ranking(long([("mnist", "a", 10.0, 1.0, 3), ("mnist", "b", 10.5, 1.0, 3),
                          ("mnist", "c", 20.0, 1.0, 3), ("mnist", "d", 5.0, float("nan"), 1)]), lower=True)
    by = table.set_index("model")
    assert list(table["model"]) == ["d", "a", "b", "c"]  # best mean first
    assert by.loc["a", "rank"] == 1 and by.loc["b", "rank"] == 1  # 0.5 apart, spreads of 1: a tie
    assert by.loc["c", "rank"] == 3                                # two models clearly better
    assert pd.isna(by.loc["d", "rank"])                            # one seed: no spread, no rank
    assert by.loc["a", "tied_with"] == "b" and by.loc["c", "tied_with"] == ""
    md = ranking_markdown(table, "fd", lower=True)
    assert "No single first: a, b" in md and "| one seed | d |" in md


def test_a_clear_first_is_named_and_the_direction_is_the_metrics():
    rows = [("quickdraw", "x", 0.9, 0.01, 3), ("quickdraw", "y", 0.7, 0.02, 3), ("quickdraw", "z", 0.69, 0.05, 3)]
    higher = ranking(long(rows), lower=False).set_index("model")
    assert (higher.loc["x", "rank"], higher.loc["y", "rank"], higher.loc["z", "rank"]) == (1, 2, 2)
    assert "**x** is first beyond the seed spread" in ranking_markdown(ranking(long(rows), lower=False), "cond_acc",
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
    assert "**cdcgan_tuned** is first beyond the seed spread" in rank
    csv = pd.read_csv(out / "ranking_fd.csv").set_index("model")
    assert csv.loc["cdcgan_tuned", "rank"] == 1 and csv.loc["cdcgan", "rank"] == 2
    levers = (out / "levers.md").read_text()
    assert "quickdraw cdcgan, 4 min" in levers and "step 480" not in levers  # compared at equal minutes
    row = next(line for line in levers.splitlines() if line.startswith("| _tuned"))
    assert "(-20 ▲)" in row and "train.mismatch=1.0" in levers
