"""Two processes started by torchrun on the CPU (gloo), against one process running the same config.

Tolerance (RTOL, ATOL below): with train.sync_bn and train.fast=false (the float32 step) the
two-process run computes the single-process step, but in another order of float32 reductions: the
loss is the mean of two shard means instead of one mean, DDP sums the two shards' gradients by all-reduce, and BatchNorm statistics come from
all-reduced partial sums. Those differ by rounding, ~1e-7 relative here after 12 steps. A real
mismatch (per-shard BatchNorm, another rank's noise rows, a wrong shard) shows up as 1e-3 to 1e-1.
rtol 1e-5 / atol 1e-6 sits two orders of magnitude from both. Records and weights are compared that
way; the sharded evaluation is compared exactly (each chunk is computed as one process computes it).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import gan_bench.train.loop as loop
from gan_bench.config import build_config
from gan_bench.metrics.evaluate import eval_run
from gan_bench.run.files import read_jsonl
from gan_bench.run import RunFolder
from gan_bench.run.sampling import load_generator
from gan_bench.run.checkpoint import load_checkpoint
from gan_bench.errors import Interrupted
from gan_bench.train.loop import train
from conftest import cli_env, tiny_overrides, write_npz

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not built")

RTOL, ATOL = 1e-5, 1e-6
RECORD = ("loss_d", "loss_g", "d_x", "d_g_z")
STABILISERS = {"instance_noise": 0.1, "real_label_range": [0.8, 1.0], "label_flip": 0.2}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--standalone"]
METRICS = "kid,precision,recall,cond_acc"

# torchrun runs a script: this one stops the trainer after STOP_AFTER steps with a SIGTERM on rank 1
# alone, as if one process got a signal, so every rank must agree to stop at that same step
STOP_HELPER = """
import os, signal, sys
import gan_bench.train.loop as loop
from gan_bench.cli import main

step, calls = loop.gan_step, [0]
def counted(*args, **kwargs):
    out = step(*args, **kwargs)
    calls[0] += 1
    if calls[0] == int(os.environ["STOP_AFTER"]) and os.environ["RANK"] == "1":
        signal.raise_signal(signal.SIGTERM)
    return out
loop.gan_step = counted
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def one_thread():
    """Subprocesses run with OMP_NUM_THREADS=1; so does this process, for equal float results."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, one_thread) -> dict:
    """A config of 2 epochs x 6 steps of 8 images (54 training images, 6 test), and its one-process run."""
    tmp = tmp_path_factory.mktemp("dist")
    npz = write_npz(tmp / "tiny.npz", n_per_class=20)
    over = tiny_overrides(npz, epochs=2, log_every=1, checkpoint_every=100, sync_bn=True, device="cpu",
                          fast=False, **STABILISERS)  # float32: bf16 (AMX CPUs) rounds each shard's sums
    over["data"]["root"] = str(tmp / "datasets")
    cfg_file = tmp / "t.yaml"
    cfg_file.write_text(yaml.safe_dump(over))
    cfg = build_config([over, {"out": str(tmp / "one")}], name="t")
    return {"tmp": tmp, "over": over, "cfg_file": cfg_file, "cfg": cfg, "reference": train(cfg)}


def _env(**extra: str) -> dict:
    return {**cli_env(), "GAN_BENCH_DIST_TIMEOUT": "60", **extra}


def _only_run(out: Path, name: str = "t") -> Path:
    runs = list(out.glob(f"{name}/*"))
    assert len(runs) == 1, runs  # rank 0 alone made a run folder
    return runs[0]


def assert_records_close(run: Path, reference: Path) -> None:
    got, want = read_jsonl(run / "metrics.jsonl"), read_jsonl(reference / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want):
        for k in RECORD:
            assert g[k] == pytest.approx(w[k], rel=RTOL, abs=ATOL), (g["step"], k, g[k], w[k])


def assert_weights_close(run: Path, reference: Path, parts: tuple[str, ...] = ("G", "D")) -> None:
    got, want = (torch.load(r / "checkpoints" / "last.pt", weights_only=False) for r in (run, reference))
    assert got["step"] == want["step"]
    for part in parts:  # parameters and BatchNorm buffers (num_batches_tracked exactly)
        assert got[part].keys() == want[part].keys()
        for k in got[part]:
            torch.testing.assert_close(got[part][k], want[part][k], rtol=RTOL, atol=ATOL, msg=f"{part}.{k}")


def test_two_processes_match_one_process(setup: dict):
    out = setup["tmp"] / "two"
    r = subprocess.run(TORCHRUN + ["-m", "gan_bench", "run", str(setup["cfg_file"]), "--out", str(out)],
                       env=_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    run = _only_run(out)
    assert r.stdout.count("run finished") == 1  # rank 1 prints nothing but errors
    assert_records_close(run, setup["reference"])
    assert_weights_close(run, setup["reference"])
    # the one folder holds what a single-process run writes, and its checkpoint loads in one process
    files = [sorted(p.relative_to(r).as_posix() for p in r.rglob("*") if p.name != "eval.jsonl")
             for r in (run, setup["reference"])]
    assert files[0] == files[1]
    summary = yaml.safe_load((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["processes"] == 2 and summary["images_seen"] == 12 * 8
    assert load_generator(RunFolder(run))[0].spec.classes == ["a", "b", "c"]


def test_two_processes_match_one_process_with_the_training_levers(setup: dict):
    """DiffAugment's draws, the loss, spectral norm's power iterations and G's average under torchrun."""
    over = {**setup["over"], "model": {**setup["over"]["model"], "spectral_norm": True},
            "train": {**setup["over"]["train"], "epochs": 1, "loss": "lsgan", "diffaug": "color,translation,cutout",
                      "ema": 0.9}}
    cfg_file = setup["tmp"] / "levers.yaml"
    cfg_file.write_text(yaml.safe_dump(over))
    reference = train(build_config([over, {"out": str(setup["tmp"] / "levers_one")}], name="levers"))
    out = setup["tmp"] / "levers_two"
    r = subprocess.run(TORCHRUN + ["-m", "gan_bench", "run", str(cfg_file), "--out", str(out)],
                       env=_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    run = _only_run(out, "levers")
    assert_records_close(run, reference)
    assert_weights_close(run, reference, parts=("G", "D", "G_ema"))


def test_resume_across_process_counts(setup: dict, monkeypatch):
    # one process, stopped by a signal after step 3 ...
    calls, step = [0], loop.gan_step

    def counted(*args, **kwargs):
        out = step(*args, **kwargs)
        calls[0] += 1
        if calls[0] == 3:
            signal.raise_signal(signal.SIGTERM)
        return out

    monkeypatch.setattr(loop, "gan_step", counted)
    with pytest.raises(Interrupted) as stopped:
        train(build_config([setup["over"], {"out": str(setup["tmp"] / "cut")}], name="t"))
    monkeypatch.setattr(loop, "gan_step", step)
    run = stopped.value.run_dir
    # ... resumed by two processes, one of which gets a signal after 4 more steps (step 7) ...
    helper = setup["tmp"] / "stop_helper.py"
    helper.write_text(STOP_HELPER)
    r = subprocess.run(TORCHRUN + [str(helper), "run", "--resume", str(run)], env=_env(STOP_AFTER="4"),
                       capture_output=True, text=True, timeout=180)
    assert r.returncode != 0 and "interrupted; checkpoint saved" in r.stderr, r.stderr[-3000:]
    assert load_checkpoint(run / "checkpoints" / "last.pt", config_hash=setup["cfg"].hash())["step"] == 7
    assert [rec["step"] for rec in read_jsonl(run / "metrics.jsonl")] == list(range(1, 8))
    # ... and finished by one process: the records and weights of the uninterrupted run
    assert train(setup["cfg"], resume=run) == run
    assert_records_close(run, setup["reference"])
    assert_weights_close(run, setup["reference"])


def test_sharded_evaluation_equals_one_process(setup: dict):
    run, nets = setup["reference"], setup["tmp"] / "nets"
    # one process first (it also trains and caches the evaluation network the ranks then load)
    one = eval_run(run, metrics=METRICS.split(","), samples=600, device="cpu", cache_dir=nets, log=lambda _: None)
    # 600 images: 2 chunks of generated images and of features, one per rank
    r = subprocess.run(TORCHRUN + ["-m", "gan_bench", "eval", str(run), "--metrics", METRICS, "--samples", "600",
                                   "--device", "cpu", "--cache-dir", str(nets)],
                       env=_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = read_jsonl(run / "eval.jsonl")
    assert len(lines) == 2 * len(one)  # rank 0 alone appended
    assert lines[len(one):] == one


@pytest.mark.skipif(sys.platform != "linux", reason="finds rank 1's process in /proc")
def test_a_dead_rank_fails_the_job_instead_of_hanging(setup: dict):
    long = {**setup["over"], "train": {**setup["over"]["train"], "epochs": 1000, "checkpoint_every": 2}}
    cfg_file = setup["tmp"] / "long.yaml"
    cfg_file.write_text(yaml.safe_dump(long))
    out = setup["tmp"] / "dead"
    p = subprocess.Popen(TORCHRUN + ["-m", "gan_bench", "run", str(cfg_file), "--out", str(out)], env=_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while p.poll() is None and time.monotonic() < deadline:
            runs = list(out.glob("long/*/checkpoints/last.pt"))
            if runs and len(read_jsonl(runs[0].parents[1] / "metrics.jsonl")) >= 3:
                break
            time.sleep(0.05)
        assert p.poll() is None, p.communicate()[1][-3000:]
        os.kill(_rank_pid(p.pid, 1), signal.SIGKILL)  # as the OOM killer would
        _, err = p.communicate(timeout=60)  # the test's timeout: a hang fails here
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0
    assert "gan-bench: error: rank 0: another process of this torchrun job died" in err, err[-3000:]
    run = _only_run(out, "long")
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt", config_hash=build_config([long], name="long").hash())
    assert ckpt["step"] >= 2 and not (run / "summary.json").exists()  # resumable, not marked finished


def _rank_pid(launcher: int, rank: int) -> int:
    """The pid of the torchrun worker of this rank (a child of the launcher with RANK=rank)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            env = (stat.parent / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == launcher and f"RANK={rank}".encode() in env:
            return int(stat.parent.name)
    raise AssertionError(f"no rank {rank} under torchrun pid {launcher}")
