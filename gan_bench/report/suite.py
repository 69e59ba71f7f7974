"""The report a suite ends with: the tables and plots in <out>/report/, the gallery in <out>/report/gallery/."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from gan_bench.errors import GanBenchError
from gan_bench.report.compare import compare, resolve_metric, runs_table
from gan_bench.report.gallery import build_gallery
from gan_bench.report.records import load_runs


def write_reports(out: Path, *, title: str, metric: Optional[str], eval_metrics: list[str],
                  targets: Optional[list[str]] = None, say: Callable[[str], None] = print) -> None:
    """Tables and plots of every run under out; metric None: the first of eval_metrics the runs have,
    else throughput. A run or folder that cannot be read is named on stderr once, by the first read."""
    runs = load_runs(out)
    if metric is None:
        table = runs_table(runs)
        metric = next((m for m in eval_metrics if _resolves(table, m)), "img_per_sec")
    files = compare(results=out, out=out / "report", metric=metric, targets=targets, warn=lambda _: None)
    say(f"tables: {files[0].parent}/ ({len(files)} files; pivot of {metric})")
    page = build_gallery(results=out, out=out / "report" / "gallery", title=title, warn=lambda _: None)
    say(f"gallery: {page}")


def _resolves(table, metric: str) -> bool:
    try:
        resolve_metric(table, metric)
        return True
    except GanBenchError:
        return False
