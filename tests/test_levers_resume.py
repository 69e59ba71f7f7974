"""With the training levers on (losses, DiffAugment, spectral norm, projection D, matching-aware D, G's weight average,
TTUR and the seeds' stabilisers), a run stopped by a signal and resumed equals the uninterrupted run
bit for bit on a CPU: records, snapshots and every tensor of the final checkpoint. And gan_step with
them is still exactly the trainer's step."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch

from gan_bench.config import build_config
from gan_bench.errors import Interrupted
from gan_bench.run.files import read_jsonl
from gan_bench.train import loop as loop_module
from gan_bench.train.loop import train
from gan_bench.train.setup import build
from gan_bench.train.step import gan_step
from conftest import assert_same_samples, assert_same_weights, records_without_timing, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")

STOP_AT = 6  # stopped at step 5 or 6: mid-epoch, off the checkpoints every 4 steps
CASES = {
    "ema, mismatch": ("cdcgan", {"ema": 0.9, "mismatch": 0.5}, {}),
    "hinge, diffaug, SN, projection": (
        "cdcgan", {"loss": "hinge", "diffaug": "color,translation,cutout", "label_flip": 0.1},
        {"spectral_norm": True, "d_label": "projection"}),
    "lsgan, TTUR, stabilisers, diffaug, ema": (
        "cdcgan", {"loss": "lsgan", "lr_d": 4e-4, "lr_g": 1e-4, "instance_noise": 0.1, "instance_noise_steps": 10,
                   "real_label_range": [0.8, 1.0], "label_flip": 0.05, "diffaug": "translation,cutout", "ema": 0.99},
        {}),
    "classdcgan: SN, diffaug, ema": ("classdcgan", {"diffaug": "color", "ema": 0.9}, {"spectral_norm": True}),
}


def _cfg(npz: Path, out: Path, model: str, train_keys: dict, model_keys: dict):
    over = tiny_overrides(npz, model, epochs=4, log_every=1, checkpoint_every=4, **train_keys)
    over["model"].update(model_keys)
    return build_config([over, {"out": str(out)}], name="t")


def _stopped_at(step: int, monkeypatch) -> None:
    """The trainer's step raises SIGTERM after its `step`-th call, as a scheduler would (not SIGINT: a
    background job, nohup or `&` in a script, inherits SIGINT ignored, and the trainer keeps it so)."""
    calls = []

    def stepping(*args, **kwargs):
        out = gan_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == step:
            signal.raise_signal(signal.SIGTERM)
        return out

    monkeypatch.setattr(loop_module, "gan_step", stepping)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("stop", [STOP_AT - 1, STOP_AT])
def test_resume_equals_uninterrupted(tmp_path: Path, tiny_npz: Path, monkeypatch, case: str, stop: int):
    model, train_keys, model_keys = CASES[case]
    full = train(_cfg(tiny_npz, tmp_path / "full", model, train_keys, model_keys))

    _stopped_at(stop, monkeypatch)
    with pytest.raises(Interrupted) as info:
        train(_cfg(tiny_npz, tmp_path / "cut", model, train_keys, model_keys))
    monkeypatch.setattr(loop_module, "gan_step", gan_step)
    cut = info.value.run_dir
    assert len(read_jsonl(cut / "metrics.jsonl")) == stop
    assert train(_cfg(tiny_npz, tmp_path / "cut", model, train_keys, model_keys), resume=cut) == cut

    assert records_without_timing(cut) == records_without_timing(full) and len(records_without_timing(full)) > stop
    assert_same_samples(full, cut, frames=4)
    a, b = (torch.load(r / "checkpoints" / "last.pt", weights_only=False) for r in (full, cut))
    parts = [k for k in ("G", "D", "G_ema") if k in a]
    assert ("G_ema" in parts) == ("ema" in train_keys) and parts == [k for k in ("G", "D", "G_ema") if k in b]
    assert_same_weights(a, b, parts)
    for opt in ("opt_g", "opt_d"):
        for s, t in zip(a[opt]["state"].values(), b[opt]["state"].values()):
            assert all(torch.equal(s[k], t[k]) for k in s)


@pytest.mark.parametrize("case", list(CASES))
def test_gan_step_with_levers_is_the_trainers_step(tmp_path: Path, tiny_npz: Path, case: str):
    model, train_keys, model_keys = CASES[case]
    over = tiny_overrides(tiny_npz, model, max_steps=1, **train_keys)
    over["model"].update(model_keys)
    cfg = build_config([over, {"out": str(tmp_path)}], name="t")
    run = train(cfg)
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=False)

    t = build(cfg, device=torch.device("cpu"), folder=False)
    x, y = t.source.batch(0, 0)
    t.gan.train()
    gan_step(t.plan.recipe, t.gan, t.opt_d, t.opt_g, t.speed.input(x), y)
    for part, module in (("G", t.gan.G), ("D", t.gan.D)):
        mine = module.state_dict()
        assert mine.keys() == saved[part].keys()
        assert all(torch.equal(mine[k], saved[part][k]) for k in mine), f"{part}: gan_step drifted from the loop"
