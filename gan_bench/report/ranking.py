"""The ranking view: per data set, the models in order of one metric, ranked only where the seeds allow it.

Each model with two or more seeds gets the bootstrap interval of its mean, and each pair of such models
the bootstrap interval of the difference of their means (stats.py: percentile bootstrap, 95 %, seeded).
A model ranks above another when that interval excludes zero on its side, and a model's rank is 1 + the
number of models ranked above it: models nothing beats share rank 1 (1, 1, 3, ...), and a model with a
wide spread keeps a high rank because nothing is distinguishable from it. A model with one seed has no
interval and is not ranked ("one seed"). For each pair that is not distinguishable, the table gives the
seeds per model a two-sample test would need to find the observed gap (stats.seeds_needed).

The direction (lower or higher is better) is the caller's, taken from the metric registry's record.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gan_bench.report import stats
from gan_bench.report.format import fmt, mean_std, to_markdown

COLUMNS = ["dataset", "rank", "model", "mean", "std", "n", "ci_low", "ci_high", "not_distinguishable_from"]
PAIR_COLUMNS = ["dataset", "a", "b", "difference", "ci_low", "ci_high", "distinguishable", "pooled_std",
                "seeds_needed"]


@dataclass
class Ranking:
    """models: one row per (data set, model) in rank order (COLUMNS); pairs: one row per pair of models
    with two or more seeds each, a the one with the better mean, difference = mean(a) - mean(b) and its
    interval (PAIR_COLUMNS; seeds_needed only where the pair is not distinguishable)."""

    models: pd.DataFrame
    pairs: pd.DataFrame


def ranking(values: pd.DataFrame, *, lower: bool) -> Ranking:
    """From one row per seed (dataset, model, value): the ranking of each data set's models (see the
    module docstring); lower: whether a lower value is better."""
    rows, pairs = [], []
    for ds, g in values.groupby("dataset", sort=True):
        seeds = {str(m): v["value"].to_numpy(dtype=float) for m, v in g.groupby("model", sort=True)}
        means = {m: float(np.mean(v)) for m, v in seeds.items()}
        # better mean first, so a pair's a is the better one and ties of rank keep the order of means
        order = sorted(seeds, key=lambda m: (means[m] if lower else -means[m], m))
        ranked = [m for m in order if len(seeds[m]) > 1]
        above = {m: 0 for m in ranked}
        tied: dict[str, list[str]] = {m: [] for m in ranked}
        for a, b in itertools.combinations(ranked, 2):
            ci = stats.difference_interval(seeds[a], seeds[b])
            apart = ci.excludes_zero()
            if apart:
                above[b] += 1
            else:
                tied[a].append(b)
                tied[b].append(a)
            gap, pooled = abs(means[a] - means[b]), stats.pooled_std(seeds[a], seeds[b])
            pairs.append({"dataset": ds, "a": a, "b": b, "difference": means[a] - means[b], "ci_low": ci.low,
                          "ci_high": ci.high, "distinguishable": apart, "pooled_std": pooled,
                          "seeds_needed": None if apart else stats.seeds_needed(gap, pooled)})
        for m in order:
            ci = stats.mean_interval(seeds[m])
            rows.append({"dataset": ds, "rank": 1 + above[m] if m in above else None, "model": m,
                         "mean": means[m], "std": float(np.std(seeds[m], ddof=1)) if ci else None,
                         "n": len(seeds[m]), "ci_low": ci.low if ci else None, "ci_high": ci.high if ci else None,
                         "not_distinguishable_from": ", ".join(sorted(tied.get(m, []), key=order.index))})
    models = pd.DataFrame(rows, columns=COLUMNS).astype({"rank": "Int64", "n": "Int64"})
    models["_order"] = range(len(models))  # rank order, unranked (one seed) last; within a rank by mean
    models = models.sort_values(["dataset", "rank", "_order"], na_position="last", kind="stable")
    return Ranking(models=models.drop(columns="_order").reset_index(drop=True),
                   pairs=pd.DataFrame(pairs, columns=PAIR_COLUMNS).astype({"seeds_needed": "Int64"}))


def method_text(column: str, lower: bool, models: pd.DataFrame) -> str:
    """The paragraph that says how the table was made: method, level, seeds, the seeds-needed formula."""
    n = sorted(set(int(x) for x in models["n"]))
    seeds = f"{n[0]} seed{'s' if n[0] > 1 else ''} per model" if len(n) == 1 else f"{n[0]} to {n[-1]} seeds per model"
    return (f"Models ranked by {column} ({'lower' if lower else 'higher'} is better), over the seeds of completed "
            f"runs ({seeds}). Method: {stats.METHOD} bootstrap (scipy.stats.bootstrap, {stats.RESAMPLES:,} "
            f"resamples, seed {stats.SEED}) at {stats.LEVEL:.0%} confidence, of each model's mean and of the "
            f"difference of each pair's means (each model's seeds resampled independently). A model ranks above "
            f"another only where the {stats.LEVEL:.0%} interval of their difference excludes zero; rank = 1 + the "
            f"number of models ranked above it, so models nothing beats share rank 1. A model with one seed is "
            f"not ranked. Seeds needed, for pairs not distinguishable: seeds per model for a two-sided two-sample "
            f"test to find the observed gap d at alpha {stats.ALPHA:g} with {stats.POWER:.0%} power, normal "
            f"approximation n = 2 (z_{1 - stats.ALPHA / 2:g} + z_{stats.POWER:g})² s² / d² "
            f"= {stats.seeds_factor():.1f} s² / d², "
            f"s the two models' pooled standard deviation. With 3 seeds an interval excludes zero about when the "
            f"two models' seeds do not overlap (a bootstrap sees no value beyond those it has): a separation "
            f"with a wide interval is likely, not settled.\n")


def _verdict(g: pd.DataFrame, pairs: pd.DataFrame) -> str:
    ranked = g[g["rank"].notna()]
    firsts = ranked[ranked["rank"] == 1]
    if len(ranked) < 2:
        return "Not ranked: one model." if len(g) == 1 else "Not ranked: fewer than two models have two or more seeds."
    first = firsts.iloc[0]
    if len(firsts) == 1 and not first["not_distinguishable_from"]:
        return (f"**{first['model']}** is first: the {stats.LEVEL:.0%} interval of its difference to every other "
                "ranked model excludes zero.")
    apart, total = int(pairs["distinguishable"].sum()), len(pairs)
    counts = f" {apart} of {total} pairs are distinguishable."
    if len(firsts) == 1:
        return (f"No single first: {first['model']} ranks first, but is not distinguishable from "
                f"{first['not_distinguishable_from']}." + counts)
    return f"No single first: {', '.join(firsts['model'])} are not distinguishable from each other." + counts


def _interval_text(low, high) -> str:
    return "" if pd.isna(low) else f"[{fmt(float(low))}, {fmt(float(high))}]"


def ranking_markdown(r: Ranking, column: str, lower: bool, note: str = "") -> str:
    """Per data set: a verdict line, the models (rank, mean ± std, the interval of the mean, seeds, those
    not distinguishable from it) and the pairs (difference, its interval, seeds needed).
    note: a line after the method paragraph (budgets or arithmetic that differ)."""
    if r.models.empty:
        return ""
    level = f"{stats.LEVEL:.0%}"
    lines = [method_text(column, lower, r.models)] + ([note] if note else [])
    for ds, g in r.models.groupby("dataset", sort=True):
        pairs = r.pairs[r.pairs["dataset"] == ds]
        cells = [{"rank": "one seed" if pd.isna(m["rank"]) else str(int(m["rank"])), "model": m["model"],
                  column: mean_std(m["mean"], None if pd.isna(m["std"]) else float(m["std"])),
                  f"{level} interval of the mean": _interval_text(m["ci_low"], m["ci_high"]), "seeds": str(m["n"]),
                  "not distinguishable from": m["not_distinguishable_from"]} for _, m in g.iterrows()]
        section = f"### {ds}\n\n{_verdict(g, pairs)}\n\n" + to_markdown(pd.DataFrame(cells))
        if len(pairs):
            rows = [{"pair": f"{p['a']} − {p['b']}", "difference": fmt(float(p["difference"])),
                     f"{level} interval": _interval_text(p["ci_low"], p["ci_high"]),
                     "distinguishable": "yes" if p["distinguishable"] else "no",
                     "seeds needed": "" if p["distinguishable"] else
                     "no gap" if pd.isna(p["seeds_needed"]) else f"{int(p['seeds_needed']):,}"}
                    for _, p in pairs.iterrows()]
            section += ("\nPairs (difference of means, the better first; seeds needed: per model, for the observed "
                        "gap):\n\n" + to_markdown(pd.DataFrame(rows)))
        lines.append(section)
    return "\n".join(lines)
