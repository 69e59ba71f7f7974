"""Integration on the real shared data (skipped when ../shared/data is absent)."""
from __future__ import annotations

import json

import imageio.v2 as imageio
import pytest

from gan_bench.config import build_config
from gan_bench.train.loop import train
from conftest import SHARED

QD = SHARED / "quickdraw10_train.npz"


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
