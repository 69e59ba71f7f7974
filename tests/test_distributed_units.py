"""The pieces of multi-process training that need no second process: batch shards, the global random
draws, the layer conversions, the one-process world, and `gan-bench suite --gpus` scheduling.
(Two processes under torchrun: tests/test_distributed.py.)"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from gan_bench.config import build_config
from gan_bench.data.base import Splits
from gan_bench.run.world import World
from gan_bench.train.plan import make_plan
from gan_bench import suite as S
from gan_bench.run import RunFolder
from gan_bench.suite import executor
from gan_bench.cli import main
from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec, ImageData
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.models import build_model
from gan_bench.train import distributed as D
from gan_bench.run import world as W
from gan_bench.train.batches import BatchSource
from gan_bench.train.step import noisy
from conftest import tiny_overrides

SPEC = DataSpec("s", 28, 1, 3, ["a", "b", "c"])


def _data(n_per_class: int = 8) -> ImageData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (3 * n_per_class, 1, 28, 28), dtype=torch.uint8, generator=g)
    return ImageData(x, torch.arange(3).repeat_interleave(n_per_class), SPEC.classes)


@pytest.mark.parametrize("per_class", [False, True])
def test_rank_shards_are_disjoint_and_make_up_the_global_batch(per_class: bool):
    data = _data()
    source = lambda rank, ranks: BatchSource(data, batch_size=4, seed=1, per_class=per_class,  # noqa: E731
                                             device=torch.device("cpu"), rank=rank, ranks=ranks)
    one, shards = source(0, 1), [source(r, 2) for r in range(2)]
    assert one.steps_per_epoch == shards[0].steps_per_epoch  # the config's batch is the global one
    for i in range(one.steps_per_epoch):
        x, y = one.batch(1, i)
        parts = [s.batch(1, i) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
        if per_class:  # whole groups of K, class-fastest, as classdcgan needs
            assert all(torch.equal(p[1], torch.arange(3).repeat(len(p[1]) // 3)) for p in parts)


def test_a_global_batch_that_does_not_split_is_a_config_error():
    """The run plan, resolved for 4 processes, refuses a global batch of 10 before anything is built."""
    data = Splits("s", _data(), _data())
    plan = make_plan(build_config([{"data": {"name": "npz"}, "model": {"name": "convdcgan", "width": 4, "nz": 8},
                                    "train": {"batch_size": 10}}]))
    with pytest.raises(ConfigError, match=r"train.batch_size is the global batch \(10\).*multiple of 4"):
        plan.resolve(data, device=torch.device("cpu"), world=World(rank=0, size=4))
    plan.resolve(data, device=torch.device("cpu"), world=World(rank=0, size=5))  # 10 splits among 5


def test_each_rank_draws_its_rows_of_the_global_noise():
    x = torch.zeros(8, 1, 4, 4)
    torch.manual_seed(3)
    whole = noisy(x, 0.5)
    after_one = torch.rand(1)
    for rank in range(2):
        torch.manual_seed(3)
        assert torch.equal(noisy(x[4 * rank:4 * rank + 4], 0.5, rank=rank, ranks=2), whole[4 * rank:4 * rank + 4])
        assert torch.equal(torch.rand(1), after_one)  # the RNG moves on as in one process


def test_global_dropout_keeps_the_rows_of_one_process_mask():
    torch.manual_seed(5)
    whole = F.dropout(torch.ones(6, 10), 0.4, True)
    after_one = torch.rand(1)
    torch.manual_seed(5)
    drop = D.GlobalDropout(0.4, rank=1, ranks=2)
    assert torch.equal(drop(torch.ones(3, 10)), whole[3:])
    assert torch.equal(torch.rand(1), after_one)


def test_layer_conversions_keep_parameters_and_state_dict_keys():
    gan = build_model(ModelConfig(name="mlpgan", width=2, nz=4), SPEC)
    D.GlobalDropout.convert(gan, W.World(1, 2))
    assert not [m for m in gan.modules() if type(m) is torch.nn.Dropout]
    gan = build_model(ModelConfig(name="cdcgan", width=4, nz=8), SPEC)
    keys, params = list(gan.state_dict()), list(gan.parameters())
    x, z, y = torch.rand(6, 1, 28, 28), torch.randn(6, 8), torch.arange(3).repeat(2)
    before = gan.D(x, y), gan.G(z, y)
    D.GlobalBatchNorm.convert(gan)
    assert sum(isinstance(m, D.GlobalBatchNorm) for m in gan.modules()) == 4
    assert list(gan.state_dict()) == keys  # checkpoints load either way
    assert all(a is b for a, b in zip(gan.parameters(), params))  # the optimiser's tensors
    after = gan.D(x, y), gan.G(z, y)  # no process group: plain BatchNorm
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_global_batchnorm_statistics_are_float32_under_bf16(monkeypatch):
    """Two ranks holding the same bf16 shard (the all-reduce doubles every sum): the statistics are
    those of the float32 batch, not bf16-rounded sums, and the output keeps the input's dtype."""
    monkeypatch.setattr(D.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(D.dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(D._AllReduce, "apply", lambda t: t * 2)
    x = (torch.randn(3, 4, 11, 13) * 3 + 5).bfloat16()  # 429 values a channel: not a bf16 number
    bn, ref = D.GlobalBatchNorm(4, momentum=1.0), torch.nn.BatchNorm2d(4, momentum=1.0)
    y, want = bn(x), ref(torch.cat([x, x]).float())[:len(x)]  # BatchNorm of the global batch
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(bn.running_mean, ref.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(bn.running_var, ref.running_var, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(y.float(), want, rtol=1e-2, atol=1e-2)  # bf16 output rounding


def test_one_process_world_changes_nothing():
    w = W.World.current()
    assert w == W.World() and w.is_main and not w.distributed
    assert w.broadcast("x") == "x" and w.on_main(lambda: 3) == 3 and w.agree(False, True) == (False, True)
    assert w.map_chunks(lambda c: c * 2, [1, 2, 3]) == [2, 4, 6]
    gan = build_model(ModelConfig(name="cdcgan", width=4, nz=8), SPEC)
    assert D.data_parallel(gan, w, sync_bn=True) is gan
    with W.joined(torch.device("cpu")) as (world, device):
        assert world == W.World() and device == torch.device("cpu")


def test_distributed_settings_are_checked(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv(W.TIMEOUT_ENV, "soon")
    with pytest.raises(GanBenchError, match=f"{W.TIMEOUT_ENV}='soon': expected a number of seconds"):
        with W.joined(torch.device("cpu")):
            pass
    with pytest.raises(ConfigError, match="train.sync_bn: expected bool"):
        build_config([{"train": {"sync_bn": "yes"}}])
    assert W.peer_lost(RuntimeError("[pair.cc:561] Connection closed by peer [127.0.0.1]:1234. GLHF"))
    assert not W.peer_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))


# ---- gan-bench suite --gpus ----------------------------------------------------------------------

FAKE_CHILD = '''
import json, os, sys, time

def child(cfg, job, ev, threads):
    start = time.time()
    time.sleep(0.2)
    with open(job[0] + ".json", "w") as f:
        json.dump({"gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "start": start, "end": time.time()}, f)
    sys.exit(0)
'''


def test_suite_children_see_only_their_gpu(tmp_path: Path, monkeypatch):
    """Three runs over GPUs 3 and 5: each child starts with CUDA_VISIBLE_DEVICES of a free GPU, and
    runs at the same time never share one. (A stand-in child: no GPU is needed.)"""
    (tmp_path / "fake_child.py").write_text(FAKE_CHILD)
    monkeypatch.syspath_prepend(str(tmp_path))  # spawned children get this sys.path
    import fake_child

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    cfg = build_config([tiny_overrides(tmp_path / "x.npz")])
    jobs = [S.Job(cfg, RunFolder(tmp_path / f"r{i}"), "run") for i in range(3)]
    said: list[str] = []
    assert executor._parallel(jobs, None, 2, said.append, gpus=["3", "5"], target=fake_child.child) == ["completed"] * 3
    seen = [json.loads((tmp_path / f"r{i}.json").read_text()) for i in range(3)]
    assert {s["gpu"] for s in seen} == {"3", "5"} and sum("GPU " in line for line in said) == 3
    for a in seen:
        for b in seen:
            if a is not b and a["start"] < b["end"] and b["start"] < a["end"]:
                assert a["gpu"] != b["gpu"]
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_gpus_argument_errors_are_one_line(tmp_path: Path, capsys, monkeypatch):
    assert S.parse_gpus("0, 1,2") == ["0", "1", "2"]
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({"name": "s", "runs": ["c.yaml"]}))
    for arg, words in (("0,0", "expected distinct GPU indices"), ("a", "expected distinct GPU indices")):
        assert main(["suite", str(suite), "--gpus", arg]) == 2
        assert words in capsys.readouterr().err
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(GanBenchError, match="no CUDA GPU is visible"):
        S.visible_gpus(["0"])
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(GanBenchError, match="there is no GPU 2; this machine shows 2"):
        S.visible_gpus(["0", "2"])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")  # numbered from 0 by this process, as torch does
    assert S.visible_gpus(["1", "0"]) == ["6", "4"]
