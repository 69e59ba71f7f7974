"""Every shipped config loads, validates, and trains for a couple of steps on tiny data of its shape."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gan_bench.config import build_config, load_config
from gan_bench.data import DATASETS
from gan_bench.models import MODELS
from gan_bench.run.files import read_jsonl
from gan_bench.train.loop import train
from conftest import ROOT, write_npz

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def test_configs_are_shipped_for_the_matrix():
    names = {p.stem for p in CONFIGS}
    for d, models in {"quickdraw": ["cdcgan", "classdcgan", "convdcgan", "mlpgan"],
                      "mnist": ["cdcgan", "convdcgan", "lindcgan", "mlpgan"],
                      "cifar10": ["convdcgan", "lindcgan", "classdcgan", "cdcgan"],
                      "celeba": ["convdcgan", "lindcgan"]}.items():
        for m in models:
            assert f"{d}_{m}" in names
    assert "demo" in names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_runs_two_steps_on_tiny_data_of_its_shape(path: Path, tmp_path: Path):
    cfg = load_config(path)
    assert cfg.model.name in MODELS and cfg.data.name in DATASETS
    info = DATASETS.info(cfg.data.name)
    res = cfg.data.resolution or info.resolutions[0]
    labelled = info.labelled is not False
    tiny = write_npz(tmp_path / "tiny.npz", size=res, rgb=info.channels == 3, n_per_class=6)
    if not labelled:  # e.g. CelebA: same images without labels
        import numpy as np
        d = dict(np.load(tiny))
        np.savez(tiny, x=d["x"])
    delta = {"data": {"name": "npz", "path": str(tiny), "resolution": None},
             "train": {"max_steps": 2, "batch_size": 4, "log_every": 1, "progress": False},
             "out": str(tmp_path / "res")}
    shipped = cfg.to_dict()
    for option in dataclasses.fields(cfg.data.options):  # the shipped data set's own keys do not apply to npz
        shipped["data"].pop(option.name)
    cfg = build_config([shipped, delta])
    run = train(cfg)
    recs = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in recs] == [1, 2]
    assert all(abs(r["loss_d"]) < 1e3 for r in recs)
