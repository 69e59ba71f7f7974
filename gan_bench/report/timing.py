"""Quality against training time: each model's curve over seeds, and the time it takes to reach a quality.

The points are the in-training evaluations (eval.every, every_steps, every_seconds), each of which records
the training seconds (evaluation time left out) and images seen at its step. Seeds are evaluated at
the same steps but not at the same seconds, so a model's mean curve is taken on a common axis:
every seed's curve is interpolated linearly at the union of its seeds' x values, within the range
they all cover, and the band is one standard deviation over seeds.

Time to quality is read at the evaluations themselves, never interpolated between them: a seed
reaches a target at the first evaluation whose value is at least as good, so the figure is an upper
bound by at most one evaluation interval. A model reaches it when every seed does; otherwise the table
says how many did. A model is the fastest (in bold) only where the bootstrap interval of the difference
of its seconds to every other model's excludes zero (stats.py, the rule of the ranking view); a seed that
never reached the target counts at its last evaluation's seconds, a lower bound of its time, which can
only move the interval towards zero (raising a value of the slower model never lowers a resampled mean).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np
import pandas as pd

from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import METRICS, direction
from gan_bench.report import stats
from gan_bench.report.format import fmt, mean_std, to_markdown
from gan_bench.report.records import RunRecord, machine_tags, machines_note, number

AXES = {"train_seconds": "training seconds", "images_seen": "images seen"}


def headline_keys() -> list[str]:
    """The key metrics' headline numbers (fd, kid_mean, precision, ...), in registry order."""
    return [e.info.key for e in METRICS if e.info.headline]


def points(run: RunRecord, key: str) -> list[tuple[int, float, float, float]]:
    """(step, training seconds, images seen, value) of `key` at each timed in-training evaluation."""
    out = []
    for line in run.curves:
        if all(number(line.get(k)) for k in (key, "train_seconds", "images_seen")):
            out.append((int(line["step"]), float(line["train_seconds"]), float(line["images_seen"]), float(line[key])))
    return sorted(out)


def curve_key(runs: list[RunRecord], column: Optional[str]) -> Optional[str]:
    """The metric the curves show: `column` (the pivot's) when the runs' curves have it, else the first
    key metric they have, else any registered metric's number; None when no run has a timed
    in-training evaluation."""
    have = {k for r in runs for line in r.curves if "train_seconds" in line for k in line}
    base = column.split("@")[0] if column else None
    for key in ([base] if base else []) + headline_keys():
        if key in have:
            return key
    # a metric that is not a key one (a plugin's): the first of the registered metrics' numbers there
    return next((e.info.key for e in METRICS if e.info.key in have), None)


def better(value: float, target: float, lower: bool) -> bool:
    return value <= target if lower else value >= target


def mean_curve(curves: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, mean, std) over seeds' (x, value) curves on their common range (see the module docstring)."""
    lo, hi = max(c[0][0] for c in curves), min(c[-1][0] for c in curves)
    xs = np.unique(np.array([x for c in curves for x, _ in c if lo <= x <= hi] or [lo]))
    ys = np.array([np.interp(xs, [p[0] for p in c], [p[1] for p in c]) for c in curves])
    return xs, ys.mean(axis=0), (ys.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(xs))


def groups(runs: list[RunRecord], key: str) -> dict[tuple[str, str], list[RunRecord]]:
    """(data set, model) -> its runs that have timed points of `key`."""
    out: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        if points(r, key):
            out.setdefault((r.dataset, r.model), []).append(r)
    return dict(sorted(out.items()))


def curve_groups(runs: list[RunRecord], key: str) -> tuple[dict[tuple[str, str, str], list[RunRecord]],
                                                          dict[str, str]]:
    """The plot's curves: (data set, model, machine tag) -> runs with timed points of `key`, and the tags
    (records.machine_tags). The tag is "" when every run names one machine; otherwise each machine's
    seeds make their own curve, since a mean over seeds in minutes is one only on one machine."""
    g = groups(runs, key)
    tags = machine_tags(r.summary.get("device") for rs in g.values() for r in rs)
    out: dict[tuple[str, str, str], list[RunRecord]] = {}
    for (d, m), rs in g.items():
        for r in rs:
            tag = tags.get(str(r.summary.get("device")), "machine unknown") if tags else ""
            out.setdefault((d, m, tag), []).append(r)
    return dict(sorted(out.items())), tags


def parse_targets(specs: list[str]) -> dict[Optional[str], tuple[str, float]]:
    """--target METRIC=VALUE or DATASET:METRIC=VALUE -> {data set or None (every one): (metric, value)}."""
    out: dict[Optional[str], tuple[str, float]] = {}
    for spec in specs:
        head, eq, value = spec.partition("=")
        dataset, _, metric = head.rpartition(":")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not eq or not metric or not math.isfinite(number):
            raise GanBenchError(f"--target {spec!r}: expected METRIC=VALUE or DATASET:METRIC=VALUE, "
                                f"e.g. cond_acc=0.8 or mnist:fd=20")
        if direction(metric) is None:
            keys = ", ".join(headline_keys())
            raise GanBenchError(f"--target {spec!r}: {metric!r} is not a metric's headline number; use one of {keys}")
        out[dataset or None] = (metric, number)
    return out


def time_to_quality(runs: list[RunRecord], key: Optional[str],
                    targets: Optional[dict[Optional[str], tuple[str, float]]] = None) -> pd.DataFrame:
    """One row per (data set, model): the target, how many seeds reached it, the training seconds, steps
    and images seen at which they did (mean and std over seeds), and whether the model is the fastest
    (the module docstring's rule: every seed reached, and ahead of every other model by the bootstrap).

    targets: per data set (None: every data set) a (metric, value); a data set without one gets the
    default, `key` at the final value of its worst model (mean over seeds): a quality every model
    reaches, so the table ranks how soon each gets there.
    """
    targets = targets or {}
    rows = []
    datasets = sorted({r.dataset for r in runs})
    for ds in datasets:
        metric, target = targets.get(ds) or targets.get(None) or (key, None)
        if metric is None:
            continue
        lower = bool(direction(metric))
        g = {m: rs for (d, m), rs in groups(runs, metric).items() if d == ds}
        if not g:
            continue
        if target is None:
            finals = [np.mean([points(r, metric)[-1][3] for r in rs]) for rs in g.values()]
            target = float(max(finals) if lower else min(finals))
        here: list[dict] = []
        bounds: dict[str, list[float]] = {}  # per seed: the seconds at the target, else a lower bound of them
        for model, rs in g.items():
            hits = []
            for r in rs:
                hit = next((p for p in points(r, metric) if better(p[3], target, lower)), None)
                if hit is not None:
                    hits.append(hit)
                bounds.setdefault(model, []).append(hit[1] if hit else points(r, metric)[-1][1])
            sec = [h[1] for h in hits]
            here.append({"dataset": ds, "model": model, "metric": metric, "target": target,
                         "seeds": len(rs), "reached": len(hits),
                         "seconds_mean": float(np.mean(sec)) if hits else None,
                         "seconds_std": float(np.std(sec, ddof=1)) if len(hits) > 1 else None,
                         "images_seen_mean": float(np.mean([h[2] for h in hits])) if hits else None,
                         "steps_mean": float(np.mean([h[0] for h in hits])) if hits else None,
                         "final_mean": float(np.mean([points(r, metric)[-1][3] for r in rs]))})
        winner = fastest(bounds, {r["model"] for r in here if r["reached"] == r["seeds"]})
        rows += [{**r, "fastest": r["model"] == winner} for r in here]
    return pd.DataFrame(rows, columns=["dataset", "model", "metric", "target", "seeds", "reached", "seconds_mean",
                                       "seconds_std", "images_seen_mean", "steps_mean", "final_mean", "fastest"])


def fastest(seconds: dict[str, list[float]], full: set[str]) -> Optional[str]:
    """The model with the lowest mean of `seconds` (per seed, a lower bound for a seed that never reached)
    among those in `full` (every seed reached), when the bootstrap interval of the difference of its
    seconds to every other model's lies below zero; None otherwise (one seed, or a model it does not
    beat)."""
    if not full or len(seconds) < 2:
        return None
    first = min(sorted(full), key=lambda m: float(np.mean(seconds[m])))
    intervals = [stats.difference_interval(seconds[first], v) for m, v in seconds.items() if m != first]
    return first if all(ci and ci.high < 0 for ci in intervals) else None


def minutes(mean: Optional[float], std: Optional[float]) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    s = None if std is None or (isinstance(std, float) and math.isnan(std)) else std / 60
    return mean_std(mean / 60, s)


def ttq_markdown(table: pd.DataFrame, devices: list[str]) -> str:
    """The table as Markdown: per data set the models all of whose seeds reached the target, fastest
    first, then the others; the `fastest` model is in bold (none: the order is not a ranking)."""
    if table.empty:
        return "No run here has timed in-training evaluations (eval.every, every_steps or every_seconds).\n"
    lines = []
    on = f" on {devices[0]}" if len(devices) == 1 else (f" on {', '.join(devices)} (different machines: times "
                                                         f"are not comparable)" if devices else "")
    lines.append(f"Training minutes{on} until the first evaluation at the target (mean ± std over the seeds "
                 f"that reached it; evaluation time not counted). Bold: every seed reached the target and the "
                 f"{stats.LEVEL:.0%} {stats.METHOD} bootstrap interval (scipy.stats.bootstrap, {stats.RESAMPLES:,} "
                 f"resamples, seed {stats.SEED}) of the difference of its minutes to every other model's is below "
                 f"zero, a seed that never reached counted at its last evaluation\n")
    for ds, rows in table.groupby("dataset", sort=True):
        # models every seed of which reached the target first, fastest first; then those only some
        # seeds reached, then the rest (a partial mean is over its fast seeds only, so not comparable)
        rows = rows.assign(_part=rows["reached"] < rows["seeds"], _key=rows["seconds_mean"].fillna(math.inf))
        rows = rows.sort_values(["_part", "_key", "model"])
        metric, target = rows["metric"].iloc[0], rows["target"].iloc[0]
        cells = []
        for _, r in rows.iterrows():
            when = (minutes(r["seconds_mean"], r["seconds_std"]) if r["reached"] == r["seeds"]
                    else "not reached" if r["reached"] == 0
                    else f"{minutes(r['seconds_mean'], r['seconds_std'])} ({r['reached']} of {r['seeds']} seeds)")
            model = f"**{r['model']}**" if r["fastest"] else r["model"]
            cells.append({"model": model, "minutes": when, "images seen": fmt(r["images_seen_mean"]),
                          "steps": fmt(r["steps_mean"]), f"final {metric}": fmt(r["final_mean"]),
                          "seeds": f"{r['reached']}/{r['seeds']}"})
        lines.append(f"### {ds}: {metric} {'≤' if direction(metric) else '≥'} {target:.4g}\n")
        lines.append(to_markdown(pd.DataFrame(cells)))
    return "\n".join(lines)


def plot(runs: list[RunRecord], key: str, path, *, title: str = "") -> Optional[object]:
    """quality_vs_time.png: one row per data set, `key` against training seconds and against images seen,
    one curve per model (mean over seeds, band: one std)."""
    from gan_bench.report.plots import _pyplot, _save, line_style, log_axis

    g, tags = curve_groups(runs, key)
    if not g:
        return None
    datasets = sorted({d for d, _, _ in g})
    # more curves than fit inside an axis (a lever suite's dozen): the legend goes beside the panels
    beside = max(sum(1 for d, _, _ in g if d == ds) for ds in datasets) > 5
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), 2, figsize=(10 + 3.2 * beside, 3.1 * len(datasets)), squeeze=False)
    for i, ds in enumerate(datasets):
        for j, (axis, label) in enumerate(AXES.items()):
            ax = axes[i][j]
            plotted: list[float] = []
            for n, ((d, model, tag), rs) in enumerate((k, v) for k, v in g.items() if k[0] == ds):
                curves = [[(p[1 + j] / (60 if axis == "train_seconds" else 1), p[3]) for p in points(r, key)]
                          for r in rs]
                xs, mean, std = mean_curve(curves)
                plotted += [float(v) for v in mean]
                color, dash = line_style(n)
                # markers only where they are evaluations (one seed); a mean's points are interpolated
                ax.plot(xs, mean, color=color, ls=dash, lw=1.4, marker="o" if len(rs) == 1 else None, ms=2.5,
                        label=f"{model}{' on ' + tag if tag else ''} ({len(rs)} seed{'s' if len(rs) > 1 else ''})")
                if len(rs) > 1:
                    ax.fill_between(xs, mean - std, mean + std, color=color, alpha=0.18, lw=0)
            if log_axis(plotted):
                ax.set_yscale("log")
            ax.set_xlabel("training minutes" if axis == "train_seconds" else label, fontsize=8)
            ax.set_ylabel(key, fontsize=8)
            ax.set_title(f"{ds}: {key} against {'time' if j == 0 else 'images seen'}", fontsize=9)
            ax.grid(alpha=0.3), ax.tick_params(labelsize=7)
        if beside:
            axes[i][1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1))
        else:
            axes[i][0].legend(fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    if tags:
        fig.text(0.01, 0.005, machines_note(tags), fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, (0.03 + 0.035 * len(tags)) / len(datasets) if tags else 0, 1, 1))
    out = _save(fig, path)
    plt.close(fig)
    return out
