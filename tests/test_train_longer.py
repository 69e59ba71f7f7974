"""`gan-bench run --resume RUN --set train.epochs=N`: a complete run trained longer equals one trained
that long from the start, bit for bit on a CPU (records, snapshots, every tensor of the final
checkpoint), and a --set that is not a larger budget is refused with one line and nothing changed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.run.files import read_jsonl
from gan_bench.train.loop import train
from conftest import assert_same_samples, assert_same_weights, records_without_timing, tiny_overrides

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cfg(npz: Path, out: Path, epochs: int):
    # the G average (its ramp reads the steps taken, not the total) and the matching-aware D, on
    over = tiny_overrides(npz, "cdcgan", epochs=epochs, log_every=1, checkpoint_every=4, ema=0.9, mismatch=0.5)
    return build_config([over, {"out": str(out)}], name="t")


def _files(run: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


def test_a_complete_run_trained_longer_equals_one_trained_that_long(tmp_path: Path, tiny_npz: Path, capsys):
    full = train(_cfg(tiny_npz, tmp_path / "full", epochs=4))
    short = train(_cfg(tiny_npz, tmp_path / "short", epochs=2))
    steps_short = json.loads((short / "summary.json").read_text())["steps"]

    assert main(["run", "--resume", str(short), "--set", "train.epochs=4"]) == 0
    assert capsys.readouterr().err == ""
    a, b = (json.loads((r / "summary.json").read_text()) for r in (full, short))
    assert b["status"] == "completed" and b["steps"] == a["steps"] == 2 * steps_short
    assert b["config_hash"] == a["config_hash"]  # the longer run is the run of the longer config
    assert yaml.safe_load((short / "config.yaml").read_text())["train"]["epochs"] == 4
    assert records_without_timing(short) == records_without_timing(full)
    assert_same_samples(full, short, frames=4)
    ca, cb = (torch.load(r / "checkpoints" / "last.pt", weights_only=False) for r in (full, short))
    assert_same_weights(ca, cb, ("G", "D", "G_ema"))
    events = read_jsonl(short / "events.jsonl")
    assert [(e["event"], e["step"]) for e in events] == [("budget", steps_short)]
    assert "train.epochs=2" in events[0]["message"] and "train.epochs=4" in events[0]["message"]


def test_a_resume_that_is_not_a_larger_budget_changes_nothing(tmp_path: Path, tiny_npz: Path, capsys):
    run = train(_cfg(tiny_npz, tmp_path / "r", epochs=2))
    before = _files(run)
    for bad, says in [(["--set", "model.width=8"], "only its budget may change"),
                      (["--set", "train.epochs=1"], "the run has trained"),
                      (["--set", "train.max_steps=0"], "train.max_steps"),
                      (["--set", "train.epochs"], "KEY=VALUE"),
                      ([str(run / "config.yaml"), "--set", "train.epochs=3"], "drop the config file")]:
        assert main(["run", "--resume", str(run), *bad]) == 2, bad
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err and "Traceback" not in err, (bad, err)
        assert _files(run) == before, bad
    assert main(["run", "--resume", str(run), "--set", "train.epochs=3", "--dry-run"]) == 0
    assert "epochs: 3" in capsys.readouterr().out and _files(run) == before
