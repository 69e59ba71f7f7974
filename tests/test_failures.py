"""Failures during a run: a NaN loss, a full disk while writing a checkpoint or a sample, two runs
pointed at the same output folder, a torn last line in metrics.jsonl. Nothing already written is lost,
and the command says what happened in one line."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from gan_bench.run import RunFolder
from gan_bench.run import files as rf
from gan_bench.cli import main
from gan_bench.train.batches import BatchSource
from conftest import cli, cli_env, records, tiny_overrides, write_npz



def _config(tmp: Path, **train_over) -> str:
    npz = write_npz(tmp / "tiny.npz")  # 33 training images, batch 8: 4 steps per epoch
    path = tmp / "t.yaml"
    path.write_text(yaml.safe_dump(tiny_overrides(npz, **train_over)))
    return str(path)


def _run_folder(out: Path) -> Path:
    (run,) = (out / "t").iterdir()
    return run


def _temp_files(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if ".tmp-" in p.name or ".part-" in p.name]


def _finite_checkpoint(run: Path) -> dict:
    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    for part in ("G", "D"):
        assert all(torch.isfinite(t).all() for t in ckpt[part].values() if t.is_floating_point())
    return ckpt


def _one_line(err: str, start: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(start) and "Traceback" not in err, err
    return lines[0]


# ---- NaN / Inf ------------------------------------------------------------------------------

def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    cfg = _config(tmp_path, epochs=3, log_every=1, checkpoint_every=2)
    real_batch, calls = BatchSource.batch, []

    def poisoned(self, epoch, i):  # the 6th batch is NaN, as a corrupt input pipeline would give
        x, y = real_batch(self, epoch, i)
        calls.append(1)
        return (x * float("nan") if len(calls) == 6 else x), y

    monkeypatch.setattr(BatchSource, "batch", poisoned)
    status = main(["run", cfg, "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert status == 1
    line = _one_line(err, "gan-bench: failed: ")
    assert "non-finite loss at step 6" in line and "last good checkpoint" in line
    run = _run_folder(tmp_path / "res")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite loss at step 6" in summary["reason"]
    assert summary["steps"] == 6
    assert _finite_checkpoint(run)["step"] == 4  # checkpoints at 2 and 4; step 6 is never saved
    recs = records(run)
    assert [r[0] for r in recs] == [1, 2, 3, 4, 5]  # the NaN record is not written
    assert not _temp_files(run)


def test_nan_at_the_first_step_fails_without_a_checkpoint(tmp_path, capsys):
    cfg = _config(tmp_path, log_every=1, checkpoint_every=1, lr_d=1e30, lr_g=1e30)
    status = main(["run", cfg, "--out", str(tmp_path / "res")])
    err = capsys.readouterr().err
    assert status == 1
    _one_line(err, "gan-bench: failed: ")
    run = _run_folder(tmp_path / "res")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and "non-finite" in summary["reason"]
    # nothing non-finite was ever checkpointed; a later --resume says there is no checkpoint
    assert not (run / "checkpoints" / "last.pt").exists()


def test_failure_before_any_checkpoint_does_not_claim_one(tmp_path, capsys):
    cfg = _config(tmp_path, log_every=1, checkpoint_every=1, lr_d=1e30, lr_g=1e30)
    assert main(["run", cfg, "--out", str(tmp_path / "res")]) == 1
    assert not (_run_folder(tmp_path / "res") / "checkpoints" / "last.pt").exists()
    assert "last good checkpoint is kept" not in capsys.readouterr().err


# ---- out of GPU memory ----------------------------------------------------------------------

def test_running_out_of_gpu_memory_is_one_line_with_the_fix_and_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    import gan_bench.train.loop as loop

    cfg = _config(tmp_path, log_every=1, checkpoint_every=3)
    real_step, calls = loop.gan_step, []

    def step_until_oom(*a, **k):  # what a GPU does when a step needs more memory than it has left
        calls.append(1)
        if len(calls) == 5:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_step(*a, **k)

    monkeypatch.setattr(loop, "gan_step", step_until_oom)
    status = main(["run", cfg, "--out", str(tmp_path / "res")])
    line = _one_line(capsys.readouterr().err, "gan-bench: failed: ")
    assert status == 1
    assert "out of GPU memory at step 5 (batch 8, 28x28, model width 4)" in line
    assert "lower train.batch_size or model.width" in line and "last good checkpoint is kept" in line
    run = _run_folder(tmp_path / "res")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"].startswith("out of GPU memory at step 5")
    assert _finite_checkpoint(run)["step"] == 4 and [r[0] for r in records(run)] == [1, 2, 3, 4]
    assert not _temp_files(run)


# ---- a full disk ----------------------------------------------------------------------------

def _no_space(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _reference(tmp: Path, cfg: str) -> list[tuple]:
    assert main(["run", cfg, "--out", str(tmp / "full")]) == 0
    return records(_run_folder(tmp / "full"))


def test_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch, capsys):
    cfg = _config(tmp_path, log_every=1, checkpoint_every=3)  # checkpoints at 3, 4 (epoch end), 6, 8
    full = _reference(tmp_path, cfg)
    real_save, saves = torch.save, []

    def save_until_full(obj, f, *a, **k):
        saves.append(1)
        if len(saves) == 2:  # half a checkpoint reaches the disk, then it is full
            f.write(b"PK\x03\x04 half a checkpoint")
            _no_space()
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_until_full)
    capsys.readouterr()
    status = main(["run", cfg, "--out", str(tmp_path / "res")])
    line = _one_line(capsys.readouterr().err, "gan-bench: error: ")
    assert status == 2
    assert "could not write checkpoint" in line and "No space left on device" in line
    assert "previous checkpoint is intact" in line and "--resume" in line
    run = _run_folder(tmp_path / "res")
    assert _finite_checkpoint(run)["step"] == 3
    assert not _temp_files(run)

    monkeypatch.setattr(torch, "save", real_save)  # space freed: the run resumes and ends as if never stopped
    assert main(["run", "--resume", str(run)]) == 0
    assert records(run) == full


def test_full_disk_while_writing_a_sample_keeps_the_checkpoint(tmp_path, monkeypatch, capsys):
    cfg = _config(tmp_path, log_every=1, checkpoint_every=3)  # sample at step 4 comes before its checkpoint
    real_save = Image.Image.save

    def save_until_full(self, fp, *a, **k):
        Path(fp).write_bytes(b"\x89PNG half an image")
        _no_space()

    monkeypatch.setattr(Image.Image, "save", save_until_full)
    status = main(["run", cfg, "--out", str(tmp_path / "res")])
    line = _one_line(capsys.readouterr().err, "gan-bench: error: ")
    assert status == 2
    assert "epoch_0001.png" in line and "No space left on device" in line and "intact" in line and "--resume" in line
    run = _run_folder(tmp_path / "res")
    assert _finite_checkpoint(run)["step"] == 3
    assert not (run / "samples" / "epoch_0001.png").exists() and not _temp_files(run)

    monkeypatch.setattr(Image.Image, "save", real_save)
    assert main(["run", "--resume", str(run)]) == 0
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert len(RunFolder(run).snapshots()) == 2


def test_full_disk_while_appending_a_record_is_one_line(tmp_path, monkeypatch):
    path = tmp_path / "metrics.jsonl"
    rf.append_jsonl(path, {"step": 1})
    monkeypatch.setattr("builtins.open", _no_space)
    with pytest.raises(rf.GanBenchError, match="could not write .*metrics.jsonl.*No space left"):
        rf.append_jsonl(path, {"step": 2})


# ---- torn records ---------------------------------------------------------------------------

def test_a_torn_last_line_never_breaks_the_readers(tmp_path):
    path = tmp_path / "metrics.jsonl"
    for s in (1, 2, 3):
        rf.append_jsonl(path, {"step": s, "loss_d": 0.5})
    line = json.dumps({"step": 4, "loss_d": 0.25})
    with open(path, "a") as f:
        f.write(line[: len(line) // 2])  # kill -9 or a full disk in the middle of a line
    assert [r["step"] for r in rf.read_jsonl(path)] == [1, 2, 3]
    rf.truncate_jsonl(path, max_step=2)  # what --resume does: complete records up to the checkpoint
    assert path.read_text().splitlines() == [json.dumps({"step": s, "loss_d": 0.5}) for s in (1, 2)]


# ---- two runs, one output folder ------------------------------------------------------------

def test_concurrent_run_folders_are_distinct(tmp_path):
    got, barrier = [], threading.Barrier(16)

    def make():
        barrier.wait()  # all in the same second, as in a suite starting runs in parallel
        got.append(RunFolder.create(tmp_path, "same").path)

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 16 and len(set(got)) == 16 and all(p.is_dir() for p in got)


def test_two_commands_into_one_output_folder_write_two_run_folders(tmp_path):
    cfg = _config(tmp_path, max_steps=2)
    procs = [subprocess.Popen(cli("run", cfg, "--out", str(tmp_path / "res")), env=cli_env(), text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = sorted((tmp_path / "res" / "t").iterdir())
    assert len(runs) == 2
    assert sorted(o.strip().removeprefix("run finished: ") for o, _ in outs) == [str(r) for r in runs]
    for run in runs:
        assert json.loads((run / "summary.json").read_text())["steps"] == 2
        assert [r[0] for r in records(run)] == [2]  # each folder holds one run's records, not both


# ---- issue 33: garbage records, first checkpoints, read-only files, caches and reports left half-made ----

def test_a_garbage_line_in_the_middle_of_a_record_file_is_named_and_kept_on_resume(tmp_path, capsys):
    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    path = run.records_path("metrics")
    good = [json.dumps({"step": s, "loss_d": 0.5}) for s in (1, 2, 3, 4)]
    original = "\n".join([good[0], "\x00garbage{", good[1], good[2], good[3]]) + "\n" + '{"step": 5, "lo'
    path.write_text(original)
    kept = run.truncate_records(max_step=3)
    err = capsys.readouterr().err
    assert kept == [path.with_name("metrics.jsonl.corrupt")] and kept[0].read_text() == original
    assert err.count("\n") == 1 and f"{path} line 2 is not a JSON record and was dropped" in err
    assert "metrics.jsonl.corrupt" in err and "line 6" not in err  # a torn last line (a kill) goes silently
    assert path.read_text().splitlines() == good[:3]
    run.truncate_records(max_step=3)  # clean now: nothing said, no second copy
    assert capsys.readouterr().err == "" and not path.with_name("metrics.jsonl.corrupt.1").exists()


def test_a_full_disk_at_the_first_checkpoint_does_not_claim_a_previous_one(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "run").prepare()
    monkeypatch.setattr(torch, "save", _no_space)
    with pytest.raises(rf.GanBenchError) as e:
        run.save_checkpoint({"step": 1})
    msg = str(e.value)
    assert "no checkpoint was written before this one" in msg and "start the run again" in msg
    assert "intact" not in msg and "--resume" not in msg and not run.has_checkpoint()


def test_a_read_only_record_file_is_not_told_to_free_disk_space(tmp_path, monkeypatch):
    path = tmp_path / "eval.jsonl"
    path.write_text("")

    def refuse(*_a, **_k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(rf.GanBenchError) as e:
        rf.append_jsonl_all(path, [{"metric": "fd", "fd": 1.0}, {"metric": "kid", "kid_mean": 0.1}])
    assert "Permission denied" in str(e.value) and "make the file and its folder writable" in str(e.value)
    assert "free disk space" not in str(e.value)


def test_an_evaluation_whose_value_cannot_be_written_writes_none_of_its_lines(tmp_path):
    path = tmp_path / "eval.jsonl"
    with pytest.raises(TypeError):
        rf.append_jsonl_all(path, [{"metric": "fd", "fd": 1.0}, {"metric": "x", "x": object()}])
    assert not path.exists()


def test_a_read_only_file_system_is_one_line_not_the_cleanups_traceback(tmp_path, monkeypatch):
    """Where nothing can be written, removing the temporary file that was never made fails with EROFS too."""
    from gan_bench.atomic import atomic_path

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
    monkeypatch.setattr(Path, "unlink", read_only)
    with pytest.raises(rf.GanBenchError) as e:
        with atomic_path(tmp_path / "a.txt") as tmp:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp))
    assert "Read-only file system" in str(e.value) and "writable" in str(e.value)


def test_a_full_disk_as_an_evaluation_network_is_cached_leaves_no_empty_cache_folder(tmp_path, monkeypatch):
    from gan_bench.metrics import classifier

    net = classifier.EvalNet(channels=1, resolution=28, num_outputs=3, width=4)
    monkeypatch.setattr(torch, "save", _no_space)
    with pytest.raises(rf.GanBenchError, match="No space left on device.*free disk space"):
        classifier._save(tmp_path / "nets" / "deep" / "tiny-0.pt", net, {"test_acc": 0.5})
    assert list(tmp_path.iterdir()) == []


def test_a_report_into_a_folder_that_was_there_leaves_only_what_was_there(tmp_path):
    from gan_bench.atomic import output_folder

    out = tmp_path / "gal"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(rf.GanBenchError, match="No space left on device.*free disk space"):
        with output_folder(out):
            (out / "runs" / "a").mkdir(parents=True)
            (out / "runs" / "a" / "final.png").write_bytes(b"png")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert sorted(p.name for p in out.rglob("*")) == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
