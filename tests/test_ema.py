"""G weight averaging (train/ema.py, train.ema): the ramped beta, the average itself, BatchNorm
statistics recomputed for the averaged weights, and where the run uses the average (snapshots,
evaluation and best.pt, checkpoints, load_generator, per-class exports)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_bench.config import ModelConfig, build_config
from gan_bench.data.base import DataSpec
from gan_bench.errors import GanBenchError
from gan_bench.metrics import evaluate as evaluation
from gan_bench.metrics.contract import line_info
from gan_bench.metrics.registry import METRICS
from gan_bench.models import build_model
from gan_bench.models.base import one_hot
from gan_bench.report.records import eval_columns
from gan_bench.run import RunFolder
from gan_bench.run.checkpoint import EMA_G
from gan_bench.run.files import grid, read_jsonl
from gan_bench.run.sampling import fixed_inputs, generate, load_generator
from gan_bench.train import ema as ema_module
from gan_bench.train import loop as loop_module
from gan_bench.train.ema import GeneratorAverage
from gan_bench.train.loop import train
from conftest import tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = DataSpec("s", 28, 1, 3, ["a", "b", "c"])


def cdcgan():
    torch.manual_seed(0)
    return build_model(ModelConfig(name="cdcgan", width=4, nz=8), SPEC)


def test_beta_ramps_up_to_its_value():
    avg = GeneratorAverage(cdcgan(), beta=0.999, rampup=0.05)
    assert avg.beta_at(1) < 1e-5                                   # the first step: (almost) a copy
    assert avg.beta_at(1000) == pytest.approx(0.5 ** (1 / 50))     # half-life 5 % of 1000 steps
    assert avg.beta_at(10 ** 6) == 0.999                           # the ramp has reached beta
    betas = [avg.beta_at(t) for t in range(1, 20000, 100)]
    assert betas == sorted(betas)
    assert GeneratorAverage(cdcgan(), beta=0.9, rampup=0.0).beta_at(1) == 0.9  # no ramp


def test_update_is_the_exponential_moving_average():
    gan = cdcgan()
    avg = GeneratorAverage(gan, beta=0.9, rampup=0.0)
    before = [p.detach().clone() for p in avg.G.parameters()]
    with torch.no_grad():
        for p in gan.G.parameters():
            p.add_(1.0)
    avg.update(gan.G, step=5)
    for a, old, raw in zip(avg.G.parameters(), before, gan.G.parameters()):
        torch.testing.assert_close(a, 0.9 * old + 0.1 * raw)
        assert not a.requires_grad
    assert not avg.fresh


def test_batchnorm_statistics_are_recomputed_for_the_averaged_weights():
    gan = cdcgan()
    avg = GeneratorAverage(gan, beta=0.5, rampup=0.0)
    with torch.no_grad():
        for p in gan.G.parameters():
            p.mul_(1.5)
    avg.update(gan.G, step=1)
    for b in avg.G.buffers():  # whatever the statistics were before, they are recomputed from scratch
        b.fill_(7)
    rng = torch.get_rng_state()
    avg.refresh(gan.G, batch=12)
    assert torch.equal(rng, torch.get_rng_state()) and not avg.G.training

    # by hand: the first BatchNorm's running mean is the mean of the first layer's outputs on the fixed noise
    g = torch.Generator().manual_seed(ema_module.BN_SEED)
    y = torch.arange(3).repeat(4)
    with torch.no_grad():
        outs = [avg.G.net[0](torch.cat([torch.randn(12, 8, generator=g), one_hot(y, 3, torch.float32)], 1)[:, :, None, None])
                for _ in range(ema_module.BN_BATCHES)]
    bn = avg.G.net[1]
    torch.testing.assert_close(bn.running_mean, torch.stack([o.mean((0, 2, 3)) for o in outs]).mean(0))
    assert bn.num_batches_tracked.item() == ema_module.BN_BATCHES and bn.momentum == 0.1
    assert not torch.equal(bn.running_mean, gan.G.net[1].running_mean)  # not the raw G's statistics

    stats = copy.deepcopy(avg.G.state_dict())
    avg.refresh(gan.G, batch=12)  # fresh: nothing to do
    avg.fresh = False
    avg.refresh(gan.G, batch=12)  # again from scratch: the same numbers
    assert all(torch.equal(v, stats[k]) for k, v in avg.G.state_dict().items())


def _run(tmp_path: Path, npz: Path, model: str = "cdcgan", **train_keys) -> Path:
    return train(build_config([tiny_overrides(npz, model, **train_keys), {"out": str(tmp_path)}], name="t"))


def test_the_run_shows_the_average_and_keeps_the_raw_g(tmp_path: Path, tiny_npz: Path):
    run = _run(tmp_path, tiny_npz, ema=0.9)
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    assert ckpt["G"].keys() == ckpt[EMA_G].keys()  # G's keys unchanged; the average under its own key
    assert not all(torch.equal(ckpt["G"][k], ckpt[EMA_G][k]) for k in ckpt["G"])

    averaged, step = load_generator(RunFolder(run))
    raw, _ = load_generator(RunFolder(run), g="raw")
    assert averaged.averaged and not raw.averaged and step == 8
    assert all(torch.equal(v, ckpt[EMA_G][k]) for k, v in averaged.G.state_dict().items())
    assert all(torch.equal(v, ckpt["G"][k]) for k, v in raw.G.state_dict().items())
    with pytest.raises(GanBenchError, match="g must be one of ema, raw"):
        load_generator(RunFolder(run), g="best")

    # the last snapshot is the average's picture of the fixed grid
    cfg = RunFolder(run).read_config()
    z, y, nrow = fixed_inputs(averaged, cfg, torch.device("cpu"))
    frame = np.asarray(Image.open(run / "samples" / "epoch_0002.png"))
    labels = averaged.spec.classes  # one class per row, named at its left
    assert np.array_equal(frame, np.asarray(grid(generate(averaged, z, y), nrow, labels=labels)))
    assert not np.array_equal(frame, np.asarray(grid(generate(raw, z, y), nrow, labels=labels)))


def test_without_ema_nothing_changes(tmp_path: Path, tiny_npz: Path):
    run = _run(tmp_path, tiny_npz)
    assert EMA_G not in torch.load(run / "checkpoints" / "last.pt", weights_only=False)
    gan, _ = load_generator(RunFolder(run))
    assert not gan.averaged


def test_evaluation_records_both_and_keeps_best_by_the_average(tmp_path: Path, tiny_npz: Path, monkeypatch):
    calls = []

    def fake_in_training(gan, splits, cfg, run, step, g=None, at=None):
        calls.append((step, g, gan.averaged))
        # the raw G scores better every time: best.pt must still follow the average
        return {"fd": (1.0 if g == "raw" else 10.0) + abs(step - 4)}

    monkeypatch.setattr(loop_module, "in_training", fake_in_training)
    run = train(build_config([tiny_overrides(tiny_npz, ema=0.9, epochs=3, checkpoint_every=100),
                              {"out": str(tmp_path), "eval": {"every": 1}}], name="t"))
    assert calls == [(4, "raw", False), (4, "ema", True), (8, "raw", False), (8, "ema", True),
                     (12, "raw", False), (12, "ema", True)]
    best = torch.load(run / "checkpoints" / "best.pt", weights_only=False)
    assert best["step"] == 4 and best["best"] == 10.0 and EMA_G in best


def test_eval_lines_say_which_g(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(evaluation, "evaluate", lambda gan, splits, **kw: {"fd": {"samples": 10, "fd": 3.0}})
    cfg = build_config([{"train": {"ema": 0.99}}])
    gan = cdcgan()
    evaluation.in_training(gan, None, cfg, RunFolder(tmp_path), step=4, g="raw")
    evaluation.in_training(gan, None, cfg, RunFolder(tmp_path), step=4, g="ema")
    evaluation.in_training(gan, None, build_config([]), RunFolder(tmp_path), step=5)
    lines = read_jsonl(tmp_path / "eval.jsonl")
    assert [line.get("g") for line in lines] == ["raw", "ema", None]
    assert lines[0] == {"metric": "fd", "step": 4, "checkpoint": "training", "g": "raw", "samples": 10, "fd": 3.0,
                        "info": line_info(METRICS.info("fd"))}  # what a report needs of the metric
    _, curves = eval_columns(lines)  # the reports' metric-vs-step curves follow the G a run shows
    assert [line.get("g") for line in curves] == ["ema", None]


def test_per_class_exports_carry_each_pairs_average(tmp_path: Path, tiny_npz: Path):
    run = _run(tmp_path, tiny_npz, "classdcgan", ema=0.9, epochs=1)
    ck = torch.load(run / "checkpoints" / "classes" / "b.pt", weights_only=False)
    one = build_model(ModelConfig(name="convdcgan", width=4, nz=8), DataSpec("x", 28, 1, 0, []))
    one.G.load_state_dict(ck[EMA_G]), one.G.load_state_dict(ck["G"])  # strict: both fit one pair
    assert not all(torch.equal(ck["G"][k], ck[EMA_G][k]) for k in ck["G"])
