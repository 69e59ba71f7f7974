"""Comparison tables: one row per run, a data set x model pivot of one metric over seeds and its ranking
(ranking.py), and, where the runs hold them, time to quality (timing.py) and the lever view (levers.py).

Written as CSV (raw numbers, for pandas), Markdown (for a README or a pull request) and HTML.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from gan_bench.atomic import output_folder, write_text
from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import METRICS, default_metrics, direction, floor_columns, headline_columns
from gan_bench.report import levers, ranking, timing
from gan_bench.report.format import formatted, html_page, mean_std, to_markdown
from gan_bench.report.records import RunRecord, recorded_metrics, runs_under, to_stderr

# Direction of the run columns that are not metrics (the metric registry knows the metrics'), to mark
# the best model per data set.
RUN_COLUMN_LOWER_IS_BETTER = {"img_per_sec": False, "wall_s": True, "peak_gpu_mb": True, "peak_cpu_mb": True}
KEY_COLUMNS = ["dataset", "model", "seed", "status", "steps"]
TAIL_COLUMNS = ["img_per_sec", "wall_s", "peak_gpu_mb", "peak_cpu_mb", "params_G", "params_D", "device", "compute",
                "budget", "arch", "config", "run"]
RESERVED = set(KEY_COLUMNS + TAIL_COLUMNS)  # an eval field of the same name never overwrites these


def runs_table(runs: list[RunRecord]) -> pd.DataFrame:
    """One row per run: data set, model, seed, status, steps, metric columns, throughput, wall
    time (training seconds, without evaluation), peak GPU and CPU memory (MiB), parameters, device,
    compute (bf16 or fp32), registry model name, config name and the run folder relative to the results
    root."""
    rows = []
    for r in runs:
        s = r.summary
        rows.append({"dataset": r.dataset, "model": r.model, "seed": r.seed, "status": r.status,
                     "steps": s.get("steps"), **{k: v for k, v in r.evals.items() if k not in RESERVED},
                     "img_per_sec": s.get("img_per_sec"),
                     "wall_s": s.get("train_seconds"), "peak_gpu_mb": s.get("peak_gpu_mb"),
                     "peak_cpu_mb": s.get("peak_cpu_mb"), "params_G": s.get("params_G"),
                     "params_D": s.get("params_D"), "device": s.get("device"), "compute": compute_of(s),
                     "budget": budget_of(s, r.config),
                     "arch": s.get("model"), "config": s.get("name"), "run": r.rel})
    df = pd.DataFrame(rows, columns=None if rows else KEY_COLUMNS + TAIL_COLUMNS)
    first = headline_columns()  # the key metrics' columns first, in registry order; others alphabetically,
    owner = {f: k for k, f in floor_columns().items()}  # each real-data floor right after its metric's number

    def order(c: str) -> tuple:
        base = owner.get(c, c)
        return (first.index(base) if base in first else len(first), base, c != base, c)
    metrics = sorted((c for c in df.columns if c not in KEY_COLUMNS + TAIL_COLUMNS), key=order)
    return df[KEY_COLUMNS + metrics + TAIL_COLUMNS]


def compute_of(summary: dict[str, Any]) -> Optional[str]:
    """bf16 or fp32, the arithmetic of G and D in training (summary.json's speed switches; None before them)."""
    switches = summary.get("speed", summary.get("levers"))  # "levers": runs made before the rename
    return None if switches is None else ("bf16" if switches.get("bf16") else "fp32")


def budget_of(summary: dict[str, Any], config: dict[str, Any]) -> Optional[str]:
    """What the run was given: "4 min" (train.max_minutes), "2000 steps" (train.max_steps) or "10 epochs";
    for summaries from before the budget was recorded, the steps it made."""
    train = config.get("train", {})
    kind = summary.get("budget")
    if kind == "time" and summary.get("max_minutes"):
        return f"{summary['max_minutes']:g} min"
    if kind == "steps" and train.get("max_steps"):
        return f"{train['max_steps']} steps"
    if kind == "epochs" and train.get("epochs"):
        return f"{train['epochs']} epochs"
    return None if summary.get("steps") is None else f"{summary['steps']} steps"


def mixed_budget_note(df: pd.DataFrame, column: str) -> str:
    """A line for rankings whose completed runs of one data set (those with a value of column) were given
    different budgets (empty when every data set's runs agree)."""
    done = df[(df["status"] == "completed") & df[column].notna()]
    mixed = sorted(ds for ds, g in done.groupby("dataset") if g["budget"].nunique() > 1)
    return (f"Note: the runs of {', '.join(mixed)} trained for different budgets (see the budget column of "
            "runs.md): this order compares unequal budgets.\n\n" if mixed else "")


def mixed_compute_note(df: pd.DataFrame) -> str:
    """A line for tables whose runs trained in different arithmetic (empty when they agree)."""
    kinds = sorted(df["compute"].dropna().unique())
    return (f"Note: these runs trained in different arithmetic ({' and '.join(kinds)}; see the compute "
            "column): compare like with like, or rerun with train.fast=false for float32 everywhere.\n\n"
            if len(kinds) > 1 else "")


def metric_columns(df: pd.DataFrame) -> list[str]:
    """The numeric columns a pivot can be made of (metrics, throughput, wall time)."""
    skip = {"seed", "steps", "params_G", "params_D"}
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


RUN_COLUMNS = tuple(RUN_COLUMN_LOWER_IS_BETTER)  # runs_table's numbers from the summary


def check_metric_name(metric: str, *, flag: str = "--metric") -> None:
    """Before any run trains: `metric` must be a column the tables can have (a registered metric's
    name, headline or other number, optionally @best, or one of the summary's numbers), or a one-line
    error. Call it once plugins are loaded: they register metrics."""
    names = [n for e in METRICS for n in dict.fromkeys((e.name, e.info.key))]
    base = metric.split("@")[0]
    # a metric's other numbers are columns too (kid_std, inception_is_std): its name and an underscore
    if base not in (*names, *RUN_COLUMNS) and not any(base.startswith(e.name + "_") for e in METRICS):
        raise GanBenchError(f"{flag} {metric!r} is not a metric; choose from {', '.join(names + list(RUN_COLUMNS))}")


def resolve_metric(df: pd.DataFrame, metric: str) -> str:
    """The table column for a metric name: the column itself, or <metric>_mean (kid -> kid_mean)."""
    for col in (metric, f"{metric}_mean"):
        if col in df.columns and col in metric_columns(df) and df[col].notna().any():
            return col
    have = ", ".join(metric_columns(df)) or "none"
    raise GanBenchError(f"no run has a value for metric {metric!r}; choose --metric from: {have} "
                        f"(evaluate runs to add fd, kid, ...)")


def pivot_long(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """Mean, sample standard deviation and count over seeds of completed runs, per (dataset, model)."""
    done = df[(df["status"] == "completed") & df[column].notna()]
    g = done.groupby(["dataset", "model"], sort=True)[column]
    return g.agg(mean="mean", std="std", n="count").reset_index()


def seed_values(df: pd.DataFrame, column: str) -> pd.DataFrame:
    """(dataset, model, value): one row per completed run with a value of column, what rankings resample."""
    done = df[(df["status"] == "completed") & df[column].notna()]
    return done[["dataset", "model", column]].rename(columns={column: "value"}).reset_index(drop=True)


def pivot_grid(long: pd.DataFrame, column: str, *, style: str = "plain",
               floor: Optional[pd.DataFrame] = None) -> pd.DataFrame:
    """data set x model cells "mean ± std" (just the mean for one seed). style "md" or "html" marks
    the best mean of each data set row in bold (for columns whose direction is known) and, for
    "html", escapes the names. floor: (dataset, value) rows of the column's real-data floor
    (MetricInfo.floor) of every completed run, shown as a last column "real data", mean ± std over the
    runs of each data set: what held-out real images score at the same N."""
    esc = html.escape if style == "html" else str
    lower = lower_is_better(column.split("@")[0])
    cells: dict[str, dict[str, str]] = {}
    for ds, rows in long.groupby("dataset", sort=True):
        best = None if lower is None or len(rows) < 2 else (rows["mean"].min() if lower else rows["mean"].max())
        for _, row in rows.iterrows():
            text = mean_std(row["mean"], row["std"] if row["n"] > 1 else None)
            if style != "plain" and row["mean"] == best:
                text = f"**{text}**" if style == "md" else f"<b>{text}</b>"
            cells.setdefault(esc(str(row["model"])), {})[esc(str(ds))] = text
    grid = pd.DataFrame(cells).sort_index().sort_index(axis=1)
    if floor is not None and not floor.empty:
        real = floor.groupby("dataset")["value"].agg(["mean", "std", "count"]).rename(columns={"count": "n"})
        grid[REAL_DATA] = pd.Series({esc(str(ds)): mean_std(r["mean"], r["std"] if r["n"] > 1 else None)
                                     for ds, r in real.iterrows()})
    grid.index.name = "dataset"
    return grid.fillna("")


REAL_DATA = "real data"  # the pivot's floor column


def lower_is_better(column: str) -> Optional[bool]:
    """From the metric registry (a metric's headline key and direction), else the run columns' table
    above; None when unknown (nothing is marked)."""
    known = direction(column)
    return RUN_COLUMN_LOWER_IS_BETTER.get(column) if known is None else known


def tables(df: pd.DataFrame, column: Optional[str]) -> dict[str, str]:
    """{file name: content}: runs.{csv,md,html} and, for a column, pivot_<column>.{csv,md,html} and (when
    the column has a direction) ranking_<column>.{csv,md} and ranking_<column>_pairs.csv.
    Everything is made before anything is written, so a bad column writes nothing."""
    out = {"runs.csv": df.to_csv(index=False), "runs.md": to_markdown(formatted(df)),
           "runs.html": html_page("Runs", formatted(df).to_html(index=False, na_rep=""))}
    if column is not None:
        long = pivot_long(df, column)
        stem = "pivot_" + column.replace("@", "_at_")
        out[f"{stem}.csv"] = long.to_csv(index=False)
        base, at, ckpt = column.partition("@")
        floor_col = floor_columns().get(base)
        floor_col = floor_col and floor_col + at + ckpt  # fd@best's floor is real_fd@best
        floor = seed_values(df, floor_col) if floor_col in df.columns else None
        said = (f"; {REAL_DATA}: {floor_col}, held-out real images in place of generated ones at the same N"
                if floor is not None else "")
        out[f"{stem}.md"] = (f"{column}: mean ± std over seeds (completed runs){said}\n\n" + mixed_compute_note(df)
                             + to_markdown(pivot_grid(long, column, style="md", floor=floor), index=True))
        grid = pivot_grid(long, column, style="html", floor=floor).to_html(escape=False)
        out[f"{stem}.html"] = html_page(f"{column}: mean ± std over seeds", grid)
        lower = lower_is_better(column.split("@")[0])
        if lower is not None:  # a ranking needs a direction
            ranks = ranking.ranking(seed_values(df, column), lower=lower)
            rstem = "ranking_" + column.replace("@", "_at_")
            out[f"{rstem}.csv"] = ranks.models.to_csv(index=False)
            out[f"{rstem}_pairs.csv"] = ranks.pairs.to_csv(index=False)
            out[f"{rstem}.md"] = ranking.ranking_markdown(ranks, column, lower,
                                                          note=mixed_compute_note(df) + mixed_budget_note(df, column))
    return out


def pivot_metric(df: pd.DataFrame, metric: Optional[str]) -> tuple[str, Optional[str]]:
    """The pivot's column, and a note when it is not a quality metric: metric None takes the first key
    metric the runs have been evaluated with, else the first other metric, else throughput (what every run
    folder holds)."""
    if metric is not None:
        return resolve_metric(df, metric), None
    have = [c for c in headline_columns() if c in df.columns and df[c].notna().any()]
    # runs evaluated only with metrics that are not key ones (a plugin's): the first of those
    have = have or [e.info.key for e in METRICS if e.info.key in df.columns and df[e.info.key].notna().any()]
    if have:
        return have[0], None
    return "img_per_sec", (f"no run here is evaluated yet, so the pivot is of img_per_sec; `gan-bench eval RUN` "
                           f"adds {', '.join(default_metrics())} (those that apply to each run)")


def compare(*, results: Path, out: Path, metric: Optional[str] = None, plots: bool = True,
            targets: Optional[list[str]] = None, say: Callable[[str], None] = lambda _: None,
            check_targets: bool = False, warn: Callable[[str], None] = to_stderr) -> list[Path]:
    """Read every run under results, write the tables (and plots) to out; returns the files written.
    metric None: see pivot_metric (the note goes to `say`). targets: --target specs of the
    time-to-quality table (timing.parse_targets); check_targets: one naming a data set no run has is an
    error (the CLI's --target; a suite's targets may name a data set whose runs all failed). warn: where
    the runs that cannot be read are named (load_runs). A metric no loaded plugin registers is read as its
    eval lines describe it (records.recorded_metrics). Nothing is written when an input is bad."""
    runs = runs_under(results, warn=warn)
    with recorded_metrics(runs):
        wanted = timing.parse_targets(targets or [])
        if check_targets:
            have = sorted({r.dataset for r in runs})
            for ds in (d for d in wanted if d is not None and d not in have):
                raise GanBenchError(f"--target {ds}:{wanted[ds][0]}=...: no run under {str(results)!r} is of data "
                                    f"set {ds!r}; the runs' data sets are {', '.join(have)} (or leave out DATASET: "
                                    f"for every one)")
        return _write(runs, out=out, metric=metric, plots=plots, wanted=wanted, say=say)


def _write(runs: list[RunRecord], *, out: Path, metric: Optional[str], plots: bool,
           wanted: dict[Optional[str], tuple[str, float]], say: Callable[[str], None]) -> list[Path]:
    from gan_bench.report import plots as plotting

    df = runs_table(runs)
    column, note = pivot_metric(df, metric)
    if note:
        say(note)
    files = {**tables(df, column), **timed_tables(runs, df, column, wanted), **lever_tables(runs)}
    with output_folder(out):
        for name, text in files.items():
            write_text(Path(out) / name, text)
        written = [Path(out) / name for name in files]
        if plots:
            written += plotting.write_plots(runs, df, Path(out))
            key = timing.curve_key(runs, column)
            made = key and timing.plot(runs, key, Path(out) / "quality_vs_time.png")
            written += [made] if made else []
    return written


def timed_tables(runs: list[RunRecord], df: pd.DataFrame, column: Optional[str],
                 targets: dict[Optional[str], tuple[str, float]]) -> dict[str, str]:
    """time_to_quality.{csv,md} when runs have timed in-training evaluations (see timing.py)."""
    key = timing.curve_key(runs, column)
    if key is None and not targets:
        return {}
    table = timing.time_to_quality(runs, key, targets)
    if table.empty:
        return {}
    devices = sorted(df.loc[df["run"].isin({r.rel for r in runs if timing.points(r, key or "")}), "device"].dropna()
                     .unique()) if key else sorted(df["device"].dropna().unique())
    return {"time_to_quality.csv": table.to_csv(index=False),
            "time_to_quality.md": timing.ttq_markdown(table, devices)}


def lever_tables(runs: list[RunRecord]) -> dict[str, str]:
    """levers.{csv,md} when the runs hold an ablation (variants of a model beside its plain recipe)."""
    table, missing = levers.lever_table(runs), levers.unmatched(runs)
    if table.empty and not missing:
        return {}
    return {"levers.csv": table.to_csv(index=False),
            "levers.md": levers.lever_markdown(table, missing)}
