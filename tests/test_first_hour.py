"""What a newcomer meets in the first hour: labelled grids, a gallery that opens on the final frame,
compare before eval, summary losses that are not one batch's spike, a completed run left alone by
--resume, large sample requests in chunks, and failures that leave nothing half-written."""
from __future__ import annotations

import errno
import json
import shutil
import sys
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from gan_bench.cli import main
from gan_bench.config import ModelConfig, build_config
from gan_bench.data.base import DataSpec
from gan_bench.models import build_model
from gan_bench.run import RunFolder, files
from gan_bench.run.sampling import generate, generate_chunked, sample_images
from gan_bench.train.finish import last_window
from gan_bench.train.loop import train
from conftest import tiny_overrides


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from conftest import write_npz

    base = tmp_path_factory.mktemp("first_hour")
    npz = write_npz(base / "tiny.npz")
    return train(build_config([tiny_overrides(npz, epochs=3, log_every=1), {"out": str(base / "res")}], name="t"))


def test_grids_label_each_class_row_and_class_gifs_leave_the_label_out(tiny_run: Path):
    grid = np.asarray(Image.open(sorted((tiny_run / "samples").glob("*.png"))[-1]))
    left = files.label_margin(["a", "b", "c"])
    assert left > 0 and grid.shape == (2 + 3 * 30, left + 2 + 8 * 30)
    assert grid[:, :left].max() > 150  # the names are drawn in the margin (white on black)
    row = imageio.mimread(tiny_run / "gifs" / "b.gif")[-1]
    assert np.asarray(row).shape[1] == (2 + 8 * 30) * 4  # the class's own GIF: cells only (scaled 4x)
    unlabelled = files.grid(torch.zeros(6, 1, 28, 28), 3)
    assert unlabelled.shape == (2 + 2 * 30, 2 + 3 * 30)


def test_summary_reports_the_mean_loss_of_the_last_tenth_beside_the_last_step(tiny_run: Path):
    s = json.loads((tiny_run / "summary.json").read_text())
    recs = RunFolder(tiny_run).records("metrics")
    window = [r for r in recs if r["step"] > s["steps"] - max(1, round(0.1 * s["steps"]))]
    assert s["mean_loss_steps"] == [window[0]["step"], window[-1]["step"]]
    assert s["mean_loss_d"] == pytest.approx(sum(r["loss_d"] for r in window) / len(window))
    assert s["final_loss_g"] == recs[-1]["loss_g"]
    assert last_window([{"step": 5, "loss_d": 1.0}], 5) == [{"step": 5, "loss_d": 1.0}]


def test_compare_before_eval_tabulates_what_the_runs_hold_and_says_what_eval_adds(tiny_run, tmp_path, capsys):
    assert main(["compare", str(tiny_run.parent), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "no run here is evaluated yet" in out and "adds fd, kid, precision, recall" in out
    assert (tmp_path / "rep" / "pivot_img_per_sec.md").exists() and (tmp_path / "rep" / "runs.csv").exists()


def test_gallery_opens_on_the_final_frame_with_the_animation_a_click_away(tiny_run, tmp_path):
    assert main(["gallery", str(tiny_run.parent), "--out", str(tmp_path / "gal")]) == 0
    page = (tmp_path / "gal" / "index.html").read_text()
    assert "<details><summary>progress over 3 snapshots (animation)</summary>" in page
    stills = sorted((tmp_path / "gal").rglob("*.last.png"))
    assert [p.name for p in stills] == ["a.last.png", "b.last.png", "c.last.png"]
    last = np.asarray(imageio.mimread(stills[1].with_name("b.gif"))[-1])[..., :3]
    assert np.array_equal(np.asarray(Image.open(stills[1]).convert("RGB")), last)
    assert "b.last.png" in page and "title='play the animation'" in page


def test_resume_of_a_completed_run_changes_nothing(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    assert main(["run", "--resume", str(run)]) == 0
    captured = capsys.readouterr()
    steps = json.loads((run / "summary.json").read_text())["steps"]
    assert f"is complete ({steps} steps); nothing to resume" in captured.out and captured.err == ""
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("model", ["cdcgan", "classdcgan", "convdcgan"])
def test_generation_in_chunks_equals_one_pass(model: str, monkeypatch):
    import gan_bench.run.sampling as sampling

    torch.manual_seed(0)
    gan = build_model(ModelConfig(name=model, width=4, nz=8), DataSpec("s", 28, 1, 3, ["a", "b", "c"])).eval()
    k = 3 if model != "convdcgan" else 1
    z = torch.randn(12 * k, 8)
    y = torch.arange(3).repeat_interleave(12) if model != "convdcgan" else None
    whole = generate(gan, z, y)
    monkeypatch.setattr(sampling, "CHUNK", 5)
    # the same images up to float rounding: a convolution may sum in another order for another batch size
    assert torch.allclose(generate_chunked(gan, z, y), whole, atol=1e-6, rtol=1e-5)
    x, labels = sample_images(gan, n=7, seed=3)
    assert len(x) == 7 * k and (labels is None or labels.tolist() == [c for c in range(3) for _ in range(7)])


def test_tensorboard_missing_leaves_no_run_folder(tmp_path, tiny_npz, monkeypatch, capsys):
    import yaml

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were absent
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(tiny_overrides(tiny_npz)))
    assert main(["run", str(tmp_path / "t.yaml"), "--set", "train.tensorboard=true", "--out",
                 str(tmp_path / "res")]) == 2
    assert "tensorboard is not installed" in capsys.readouterr().err
    assert not (tmp_path / "res").exists()


def _no_space(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("command", ["compare", "gallery", "sample"])
def test_a_full_disk_mid_command_is_one_line_and_leaves_nothing(command, tiny_run, tmp_path, monkeypatch, capsys):
    import os

    real_replace = os.replace
    calls = []

    def replace_until_full(src, dst):  # the first file lands, the second finds the disk full
        calls.append(dst)
        if len(calls) > 1:
            _no_space()
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_until_full)
    out = tmp_path / ("x.npz" if command == "sample" else "out")
    args = {"compare": ["compare", str(tiny_run.parent), "--out", str(out)],
            "gallery": ["gallery", str(tiny_run.parent), "--out", str(out)],
            "sample": ["sample", str(tiny_run), "--out", str(out)]}[command]
    if command == "sample":
        monkeypatch.setattr(np, "savez_compressed", lambda *a, **k: _no_space())
    status = main(args)
    err = capsys.readouterr().err
    assert status == 2 and len(err.splitlines()) == 1 and "No space left on device" in err, err
    assert not out.exists() and not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]
