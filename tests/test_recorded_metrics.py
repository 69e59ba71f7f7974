"""A plugin's metric in reports made without the plugin: every eval line carries what a report needs of its
metric (metrics/contract.line_info: direction, headline number, label, columns, floor), and compare and the
gallery read it back when no loaded code registers the metric (report/records.recorded_metrics)."""
from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from gan_bench.config import build_config
from gan_bench.metrics import METRICS
from gan_bench.metrics.contract import info_of_line, line_info
from gan_bench.report.compare import compare
from gan_bench.train.loop import train
from conftest import cli, cli_env, tiny_overrides, write_npz
from test_report import fake_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Higher is better, and a key metric (headline): conditional models score about 1, others about 0, the
# run's seed moving it a little through G's first weight.
PLUGIN = '''
from gan_bench import register_metric


@register_metric("plug_hi", kind="custom", key="hi", better="higher", headline=True, label="Hi score")
def hi(ctx):
    """A number that is higher for conditional models."""
    w = next(ctx.gan.G.parameters()).flatten()[0].item()
    return {"hi": float(ctx.gan.conditional) + 0.01 * abs(w)}
'''


def test_every_built_in_metrics_record_reads_back_from_its_line():
    for e in METRICS:
        back = info_of_line(json.loads(json.dumps(line_info(e.info))))
        assert (back.kind, back.key, back.better, back.headline, back.label, back.table_columns, back.floor) == (
            e.info.kind, e.info.key, e.info.better, e.info.headline, e.info.label, e.info.table_columns, e.info.floor)


@pytest.mark.parametrize("info", [None, "x", {"kind": "custom", "key": "hi"},
                                  {"kind": "custom", "key": "hi", "better": "up"},
                                  {"kind": "mine", "key": "hi", "better": "higher"},
                                  {"kind": "custom", "key": ["hi"], "better": "higher"},
                                  {"kind": "custom", "key": "hi", "better": "higher", "columns": "hi"},
                                  {"kind": "custom", "key": "hi", "better": "higher", "headline": "yes"}])
def test_a_line_whose_info_is_not_a_record_describes_nothing(info):
    assert info_of_line(info) is None


def test_the_stand_ins_are_gone_once_the_report_is_written(tmp_path: Path):
    """In-process: a metric known only from its lines ranks its way, and the registry is as it was after."""
    line = {"metric": "ghost", "step": 20, "checkpoint": "last", "boo": 0.0,
            "info": {"kind": "custom", "key": "boo", "better": "higher", "headline": False, "label": "",
                     "columns": [], "floor": ""}}
    for seed, (a, b) in enumerate([(0.9, 0.1), (0.8, 0.2)]):
        fake_run(tmp_path / "res", "toy_cdcgan", seed, model="cdcgan", evals=[{**line, "boo": a}])
        fake_run(tmp_path / "res", "toy_mlpgan", seed, model="mlpgan", evals=[{**line, "boo": b}])
    compare(results=tmp_path / "res", out=tmp_path / "rep", plots=False)  # no --metric: the only metric there
    ranks = list(csv.DictReader((tmp_path / "rep" / "ranking_boo.csv").open()))
    assert [(r["model"], r["rank"]) for r in ranks] == [("cdcgan", "1"), ("mlpgan", "2")]
    assert "ghost" not in METRICS


def test_a_plugins_higher_is_better_metric_ranks_in_reports_made_without_the_plugin(tmp_path: Path,
                                                                                  isolated_registries):
    """Trained and evaluated with the plugin; then the plugin file is gone, and compare and gallery run in a
    fresh process that never loads it: the metric is ranked higher-first, bold where highest, and shown
    under its label as a key metric."""
    (tmp_path / "hi_metric.py").write_text(PLUGIN)
    npz = write_npz(tmp_path / "tiny.npz")
    for model in ("cdcgan", "convdcgan"):
        for seed in (0, 1):
            train(build_config([tiny_overrides(npz, model=model, max_steps=2, seed=seed),
                                {"out": str(tmp_path / "res"), "plugins": [str(tmp_path / "hi_metric.py")],
                                 "eval": {"every_steps": 2, "metrics": ["plug_hi"], "samples": 6}}],
                               name=f"tiny_{model}"))
    line = json.loads(next((tmp_path / "res" / "tiny_cdcgan").rglob("eval.jsonl")).read_text().splitlines()[-1])
    assert line["info"]["better"] == "higher" and line["info"]["label"] == "Hi score"
    (tmp_path / "hi_metric.py").unlink()  # whatever tried to load it would fail

    def gan_bench(*args: str) -> str:
        r = subprocess.run(cli(*args), cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and not r.stderr, r.stderr
        return r.stdout

    gan_bench("compare", "res", "--out", "rep", "--no-plots")  # no --metric: the key metric the runs have
    ranks = list(csv.DictReader((tmp_path / "rep" / "ranking_hi.csv").open()))
    assert [(r["model"], r["rank"]) for r in ranks] == [("cdcgan", "1"), ("convdcgan", "2")]
    assert "higher is better" in (tmp_path / "rep" / "ranking_hi.md").read_text()
    head, _, row = [line.split("|") for line in (tmp_path / "rep" / "pivot_hi.md").read_text().splitlines()
                    if line.startswith("|")][:3]
    bold = [c.strip() for c in head if c.strip()][[i for i, c in enumerate(row[1:-1]) if "**" in c][0]]
    assert bold == "cdcgan", (head, row)  # the best mean of the row, marked the higher-is-better way
    gan_bench("gallery", "res", "--out", "gal")
    page = (tmp_path / "gal" / "index.html").read_text()
    assert "Hi score" in page
