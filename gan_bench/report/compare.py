"""Comparison tables: one row per run, and a data set x model pivot of one metric over seeds.

Written as CSV (raw numbers, for pandas), Markdown (for a README or a pull request) and HTML.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from gan_bench.atomic import output_folder, write_text
from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import default_metrics, direction, headline_columns
from gan_bench.report.records import RunRecord, runs_under

# Direction of the run columns that are not metrics (the metric registry knows the metrics'), to mark
# the best model per data set.
RUN_COLUMN_LOWER_IS_BETTER = {"img_per_sec": False, "wall_s": True, "peak_gpu_mb": True, "peak_cpu_mb": True}
KEY_COLUMNS = ["dataset", "model", "seed", "status", "steps"]
TAIL_COLUMNS = ["img_per_sec", "wall_s", "peak_gpu_mb", "peak_cpu_mb", "params_G", "params_D", "device", "compute",
                "arch", "config", "run"]
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
                     "arch": s.get("model"), "config": s.get("name"), "run": r.rel})
    df = pd.DataFrame(rows, columns=None if rows else KEY_COLUMNS + TAIL_COLUMNS)
    first = headline_columns()  # the key metrics' columns first, in registry order; others alphabetically
    metrics = sorted((c for c in df.columns if c not in KEY_COLUMNS + TAIL_COLUMNS),
                     key=lambda c: (first.index(c) if c in first else len(first), c))
    return df[KEY_COLUMNS + metrics + TAIL_COLUMNS]


def compute_of(summary: dict[str, Any]) -> Optional[str]:
    """bf16 or fp32, the arithmetic of G and D in training (summary.json's levers; None before them)."""
    levers = summary.get("levers")
    return None if levers is None else ("bf16" if levers.get("bf16") else "fp32")


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


def pivot_grid(long: pd.DataFrame, column: str, *, style: str = "plain") -> pd.DataFrame:
    """data set x model cells "mean ± std" (just the mean for one seed). style "md" or "html" marks
    the best mean of each data set row in bold (for columns whose direction is known) and, for
    "html", escapes the names."""
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
    grid.index.name = "dataset"
    return grid.fillna("")


def lower_is_better(column: str) -> Optional[bool]:
    """From the metric registry (a metric's headline key and direction), else the run columns' table
    above; None when unknown (nothing is marked)."""
    known = direction(column)
    return RUN_COLUMN_LOWER_IS_BETTER.get(column) if known is None else known


def fmt(value: Any, column: str = "") -> str:
    """Human formatting for tables: 4 significant digits, parameters in k/M, empty for missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if column.startswith("params_") and isinstance(value, (int, float)):
        return f"{value / 1e6:.2f}M" if value >= 1e6 else f"{value / 1e3:.1f}k"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def mean_std(mean: float, std: Optional[float]) -> str:
    """ "12.3 ± 1.4": the spread to two significant digits and the mean to the same decimal place."""
    if std is None or not math.isfinite(std) or std <= 0:
        return fmt(mean)
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return f"{mean:,.{decimals}f} ± {std:.{decimals}f}"


def to_markdown(df: pd.DataFrame, *, index: bool = False) -> str:
    """A GitHub Markdown table of already formatted or raw cells (no tabulate needed)."""
    if index:
        df = df.reset_index()
    cols = [str(c) for c in df.columns]
    cell = lambda v: fmt(v).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def formatted(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({c: [fmt(v, c) for v in df[c]] for c in df.columns}, index=df.index)


def html_page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<link rel=icon href='data:,'><style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}"
            "table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #ddd;"
            "text-align:right}th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}"
            f"</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n")


def tables(df: pd.DataFrame, column: Optional[str]) -> dict[str, str]:
    """{file name: content}: runs.{csv,md,html} and, for a column, pivot_<column>.{csv,md,html}.
    Everything is made before anything is written, so a bad column writes nothing."""
    out = {"runs.csv": df.to_csv(index=False), "runs.md": to_markdown(formatted(df)),
           "runs.html": html_page("Runs", formatted(df).to_html(index=False, na_rep=""))}
    if column is not None:
        long = pivot_long(df, column)
        stem = "pivot_" + column.replace("@", "_at_")
        out[f"{stem}.csv"] = long.to_csv(index=False)
        out[f"{stem}.md"] = (f"{column}: mean ± std over seeds (completed runs)\n\n" + mixed_compute_note(df)
                             + to_markdown(pivot_grid(long, column, style="md"), index=True))
        grid = pivot_grid(long, column, style="html").to_html(escape=False)
        out[f"{stem}.html"] = html_page(f"{column}: mean ± std over seeds", grid)
    return out


def pivot_metric(df: pd.DataFrame, metric: Optional[str]) -> tuple[str, Optional[str]]:
    """The pivot's column, and a note when it is not a quality metric: metric None takes the first key
    metric the runs have been evaluated with, else throughput (what every run folder holds)."""
    if metric is not None:
        return resolve_metric(df, metric), None
    have = [c for c in headline_columns() if c in df.columns and df[c].notna().any()]
    if have:
        return have[0], None
    return "img_per_sec", (f"no run here is evaluated yet, so the pivot is of img_per_sec; `gan-bench eval RUN` "
                           f"adds {', '.join(default_metrics())} (those that apply to each run)")


def compare(*, results: Path, out: Path, metric: Optional[str] = None, plots: bool = True,
            say: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Read every run under results, write the tables (and plots) to out; returns the files written.
    metric None: see pivot_metric (the note goes to `say`). Nothing is written when an input is bad."""
    from gan_bench.report import plots as plotting

    runs = runs_under(results)
    df = runs_table(runs)
    column, note = pivot_metric(df, metric)
    if note:
        say(note)
    files = tables(df, column)
    with output_folder(out):
        for name, text in files.items():
            write_text(Path(out) / name, text)
        written = [Path(out) / name for name in files]
        if plots:
            written += plotting.write_plots(runs, df, Path(out))
    return written
