"""Formatting shared by the reports: numbers for people, mean ± std, Markdown tables, an HTML page."""
from __future__ import annotations

import html
import math
from typing import Any, Optional

import pandas as pd


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
    # a spread at float rounding (equal values averaged) is no spread
    if std is None or not math.isfinite(std) or std <= 1e-9 * max(1.0, abs(mean)):
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
