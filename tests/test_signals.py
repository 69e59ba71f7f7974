"""SIGTERM and SIGINT through the real command in a subprocess.

During training a signal finishes the current step, writes a checkpoint, says how to resume and exits
128 + signal number; resuming then gives the records of an uninterrupted run. Outside the training
loop (loading data) Ctrl-C gives one line, no traceback, and leaves nothing behind.
(SIGINT during training with resume is in test_train_e2e.py.)
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import torch
import yaml

from gan_bench.run.files import read_jsonl
from conftest import cli, cli_env, records, sigint_as_in_a_terminal, tiny_overrides, write_npz



def _wait_for_records(out: Path, n: int, p: subprocess.Popen) -> Path:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and p.poll() is None:
        found = list(out.glob("*/*/metrics.jsonl"))
        if found and len(read_jsonl(found[0])) >= n:
            return found[0].parent
        time.sleep(0.02)
    raise AssertionError(f"no {n} records before the process ended: {p.communicate()}")


def test_sigterm_checkpoints_the_current_step_and_resumes_exactly(tmp_path: Path):
    npz = write_npz(tmp_path / "tiny.npz")
    # 40 epochs x 4 steps, checkpoints only at epoch ends: the one written on SIGTERM is the signal's own
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(tiny_overrides(npz, epochs=40, log_every=1, checkpoint_every=1000, device="cpu")))
    ref = subprocess.run(cli("run", str(cfg), "--out", str(tmp_path / "full")), env=cli_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    (full,) = (tmp_path / "full" / "t").iterdir()

    p = subprocess.Popen(cli("run", str(cfg), "--out", str(tmp_path / "cut")), env=cli_env(), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = _wait_for_records(tmp_path / "cut", 5, p)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, err
    assert err.strip() == f"gan-bench: interrupted; checkpoint saved. Resume with: gan-bench run --resume {run}"
    summary = json.loads((run / "summary.json").read_text())
    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    recs = records(run)
    # the step under way when the signal came was finished, logged and checkpointed
    assert summary["status"] == "interrupted" and summary["steps"] == ckpt["step"] == recs[-1][0] < 160

    r = subprocess.run(cli("run", "--resume", str(run)), env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert records(run) == records(full)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_ctrl_c_while_loading_data_is_one_line_and_leaves_nothing(tmp_path: Path):
    # The data file is a FIFO: the command blocks reading it, so the signal provably lands in setup.
    fifo = tmp_path / "data.npz"
    os.mkfifo(fifo)
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(tiny_overrides(fifo)))
    p = subprocess.Popen(cli("run", str(cfg), "--out", "res"), cwd=tmp_path, env=cli_env(), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=sigint_as_in_a_terminal)
    writer, deadline = None, time.monotonic() + 240
    while writer is None and time.monotonic() < deadline and p.poll() is None:
        try:  # succeeds only once the command has the FIFO open for reading
            writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            assert e.errno == errno.ENXIO
            time.sleep(0.02)
    assert writer is not None, p.communicate()
    try:
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    finally:
        os.close(writer)
    assert p.returncode == 130, err
    assert len(err.splitlines()) == 1 and err.startswith("gan-bench: interrupted") and "Traceback" not in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["data.npz", "t.yaml"]  # no run folder


def test_a_signal_inherited_as_ignored_stays_ignored(tmp_path: Path):
    """nohup, or a shell's background job, starts the command with SIGINT ignored so that a Ctrl-C at
    the terminal leaves it running: the trainer must not re-arm it (SIGTERM still stops it cleanly)."""
    npz = write_npz(tmp_path / "tiny.npz")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(tiny_overrides(npz, epochs=400, log_every=1, checkpoint_every=1000, device="cpu")))
    p = subprocess.Popen(cli("run", str(cfg), "--out", str(tmp_path / "res")), env=cli_env(), text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    run = _wait_for_records(tmp_path / "res", 3, p)
    p.send_signal(signal.SIGINT)
    seen = len(read_jsonl(run / "metrics.jsonl"))
    _wait_for_records(tmp_path / "res", seen + 5, p)  # still training after the Ctrl-C
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 143, err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"


def test_a_signal_after_the_last_step_leaves_the_run_completed(tmp_path: Path, monkeypatch):
    """A SIGTERM while the last grids, GIFs and summary are written (under torchrun: the one sent when
    a peer exits first) lets them finish: the run is complete, says so, and train() returns it."""
    from gan_bench.config import build_config
    from gan_bench.train import loop

    finish = loop.finish

    def signalled(*args, **kwargs):
        signal.raise_signal(signal.SIGTERM)
        return finish(*args, **kwargs)

    monkeypatch.setattr(loop, "finish", signalled)
    over = tiny_overrides(write_npz(tmp_path / "tiny.npz"), epochs=1, device="cpu")
    run = loop.train(build_config([over, {"out": str(tmp_path / "out")}], name="t"))
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["status"], summary["steps"]) == ("completed", summary["total_steps"])
    assert list((run / "gifs").glob("*.gif"))
