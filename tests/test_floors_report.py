"""Tables show each metric's real-data floor beside its number (MetricInfo.floor): in the runs table the
floor column right after the metric's, in the pivot a "real data" column per data set."""
from __future__ import annotations

from pathlib import Path

from gan_bench.metrics.registry import METRICS, floor_columns
from gan_bench.report.compare import compare, runs_table
from gan_bench.report.records import load_runs
from test_report import fake_run


def lines(fd: float, real_fd: float, kid: float, real_kid: float) -> list[dict]:
    return [{"metric": "fd", "step": 20, "checkpoint": "last", "samples": 500, "fd": fd, "real_fd": real_fd,
             "real_images": 500},
            {"metric": "kid", "step": 20, "checkpoint": "last", "kid_mean": kid, "kid_std": 0.01,
             "real_kid_mean": real_kid, "real_kid_std": 0.001},
            {"metric": "density", "step": 20, "checkpoint": "last", "density": 0.5, "real_density": 1.02}]


def test_every_floor_names_a_metric_and_the_runs_table_puts_it_beside_its_number(tmp_path: Path):
    assert floor_columns()["fd"] == "real_fd" and floor_columns()["inception_fid"] == "real_inception_fid"
    assert all(e.info.floor.startswith("real_") for e in METRICS if e.info.floor)
    root = tmp_path / "results"
    for seed, fd in enumerate([20.0, 24.0]):
        fake_run(root, "quickdraw_cdcgan", seed, model="cdcgan", evals=lines(fd, 1.5, fd / 100, 0.001))
        fake_run(root, "quickdraw_mlpgan", seed, model="mlpgan", evals=lines(fd * 2, 1.7, fd / 50, 0.003))
    cols = list(runs_table(load_runs(root)).columns)
    for key, floor in (("fd", "real_fd"), ("kid_mean", "real_kid_mean"), ("density", "real_density")):
        assert cols.index(floor) == cols.index(key) + 1, cols


def test_the_pivot_has_a_real_data_column_beside_the_models(tmp_path: Path):
    root = tmp_path / "results"
    for seed, fd in enumerate([20.0, 24.0]):
        fake_run(root, "quickdraw_cdcgan", seed, model="cdcgan", evals=lines(fd, 1.5, fd / 100, 0.001))
        fake_run(root, "quickdraw_mlpgan", seed, model="mlpgan", evals=lines(fd * 2, 1.7, fd / 50, 0.003))
    out = tmp_path / "report"
    compare(results=root, out=out, metric="fd", plots=False)
    md = (out / "pivot_fd.md").read_text()
    assert "real data: real_fd, held-out real images in place of generated ones at the same N" in md
    assert "| dataset | cdcgan | mlpgan | real data |" in md
    assert "| quickdraw | **22.0 ± 2.8** | 44.0 ± 5.7 | 1.60 ± 0.12 |" in md  # the floor over all four runs
    compare(results=root, out=tmp_path / "report_kid", metric="kid", plots=False)
    assert "real data |" in (tmp_path / "report_kid" / "pivot_kid_mean.md").read_text()
