"""The step of train() as one function (gan_bench.train.step.gan_step) and its speed speed.

gan_step must be the trainer's step exactly: one step of it from the trainer's seed, batch and
stabiliser settings gives bit for bit the weights train() checkpoints after one step. The speed
are chosen per device (a CPU gets channels_last, and bf16 with AMX); bf16 and channels_last give the
fp32 step to bf16 precision.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch

from gan_bench.config import ModelConfig, TrainConfig, build_config
from gan_bench.data import load_data
from gan_bench.data.base import DataSpec
from gan_bench.models import build_model
from gan_bench.run.files import read_jsonl
from gan_bench.train.batches import BatchSource
from gan_bench.run.checkpoint import load_checkpoint
from gan_bench.train import speed as fast
from gan_bench.train.speed import AsyncScalars, SpeedSwitches, adam, apply_speed
from gan_bench.train.recipe import Recipe
from gan_bench.train.step import gan_step
from gan_bench.train.loop import train
from gan_bench.train.setup import build
from conftest import tiny_overrides

FUSED = torch.__version__ >= "2.4"  # torch 2.4 added the CPU kernel of fused Adam
STABILISERS = {"instance_noise": 0.1, "real_label_range": [0.8, 1.0], "label_flip": 0.2}


def bce(lv: SpeedSwitches, gan=None) -> Recipe:
    """The shared recipe's step under speed switches lv (per-class models: one pair per class)."""
    pairs = gan.num_classes if gan is not None and gan.per_class else 1
    return Recipe.of(TrainConfig()).on(amp_dtype=lv.amp_dtype, pairs=pairs)


@pytest.mark.parametrize("model", ["cdcgan", "classdcgan", "mlpgan"])
def test_gan_step_is_the_trainers_step(tmp_path: Path, tiny_npz: Path, model: str):
    cfg = build_config([tiny_overrides(tiny_npz, model, max_steps=1, **STABILISERS), {"out": str(tmp_path)}],
                       name="t")
    run = train(cfg)
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", config_hash=cfg.hash())
    (rec,) = read_jsonl(run / "metrics.jsonl")

    # the trainer's own build (no run folder), then gan_step instead of the loop body
    t = build(cfg, device=torch.device("cpu"), folder=False)
    gan, lv = t.gan, t.speed
    assert lv == SpeedSwitches.for_device(torch.device("cpu"))  # the trainer's speed on this CPU
    x, y = t.source.batch(0, 0)
    gan.train()
    out = gan_step(t.plan.recipe, gan, t.opt_d, t.opt_g, lv.input(x), y)
    assert json.loads((run / "summary.json").read_text())["speed"] == lv.record()

    for part, saved in ((gan.G, ckpt["G"]), (gan.D, ckpt["D"])):
        mine = part.state_dict()
        assert mine.keys() == saved.keys()
        assert all(torch.equal(mine[k], saved[k]) for k in mine), "gan_step drifted from loop.py's step"
    assert t.plan.recipe.pairs == (gan.num_classes if gan.per_class else 1)
    assert out.loss_d.item() == rec["loss_d"] and out.loss_g.item() == rec["loss_g"]  # means, whatever the pairs
    assert torch.sigmoid(out.d_real).mean().item() == rec["d_x"]


@pytest.mark.parametrize("amx, avx512_bf16", [(False, False), (True, False), (False, True), (True, True)])
def test_cpu_speed_switches_are_layout_and_bf16_only_with_bf16_instructions(monkeypatch, amx: bool, avx512_bf16: bool):
    """bf16 on a CPU with AMX (Intel) or AVX512-BF16 (AMD Zen 4): both run it natively; elsewhere
    oneDNN emulates it, slower than float32."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    bf16 = amx or avx512_bf16
    lv = SpeedSwitches.for_device(torch.device("cpu"))
    assert lv == SpeedSwitches(channels_last=True, bf16=bf16, fused_adam=FUSED, compile_mode="default")  # no cudnn, async
    assert lv.amp_dtype == (torch.bfloat16 if bf16 else None)
    assert lv.record() == {"channels_last": True, "bf16": bf16, "fused_adam": FUSED, "cudnn_benchmark": False,
                           "compile": False, "async_log": False}
    asked = SpeedSwitches.for_device(torch.device("cpu"), compile=True)  # only when asked, without autotuning
    assert asked.compile and asked.record()["compile_mode"] == "default"


def test_a_cpu_probe_that_fails_means_no_bf16(monkeypatch):
    def broken():
        raise RuntimeError("cpuinfo unavailable")

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", broken, raising=False)
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    assert fast.cpu_has_bf16() is False and not SpeedSwitches.for_device(torch.device("cpu")).bf16


@pytest.mark.parametrize("capability, bf16", [((7, 5), False), ((8, 0), True), ((9, 0), True)])
def test_cuda_speed_switches_use_bf16_only_with_bf16_tensor_cores(monkeypatch, capability, bf16: bool):
    """A T4 (7.5) or V100 (7.0) emulates bf16, slower than float32: the default must not pick it there."""
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    on = SpeedSwitches.for_device(torch.device("cuda"), compile=True)
    assert on.bf16 is bf16 and on.amp_dtype == (torch.bfloat16 if bf16 else None)
    assert on.channels_last and on.fused_adam and on.cudnn_benchmark and on.async_log and on.compile
    assert not on.without("bf16").bf16 and on.record()["compile_mode"] == on.compile_mode


def test_no_cuda_means_no_cuda_bf16():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert fast.cuda_has_bf16(torch.device("cuda")) is False


def test_no_speed_switches_leave_the_model_and_inputs_untouched():
    lv = SpeedSwitches()
    gan = build_model(ModelConfig(name="convdcgan", width=4, nz=8), DataSpec("s", 28, 1, 0, []))
    before = copy.deepcopy(gan.state_dict())
    apply_speed(gan, lv)
    assert all(p.is_contiguous() for p in gan.parameters())
    assert all(torch.equal(v, before[k]) for k, v in gan.state_dict().items())
    assert not adam(gan.G.parameters(), lr=1e-3, betas=(0.5, 0.999), speed=lv).defaults.get("fused")
    x = torch.randn(2, 1, 28, 28)
    assert lv.input(x) is x
    cl = SpeedSwitches(channels_last=True)
    apply_speed(gan, cl)
    conv = next(p for p in gan.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert cl.input(x).is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(v, before[k]) for k, v in gan.state_dict().items())  # same values, new layout


def test_bf16_channels_last_step_matches_fp32():
    spec = DataSpec("s", 28, 1, 3, ["a", "b", "c"])
    torch.manual_seed(0)
    base = build_model(ModelConfig(name="cdcgan", width=8, nz=16), spec)
    x = torch.rand(12, 1, 28, 28) * 2 - 1
    y = torch.arange(3).repeat(4)
    outs, weights = [], []
    for lv in (SpeedSwitches(), SpeedSwitches(channels_last=True, bf16=True)):
        gan = apply_speed(copy.deepcopy(base), lv)
        opt_g = adam(gan.G.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=lv)
        opt_d = adam(gan.D.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=lv)
        torch.manual_seed(1)
        out = gan_step(bce(lv), gan, opt_d, opt_g, lv.input(x), y)
        assert out.loss_d.dtype == torch.float32 and torch.isfinite(out.loss_d)  # losses stay fp32
        outs.append(out)
        weights.append(torch.cat([p.detach().flatten() for p in gan.parameters()]))
    assert abs(outs[0].loss_d.item() - outs[1].loss_d.item()) < 0.05
    assert abs(outs[0].loss_g.item() - outs[1].loss_g.item()) < 0.05
    initial = torch.cat([p.detach().flatten() for p in base.parameters()])
    step32, step16 = weights[0] - initial, weights[1] - initial
    # Adam moves every weight by about lr; the bf16 step moves them the same way
    assert torch.nn.functional.cosine_similarity(step32, step16, dim=0) > 0.9


def test_async_scalars_keep_order_and_values():
    log = AsyncScalars(torch.device("cpu"))
    a, b = torch.tensor(0.25), torch.tensor([1.5])
    log.push({"step": 1}, loss_d=a, loss_g=b)
    log.push({"step": 2}, loss_d=a * 2, loss_g=b * 2)
    assert log.ready(wait=True) == [{"step": 1, "loss_d": 0.25, "loss_g": 1.5},
                                    {"step": 2, "loss_d": 0.5, "loss_g": 3.0}]
    assert log.ready() == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ["cdcgan", "classdcgan"])
def test_cuda_step_never_waits_for_the_device(model: str):
    device = torch.device("cuda")
    spec = DataSpec("s", 28, 1, 3, ["a", "b", "c"])
    lv = SpeedSwitches.for_device(device)
    gan = apply_speed(build_model(ModelConfig(name=model, width=8, nz=16), spec).to(device), lv)
    opt_g = adam(gan.G.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=lv)
    opt_d = adam(gan.D.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=lv)
    x = lv.input(torch.rand(12, 1, 28, 28, device=device) * 2 - 1)
    y = torch.arange(3, device=device).repeat(4)
    gan_step(bce(lv, gan), gan, opt_d, opt_g, x, y)  # first step: lazy state allocation
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = gan_step(bce(lv, gan), gan, opt_d, opt_g, x, y)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(out.loss_d).item()


def test_resumed_optimiser_state_takes_the_parameters_layout():
    """A checkpoint written contiguous (CPU) and resumed channels_last (CUDA), or the reverse: the Adam
    moments must follow their parameter's layout, value for value."""
    conv = torch.nn.Conv2d(3, 4, 3)
    opt = torch.optim.Adam(conv.parameters(), lr=1e-3)
    conv(torch.randn(2, 3, 8, 8)).sum().backward()
    opt.step()
    saved = copy.deepcopy(opt.state_dict())
    conv.to(memory_format=torch.channels_last)  # what apply_speed does on CUDA
    opt2 = torch.optim.Adam(conv.parameters(), lr=1e-3)
    opt2.load_state_dict(saved)
    w = conv.weight
    assert opt2.state[w]["exp_avg"].stride() != w.stride()  # the mismatch this guards against
    from gan_bench.train.speed import match_state_layout

    match_state_layout(opt2)
    for key in ("exp_avg", "exp_avg_sq"):
        moved = opt2.state[w][key]
        assert moved.stride() == w.stride()
        assert torch.equal(moved, saved["state"][0][key])


def test_data_stays_on_the_device_only_when_it_fits_beside_training(monkeypatch):
    from gan_bench.train import batches

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * 2**30, 16 * 2**30))
    cuda = torch.device("cuda")
    assert batches.fits_on_device(4 * 2**30, cuda) and not batches.fits_on_device(6 * 2**30, cuda)
    assert batches.fits_on_device(10**15, torch.device("cpu"))  # host memory is where a CPU's data is
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 16 * 2**30))
    data = load_data(build_config([{"data": {"name": "shapes", "per_class": 4}}]).data).train
    source = BatchSource(data, batch_size=8, seed=0, per_class=False, device=cuda)  # too big for 1000 bytes
    assert not source.resident and source.x.device.type == "cpu"


@pytest.mark.parametrize("per_class", [False, True])
def test_batches_from_host_memory_are_the_batches_from_the_device(per_class: bool):
    data = load_data(build_config([{"data": {"name": "shapes", "per_class": 10}}]).data).train
    cpu = torch.device("cpu")
    on, off = (BatchSource(data, batch_size=4, seed=3, per_class=per_class, device=cpu, resident=r)
               for r in (True, False))  # not resident: each batch gathered on the host, then moved
    assert on.resident and not off.resident
    for epoch, i in ((0, 0), (0, 1), (1, 0)):
        (xa, ya), (xb, yb) = on.batch(epoch, i), off.batch(epoch, i)
        assert torch.equal(xa, xb) and torch.equal(ya, yb) and xa.dtype == torch.float32


def test_a_data_set_too_large_for_the_device_still_trains(tmp_path: Path, tiny_npz: Path, monkeypatch, capsys):
    from gan_bench.train import batches

    cfg = build_config([tiny_overrides(tiny_npz, max_steps=3), {"out": str(tmp_path)}], name="t")
    ref = json.loads((train(cfg) / "summary.json").read_text())
    assert ref["data_on_device"] is True and "does not fit" not in capsys.readouterr().err
    monkeypatch.setattr(batches, "fits_on_device", lambda nbytes, device: False)
    run = train(cfg)
    assert "does not fit beside training" in capsys.readouterr().err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["data_on_device"] is False and summary["final_loss_d"] == ref["final_loss_d"]


def test_peak_memory_in_summary_is_the_runs_own(tmp_path: Path, tiny_npz: Path, monkeypatch):
    """Runs one after another in one process (a suite): a later run's peak must not be an earlier one's."""
    import numpy as np

    import gan_bench.train.loop as loop

    cfg = build_config([tiny_overrides(tiny_npz, max_steps=2), {"out": str(tmp_path)}], name="t")
    real_step = loop.gan_step

    def step_with_a_big_array(*a, **k):
        big = np.ones(400 * 2**20, np.uint8)  # 400 MiB touched, then freed
        del big
        return real_step(*a, **k)

    monkeypatch.setattr(loop, "gan_step", step_with_a_big_array)
    heavy = json.loads((train(cfg) / "summary.json").read_text())
    monkeypatch.setattr(loop, "gan_step", real_step)
    light = json.loads((train(cfg) / "summary.json").read_text())
    assert heavy["peak_cpu_mb"] > 400
    if light["peak_cpu_of"] == "run":  # Linux: the peak can be reset per run
        assert light["peak_cpu_mb"] < heavy["peak_cpu_mb"] - 300
    assert "peak_gpu_mb" not in light  # a CPU run has no GPU peak


@pytest.mark.parametrize("amx, avx512_bf16, named", [(True, True, "Xeon with AMX"),
                                                      (False, True, "Xeon with AVX512-BF16"),
                                                      (False, False, "Xeon")])
def test_a_summary_names_the_cpu_and_the_bf16_instructions_the_lever_used(monkeypatch, amx, avx512_bf16, named):
    """Two CPUs of one model name can differ by bf16 instructions, and so by 1.7x in training minutes;
    the name says what the bf16 switch found, from the same probe."""
    from gan_bench.run.world import cpu_model

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    info = "processor\t: 0\nmodel name\t: Xeon\nflags\t\t: fpu sse2\n\nprocessor\t: 1\nmodel name\t: Xeon\n"
    assert cpu_model(info) == named
    assert SpeedSwitches.for_device(torch.device("cpu")).bf16 is (amx or avx512_bf16)
