"""A plugin whose contract held on the plan's tiny batches and that fails later, mid-run (a G that breaks on
the training batch, a metric that raises at an in-training evaluation): the run ends failed, as a run that
diverges does (exit 1), with one line naming the plugin's file and line, and its summary says why."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gan_bench.cli import main
from conftest import tiny_overrides, write_npz
from test_plugin_contracts import GOOD_G, HEAD, line_of, model

pytestmark = pytest.mark.usefixtures("one_torch_thread", "isolated_registries")

# G passes the plan's batches (2 and 3 latent vectors) and raises on the training batch of 8
G_OF_SMALL_BATCHES = GOOD_G.replace("        return", "        if len(z) == 8:\n"
                                                      "            raise RuntimeError('out of tiles')\n        return")
METRIC = HEAD + """

@register_metric("plug_gap", kind="custom", key="gap", better="lower")
def gap(ctx):
    raise ValueError('no reference images')
"""


@pytest.mark.parametrize("plugin, delta, fragment, words", [
    (model(g=G_OF_SMALL_BATCHES), {"model": {"name": "m"}}, "raise RuntimeError",
     "step 1: plug.py:{line} raised RuntimeError: out of tiles"),
    (METRIC, {"eval": {"every_steps": 2, "metrics": ["plug_gap"], "primary": "plug_gap", "samples": 6}}, "raise ValueError",
     "metric 'plug_gap': plug.py:{line} raised ValueError: no reference images"),
], ids=["G failing on the training batch", "metric failing at an in-training evaluation"])
def test_a_plugin_failing_mid_run_fails_the_run_in_one_line(plugin, delta, fragment, words, tmp_path: Path, monkeypatch,
                                                            capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plug.py").write_text(plugin)
    cfg = tiny_overrides(write_npz(tmp_path / "tiny.npz"), max_steps=4)
    for section, keys in delta.items():
        cfg[section] = {**cfg[section], **keys} if section in cfg else keys
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    status = main(["run", "c.yaml", "--out", "res", "--plugin", "plug.py"])
    err = capsys.readouterr().err.strip().splitlines()
    said = words.format(line=line_of(plugin, fragment))
    assert status == 1 and len(err) == 1 and err[0].startswith("gan-bench: failed: run stopped: " + said), err
    (run,) = (tmp_path / "res" / "c").iterdir()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"].startswith(said)
