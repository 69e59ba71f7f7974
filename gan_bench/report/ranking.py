"""The ranking view: per data set, the models in order of one metric, ranked only where the seeds allow it.

A model is clearly better than another when its mean is better by more than both groups' seed-to-seed
standard deviations (the rule of the lever view), and a model's rank is
1 + the number of models clearly better than it. So models no one beats share rank 1 (1, 1, 3, ...),
a model with a wide spread keeps a high rank because nothing is clearly better than it (rows are in
rank order, then by mean), and the table lists, for each model, those within its spread; a model
with one seed has no spread and is not ranked at all ("one seed"). This is a deliberately simple
screen, not a significance test (with three seeds a gap just beyond the larger spread is a Welch t of
about 1.2): it keeps differences within the seed-to-seed noise from being read as an order, and a
close call beyond it still deserves more seeds.
"""
from __future__ import annotations

import math
from typing import Optional

import pandas as pd

from gan_bench.report.format import mean_std, to_markdown

COLUMNS = ["dataset", "rank", "model", "mean", "std", "n", "tied_with"]


def clearly_better(a: pd.Series, b: pd.Series, lower: bool) -> bool:
    """a beats b by more than both seed spreads (needs two seeds on each side)."""
    if a["n"] < 2 or b["n"] < 2:
        return False
    spread = max(_opt(a["std"]) or 0.0, _opt(b["std"]) or 0.0)
    gap = (b["mean"] - a["mean"]) if lower else (a["mean"] - b["mean"])
    return gap > spread


def ranking(long: pd.DataFrame, lower: bool) -> pd.DataFrame:
    """From pivot_long's (dataset, model, mean, std, n): one row per (data set, model), best mean first,
    with its rank (None for a one-seed model) and the models it is tied with."""
    rows = []
    for ds, g in long.groupby("dataset", sort=True):
        g = g.sort_values(["mean", "model"], ascending=[lower, True]).reset_index(drop=True)
        for _, m in g.iterrows():  # O(models^2) per data set: a handful of models
            others = [o for _, o in g.iterrows() if o["model"] != m["model"]]
            above = sum(clearly_better(o, m, lower) for o in others)
            tied = [o["model"] for o in others if m["n"] > 1 and o["n"] > 1
                    and not clearly_better(o, m, lower) and not clearly_better(m, o, lower)]
            rows.append({"dataset": ds, "rank": 1 + above if m["n"] > 1 else None, "model": m["model"],
                         "mean": m["mean"], "std": m["std"] if m["n"] > 1 else None, "n": int(m["n"]),
                         "tied_with": ", ".join(tied)})
    out = pd.DataFrame(rows, columns=COLUMNS).astype({"rank": "Int64", "n": "Int64"})
    # rank order, unranked (one seed) last; within a rank by mean
    out["_m"] = out["mean"] if lower else -out["mean"]
    out = out.sort_values(["dataset", "rank", "_m", "model"], na_position="last", kind="stable")
    return out.drop(columns="_m").reset_index(drop=True)


def ranking_markdown(table: pd.DataFrame, column: str, lower: bool, note: str = "") -> str:
    """Per data set: rank, model, mean ± std, seeds, the models within its spread; and a line saying
    whether the data set has a clear first or only a group of firsts within each other's spread.
    note: a line after the header (budgets or arithmetic that differ)."""
    if table.empty:
        return ""
    lines = [f"Models ranked by {column} ({'lower' if lower else 'higher'} is better; mean ± std over the seeds "
             "of completed runs). Rank = 1 + the number of models better by more than both seed spreads, so "
             "models that nothing beats share rank 1 and a wide spread keeps a model's rank high; a model "
             "with one seed is not ranked.\n"] + ([note] if note else [])
    for ds, g in table.groupby("dataset", sort=True):
        ranked = g[g["rank"].notna()]
        firsts = ranked[ranked["rank"] == 1]
        if len(ranked) < 2:
            verdict = ("Not ranked: one model." if len(g) == 1 else
                       "Not ranked: fewer than two models have two or more seeds.")
        elif len(firsts) == 1:
            # a lone first is clearly better than every other ranked model: whatever beats a model is
            # beaten by something else or is the first, and the gaps add up beyond both spreads
            verdict = f"**{firsts['model'].iloc[0]}** is first, beyond the seed spread of every other ranked model."
        else:
            verdict = f"No single first: {', '.join(firsts['model'])} are within each other's seed spread."
        cells = [{"rank": "one seed" if pd.isna(r["rank"]) else str(int(r["rank"])), "model": r["model"],
                  column: mean_std(r["mean"], _opt(r["std"])), "seeds": str(r["n"]),
                  "within the spread of": r["tied_with"]} for _, r in g.iterrows()]
        lines.append(f"### {ds}\n\n{verdict}\n\n" + to_markdown(pd.DataFrame(cells)))
    return "\n".join(lines)


def _opt(value) -> Optional[float]:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
