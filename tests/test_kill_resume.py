"""kill -9 at random moments, then `--resume`, several times: the run ends with exactly the records of
an uninterrupted run (CPU, same seed), no checkpoint is ever half-written, every metrics.jsonl line
parses, and no temporary file is left behind.

Policy when a kill lands before the first checkpoint exists: `--resume` refuses with one clear line
(exit 2, "no checkpoint"), and the run is started again from scratch, as that message says.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml

from gan_bench.run.files import read_jsonl, remove_stale_temp_files
from conftest import cli, cli_env, records, tiny_overrides, write_npz

TOTAL = 80          # 20 epochs x 4 steps
KILLS = 4           # kill-and-resume cycles (a kill before the first checkpoint does not count)


def _n_records(out: Path) -> tuple[Path | None, int]:
    runs = sorted(out.glob("t/*"))  # stamps, then -1, -2 within one second: the last is the newest
    if not runs:
        return None, 0
    return runs[-1], len(read_jsonl(runs[-1] / "metrics.jsonl"))


def _temp_files(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if ".tmp" in p.name]


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted_run(tmp_path: Path):
    npz = write_npz(tmp_path / "tiny.npz")
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(tiny_overrides(npz, epochs=20, log_every=1, checkpoint_every=3, device="cpu")))
    ref = subprocess.run(cli("run", str(cfg), "--out", str(tmp_path / "full")), env=cli_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    (full,) = (tmp_path / "full" / "t").iterdir()
    assert len(records(full)) == TOTAL

    rng = random.Random(20240607)
    out = tmp_path / "cut"
    run, kills, starts = None, 0, 0
    while kills < KILLS and starts < 3 * KILLS:
        resume = run is not None and (run / "checkpoints" / "last.pt").exists()
        if run is not None and not resume:  # killed before its first checkpoint: --resume says so
            r = subprocess.run(cli("run", "--resume", str(run)), env=cli_env(), capture_output=True, text=True,
                               timeout=300)
            assert r.returncode == 2 and "no checkpoint" in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr
        done = _n_records(out)[1] if resume else 0
        if done > TOTAL - 30:
            break  # too close to the end to land a kill inside training
        target = done + rng.randint(1, 6)
        p = subprocess.Popen(cli("run", "--resume", str(run)) if resume else cli("run", str(cfg), "--out", str(out)),
                             env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        starts += 1
        deadline = time.monotonic() + 240
        while p.poll() is None and time.monotonic() < deadline and _n_records(out)[1] < target:
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.03))  # anywhere: inside a step, a checkpoint write, a sample
        p.kill()
        p.communicate(timeout=60)
        assert p.returncode == -9, "the run ended before the kill; make it longer"
        run = _n_records(out)[0]
        # what kill -9 leaves: every line a reader sees parses, and the checkpoint is whole
        assert all(isinstance(r, dict) for r in read_jsonl(run / "metrics.jsonl"))
        if (run / "checkpoints" / "last.pt").exists():
            ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
            assert 0 < ckpt["step"] <= TOTAL
            kills += 1

    assert kills >= 3, f"only {kills} kills after a checkpoint in {starts} starts"
    r = subprocess.run(cli("run", "--resume", str(run)), env=cli_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert records(run) == records(full)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == TOTAL and all(json.loads(line) for line in lines)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert not _temp_files(run)


def test_only_temp_files_of_dead_writers_are_removed(tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # a process that has exited: its temporary files are what kill -9 leaves
    for sub in ("checkpoints", "samples"):
        (tmp_path / sub).mkdir()
    stale = [tmp_path / "checkpoints" / f".last.pt.tmp-{pid}", tmp_path / "samples" / f".epoch_0001.png.tmp-{pid}.png"]
    live = [tmp_path / f".summary.json.tmp-{os.getpid()}", tmp_path / "checkpoints" / ".best.pt.tmp"]
    for p in stale + live:
        p.write_bytes(b"partial")
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in live) and not any(p.exists() for p in stale)
