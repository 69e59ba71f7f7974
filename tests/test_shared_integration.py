"""Integration on the real shared data (skipped when ../shared/data is absent)."""
from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import pytest
import yaml

from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.train.loop import train
from conftest import SHARED

QD = SHARED / "quickdraw10_train.npz"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(not QD.exists(), reason="shared data folder absent")
def test_cdcgan_on_shared_quickdraw(tmp_path):
    cfg = build_config([{
        "data": {"name": "npz", "path": str(QD), "test_path": str(SHARED / "quickdraw10_test.npz"),
                 "max_per_class": 200},
        "model": {"name": "cdcgan", "width": 8},
        "train": {"epochs": 2, "batch_size": 64, "log_every": 5, "progress": False},
        "out": str(tmp_path)}], name="qd")
    run = train(cfg)
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["num_classes"] == 10 and s["train_images"] == 2000
    assert s["steps"] == 2 * (2000 // 64)
    names = sorted(p.stem for p in (run / "gifs").glob("*.gif"))
    assert names == sorted(["airplane", "apple", "bicycle", "cat", "crown", "diamond", "eye", "fish", "skull", "star"])
    assert len(imageio.mimread(run / "gifs" / "cat.gif")) == 2


@pytest.mark.skipif(not SHARED.exists(), reason="shared data folder absent")
@pytest.mark.parametrize("suite", sorted((REPO / "configs" / "suites").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_suites_plan_from_the_repo_root(suite: Path, tmp_path: Path, monkeypatch, capsys):
    """Every shipped suite file checks out (configs, --set keys, data paths) as its comment runs it."""
    monkeypatch.chdir(REPO)
    assert main(["suite", str(suite.relative_to(REPO)), "--dry-run", "--out", str(tmp_path)]) == 0
    planned = [line for line in capsys.readouterr().out.splitlines() if "] run " in line]
    spec = yaml.safe_load(suite.read_text())
    assert len(planned) == len(spec["runs"]) * len(spec["seeds"])
