"""The lever x data set view of an ablation suite: what each recipe change buys over the plain recipe.

A suite names its variants after the model, `<dataset>_<model><variant>` (quickdraw_cdcgan+ema,
mnist_convdcgan_tuned), so a run's display model is the registry model name followed by the variant
(records.py). Per data set and model, the baseline is the variant-less group; every other group of
the same model is a row. What a row changes is not taken from its name: it is the config keys whose
values differ from the baseline's, listed beside it, so a misnamed run cannot mislead.

Cells are at each budget the baseline was evaluated at, for the variants evaluated there too: a step
(in-training evaluations give several per run; a run's final evaluation gives its last), or, for runs
given a time budget (train.max_minutes), their final evaluation at that many minutes: equal-time runs
stop at different steps, so their in-training evaluations share no step (their curves against time are
compare's quality_vs_time.png): mean ± std over seeds, and
the difference to the baseline, marked (▲ better, ▼ worse) only where the bootstrap interval of the
difference of the two groups' means excludes zero (stats.py: percentile bootstrap, 95 %, seeded, each
group's seeds resampled on their own, the rule of the ranking view); an unmarked difference is not
distinguishable from the seed-to-seed noise.
"""
from __future__ import annotations

from typing import Any, Optional

import pandas as pd

from gan_bench.config import flat
from gan_bench.metrics.registry import direction
from gan_bench.report import stats
from gan_bench.report.format import fmt, mean_std, to_markdown
from gan_bench.report.records import RunRecord, numeric_fields

# Config keys that change no result (where a run writes, what it shows while it trains, its name and
# seed, how it is evaluated): left out of "what a row changes".
# The budget keys are left out too: the view compares groups at equal budgets (steps or minutes), so a
# variant trained for 5 epochs sits beside the baseline's evaluation at 5 epochs of a 10-epoch run.
NOT_LEVERS = {"name", "out", "plugins", "train.seed", "train.progress", "train.log_every", "train.snapshot_every",
              "train.checkpoint_every", "train.grid_per_class", "train.trackers", "train.tensorboard", "train.device",
              "train.epochs", "train.max_steps", "train.max_minutes"}


def changes(config: dict[str, Any], base: dict[str, Any]) -> str:
    """ "train.ema=0.999, model.d_label=projection": the result-changing keys that differ from base."""
    a, b = flat(config), flat(base)
    keys = [k for k in a.keys() | b.keys() if k not in NOT_LEVERS and not k.startswith("eval.") and a.get(k) != b.get(k)]
    return ", ".join(f"{k}={a.get(k)}" for k in sorted(keys))


def arch_of(run: RunRecord) -> str:
    return str(run.config.get("model", {}).get("name") or run.summary.get("model", ""))


Budget = tuple[str, float]  # ("step", 975) or ("min", 4.0)


def budget_label(budget: Budget) -> str:
    kind, n = budget
    return f"step {int(n)}" if kind == "step" else f"{n:g} min"


def values_at(run: RunRecord) -> dict[Budget, dict[str, float]]:
    """{budget: {metric key: value}}: the in-training evaluations at their steps, then the final ones at
    the run's steps (where no in-training evaluation was at that step), and throughput there. A run
    given train.max_minutes has one budget, its minutes, with its final values."""
    out: dict[Budget, dict[str, float]] = {}
    # every run given minutes is placed at them, also one that finished its epochs first (it had that
    # budget and used less), so that the seeds of one group are never split between two budgets
    timed, steps = run.summary.get("max_minutes"), int(run.summary.get("steps") or 0)
    final: Budget = ("min", float(timed)) if timed else ("step", steps)
    for line in run.curves:
        step = int(line["step"])
        if timed and step != steps:
            continue
        for k, v in numeric_fields(line).items():
            if direction(k) is not None:
                out.setdefault(final if timed else ("step", step), {})[k] = v
    for k, v in run.evals.items():
        if "@" not in k and direction(k) is not None:
            out.setdefault(final, {}).setdefault(k, v)
    if run.summary.get("img_per_sec") is not None:
        out.setdefault(final, {})["img_per_sec"] = float(run.summary["img_per_sec"])
    return out


def lever_groups(runs: list[RunRecord]) -> dict[tuple[str, str], dict[str, list[RunRecord]]]:
    """(data set, model) -> {variant ("" for the baseline): completed runs}, for the models that have a
    baseline and at least one variant."""
    out: dict[tuple[str, str], dict[str, list[RunRecord]]] = {}
    for r in runs:
        arch = arch_of(r)
        if r.status != "completed" or not r.model.startswith(arch):
            continue
        out.setdefault((r.dataset, arch), {}).setdefault(r.model[len(arch):], []).append(r)
    return {k: v for k, v in sorted(out.items()) if "" in v and len(v) > 1}


def lever_table(runs: list[RunRecord]) -> pd.DataFrame:
    """Long form: one row per (data set, model, variant, budget, metric) with mean, std, n over seeds, the
    difference to the baseline (delta), its bootstrap interval (delta_ci_low, delta_ci_high; two or more
    seeds on each side) and whether that interval excludes zero (distinguishable); step or minutes: the
    budget's size, the other empty; other_machine: the variant's runs and the baseline's name different
    devices in summary.json, so their images/s are not compared."""
    rows = []
    for (ds, arch), variants in lever_groups(runs).items():
        seeds: dict[str, dict[Budget, dict[str, list[float]]]] = {}
        for variant, rs in variants.items():
            for r in rs:
                for at, vals in values_at(r).items():
                    for k, v in vals.items():
                        seeds.setdefault(variant, {}).setdefault(at, {}).setdefault(k, []).append(v)
        base_cfg = variants[""][0].config
        # images/s compare only on one machine: summary.json's device names the CPU or GPU and threads
        machines = {v: {r.summary.get("device") for r in rs} for v, rs in variants.items()}
        for variant, by_step in seeds.items():
            what = changes(variants[variant][0].config, base_cfg) if variant else "(the plain recipe)"
            for at in sorted(set(by_step) & set(seeds[""])):  # the budgets the baseline was evaluated at
                for k, vs in sorted(by_step[at].items()):
                    base = seeds[""][at].get(k)
                    mean, std = _mean_std(vs)
                    row = {"dataset": ds, "model": arch, "variant": variant or "baseline", "changes": what,
                           "budget": budget_label(at), "step": at[1] if at[0] == "step" else None,
                           "minutes": at[1] if at[0] == "min" else None,
                           "metric": k, "mean": mean, "std": std, "n": len(vs),
                           "delta": None, "delta_ci_low": None, "delta_ci_high": None, "distinguishable": None}
                    other = bool(variant) and len(machines[variant] | machines[""]) > 1
                    row["other_machine"] = other
                    if base and variant and not (k == "img_per_sec" and other):
                        row["delta"] = mean - _mean_std(base)[0]
                        ci = stats.difference_interval(vs, base)  # None with one seed on a side
                        row["delta_ci_low"], row["delta_ci_high"] = (ci.low, ci.high) if ci else (None, None)
                        row["distinguishable"] = bool(ci and ci.excludes_zero())
                    rows.append(row)
    columns = ["dataset", "model", "variant", "changes", "budget", "step", "minutes", "metric", "mean", "std", "n",
               "delta", "delta_ci_low", "delta_ci_high", "distinguishable", "other_machine"]
    return pd.DataFrame(rows, columns=columns).astype({"step": "Int64"})


def unmatched(runs: list[RunRecord]) -> list[str]:
    """ "quickdraw cdcgan+ema (step 400)": the variants that share no budget with their baseline, so
    they have no cell in the view (a typo'd epochs or max_minutes would otherwise hide a row silently)."""
    out = []
    for (ds, arch), variants in lever_groups(runs).items():
        budgets = {v: {at for r in rs for at in values_at(r)} for v, rs in variants.items()}
        for v, have in budgets.items():
            if v and not have & budgets[""]:
                out.append(f"{ds} {arch}{v} ({', '.join(budget_label(b) for b in sorted(have))})")
    return out


def _mean_std(vs: list[float]) -> tuple[float, Optional[float]]:
    s = pd.Series(vs, dtype=float)
    return float(s.mean()), (float(s.std()) if len(vs) > 1 else None)


def cell(row: pd.Series) -> str:
    text = mean_std(row["mean"], row["std"])
    if row["delta"] is None or pd.isna(row["delta"]):
        return text
    lower = direction(row["metric"]) if row["metric"] != "img_per_sec" else False
    mark = ""
    if row["distinguishable"]:
        mark = " ▲" if (row["delta"] < 0) == bool(lower) else " ▼"
    return f"{text} ({row['delta']:+.3g}{mark})"


ORDER = ["fd", "kid_mean", "precision", "recall", "cond_acc", "img_per_sec"]


def _metric_order(metric: str) -> tuple[int, str]:
    return (ORDER.index(metric) if metric in ORDER else len(ORDER), metric)


def _budget_size(rows: pd.DataFrame) -> float:
    """A budget's steps, or its minutes for a time budget (a view has budgets of one kind)."""
    size = rows["step"].dropna() if rows["step"].notna().any() else rows["minutes"].dropna()
    return float(size.iloc[0])


def glance(table: pd.DataFrame) -> list[str]:
    """Per data set and model, the ablation as papers print it: a variant per row, a metric per column,
    at the last budget every variant shares with the baseline (none: no such table for that model)."""
    out = []
    for (ds, arch), t in table.groupby(["dataset", "model"], sort=True):
        variants = set(t["variant"])
        shared = [b for b, tb in t.groupby("budget", sort=False) if set(tb["variant"]) == variants]
        if not shared:
            continue
        at = max(shared, key=lambda b: _budget_size(t[t["budget"] == b]))
        tb = t[t["budget"] == at]
        cols = sorted(tb["metric"].unique(), key=_metric_order)
        grid = []
        for v in ["baseline"] + sorted(variants - {"baseline"}):
            line = {"variant": v}
            for m in cols:
                hit = tb[(tb["variant"] == v) & (tb["metric"] == m)]
                line[m] = cell(hit.iloc[0]) if len(hit) else ""
            grid.append(line)
        out.append(f"### {ds} {arch}, every variant at {at} (the last budget all of them reached)\n\n"
                   + to_markdown(pd.DataFrame(grid)))
    return out


def lever_markdown(table: pd.DataFrame, missing: Optional[list[str]] = None) -> str:
    """One section per metric: rows are the variants, columns the data sets' budgets (steps or minutes);
    missing: unmatched()'s variants, named at the end."""
    gone = ("Not in the view, since they share no budget with their baseline: " + "; ".join(missing) + ".\n"
            if missing else "")
    if table.empty:
        return gone
    out = [f"Each cell: mean ± std over seeds (difference to the baseline; ▲ better, ▼ worse where the "
           f"{stats.LEVEL:.0%} {stats.METHOD} bootstrap interval of the difference of the means (scipy.stats."
           f"bootstrap, {stats.RESAMPLES:,} resamples, seed {stats.SEED}, each group's seeds resampled on their "
           f"own) excludes zero; unmarked: not distinguishable, or one seed on a side). The intervals are in "
           f"levers.csv.\n"]
    metrics = sorted(table["metric"].unique(), key=_metric_order)
    out += glance(table)
    for metric in metrics:
        t = table[table["metric"] == metric]
        # budgets in the order they were made (steps ascending), not as strings
        cols = list(dict.fromkeys(zip(t["dataset"], t["model"], t["budget"])))
        cols.sort(key=lambda c: (c[0], c[1]))
        variants = list(dict.fromkeys(["baseline"] + sorted(v for v in t["variant"] if v != "baseline")))
        grid = []
        for v in variants:
            line: dict[str, str] = {"variant": v}
            for ds, arch, at in cols:
                hit = t[(t["dataset"] == ds) & (t["model"] == arch) & (t["budget"] == at) & (t["variant"] == v)]
                line[f"{ds} {arch}, {at}"] = cell(hit.iloc[0]) if len(hit) else ""
            grid.append(line)
        better = {True: "lower is better", False: "higher is better", None: ""}[
            direction(metric) if metric != "img_per_sec" else False]
        note = ""
        if metric == "img_per_sec" and t["other_machine"].any():
            note = ("\nVariants that ran on another machine than their baseline (summary.json's device) get no "
                    "difference here: speeds of two machines do not compare.\n")
        out.append(f"### {metric} ({better})\n\n" + to_markdown(pd.DataFrame(grid)) + note)
    first = table.drop_duplicates(["dataset", "model", "variant"])  # one row per variant
    what = first[["dataset", "model", "variant", "changes"]].assign(seeds=[fmt(n) for n in first["n"]])
    out.append("### What each variant changes (config keys that differ from the baseline)\n\n" + to_markdown(what))
    return "\n".join(out + ([gone] if gone else []))
