"""A short run through the real trainer: every artifact is there and valid; resume is exact."""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import yaml
from PIL import Image

from gan_bench.config import build_config
from gan_bench.run import files
from gan_bench.run.files import read_jsonl, write_gif
from gan_bench.run import RunFolder
from gan_bench.run.sampling import load_generator, sample_images, write_samples
from gan_bench.train.loop import train
from conftest import cli, cli_env, sigint_as_in_a_terminal, tiny_overrides, write_npz


def test_run_writes_every_artifact(tmp_path: Path, tiny_npz: Path):
    cfg = build_config([tiny_overrides(tiny_npz), {"out": str(tmp_path / "res")}], name="tiny")
    run = train(cfg)
    assert run.parent == tmp_path / "res" / "tiny"
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 2
    recs = read_jsonl(run / "metrics.jsonl")
    assert recs and {"step", "epoch", "loss_d", "loss_g", "d_x", "d_g_z", "sigma", "sec_per_step",
                     "img_per_sec"} <= set(recs[0])
    assert all(json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
    frames = sorted((run / "samples").glob("epoch_*.png"))
    assert [f.name for f in frames] == ["epoch_0001.png", "epoch_0002.png"]
    grid = np.asarray(Image.open(frames[0]))
    assert grid.shape == (2 + 3 * 30, files.label_margin(["a", "b", "c"]) + 2 + 8 * 30)  # a row per class, 8 samples
    assert len(imageio.mimread(run / "progress.gif")) == len(frames)
    for c in ("a", "b", "c"):
        assert len(imageio.mimread(run / "gifs" / f"{c}.gif")) == len(frames)
    assert Image.open(run / "losses.png").size[0] > 100
    s = json.loads((run / "summary.json").read_text())
    assert s["status"] == "completed" and s["steps"] == s["total_steps"] == 8
    assert s["config_hash"] == cfg.hash() and s["img_per_sec"] > 0 and s["torch"]
    assert (run / "checkpoints" / "last.pt").exists()


def test_grey_gifs_read_back_frame_for_frame(tmp_path: Path):
    """A noisy frame then a flat one: the pattern whose grey GIF imageio could not read back."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (40, 60), dtype=np.uint8), np.zeros((40, 60), np.uint8)]
    write_gif(tmp_path / "g.gif", frames)
    back = imageio.mimread(tmp_path / "g.gif")
    assert len(back) == 2
    for got, want in zip(back, frames):
        assert np.array_equal(np.asarray(got)[..., 0], want)  # every grey level exact (<= 256 a frame)


def test_fixed_noise_frames_are_deterministic(tmp_path: Path, tiny_npz: Path):
    runs = [train(build_config([tiny_overrides(tiny_npz), {"out": str(tmp_path / f"r{i}")}], name="t"))
            for i in range(2)]
    a, b = (np.asarray(Image.open(r / "samples" / "epoch_0002.png")) for r in runs)
    assert np.array_equal(a, b)


def test_sample_by_label_and_npz_layout(tmp_path: Path, tiny_npz: Path):
    run = train(build_config([tiny_overrides(tiny_npz), {"out": str(tmp_path)}], name="t"))
    gan, _ = load_generator(RunFolder(run))
    x, y = sample_images(gan, n=5, label="b")
    assert x.shape == (5, 1, 28, 28) and y.tolist() == [1] * 5
    x, y = sample_images(gan, n=4)  # no label on a conditional model: n of every class
    write_samples(tmp_path / "all.npz", x, y, gan.spec.classes, nrow=4)
    d = np.load(tmp_path / "all.npz")
    assert d["x"].dtype == np.uint8 and d["x"].shape == (12, 28, 28)
    assert d["y"].tolist() == [0] * 4 + [1] * 4 + [2] * 4 and list(d["classes"]) == ["a", "b", "c"]


def _losses(run: Path) -> list[tuple]:
    return [(r["step"], r["loss_d"], r["loss_g"], r["d_x"], r["d_g_z"]) for r in read_jsonl(run / "metrics.jsonl")]


def test_resume_after_sigint_equals_uninterrupted_run(tmp_path: Path, tiny_npz: Path):
    # long enough (48 steps, a checkpoint each) that the Ctrl-C after the third record lands before the end
    over = tiny_overrides(tiny_npz, epochs=12, log_every=1, checkpoint_every=1)
    cfg_file = tmp_path / "t.yaml"
    cfg_file.write_text(yaml.safe_dump(over))
    # both runs go through the CLI with the same thread settings, so floating point agrees bit for bit
    r = subprocess.run(cli("run", str(cfg_file), "--out", str(tmp_path / "full")), env=cli_env(),
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    (full,) = (tmp_path / "full" / "t").iterdir()

    p = subprocess.Popen(cli("run", str(cfg_file), "--out", str(tmp_path / "cut")), env=cli_env(),
                         stderr=subprocess.PIPE, text=True, preexec_fn=sigint_as_in_a_terminal)
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list((tmp_path / "cut" / "t").glob("*/metrics.jsonl"))
        if runs and len(read_jsonl(runs[0])) >= 3:
            break
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    run = runs[0].parent
    assert p.returncode == 130 and f"gan-bench run --resume {run}" in err
    assert json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    cut_at = len(read_jsonl(run / "metrics.jsonl"))
    assert cut_at < 48
    r = subprocess.run(cli("run", "--resume", str(run)), env=cli_env(), capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    assert _losses(run) == _losses(full)
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_classdcgan_run_writes_per_class_gifs_and_checkpoints(tmp_path: Path, tiny_npz: Path):
    import torch

    from gan_bench.data.base import DataSpec
    from gan_bench.config import ModelConfig
    from gan_bench.models.dcgan import convdcgan

    run = train(build_config([tiny_overrides(tiny_npz, model="classdcgan", epochs=1), {"out": str(tmp_path)}], name="c"))
    assert sorted(p.stem for p in (run / "gifs").glob("*.gif")) == ["a", "b", "c"]
    ck = torch.load(run / "checkpoints" / "classes" / "b.pt", weights_only=False)
    one = convdcgan(DataSpec("x", 28, 1, 0, []), ModelConfig(name="convdcgan", width=4, nz=8))
    one.G.load_state_dict(ck["G"]), one.D.load_state_dict(ck["D"])  # strict: every tensor fits
    gan, _ = load_generator(RunFolder(run))
    x, _ = sample_images(gan, n=3, label="b", seed=1)
    assert x.shape == (3, 1, 28, 28)


def test_progress_bar_into_a_log_file_updates_every_30_seconds(tmp_path: Path):
    """2 s of training with the bar on, stderr into a file: a handful of updates, not one per 0.1 s."""
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump(tiny_overrides(write_npz(tmp_path / "tiny.npz"), epochs=60, progress=True)))
    with open(tmp_path / "log", "w") as log:
        r = subprocess.run(cli("run", str(cfg), "--out", str(tmp_path / "res")), env=cli_env(), stderr=log,
                           stdout=subprocess.DEVNULL, timeout=300)
    assert r.returncode == 0
    text = (tmp_path / "log").read_text()
    steps = json.loads(next((tmp_path / "res").glob("t/*/summary.json")).read_text())["steps"]
    assert steps == 240 and "240/240" in text  # the bar's last state is written
    updates = [line for line in text.replace("\r", "\n").splitlines() if "/240 [" in line]
    assert len(updates) <= 4, updates
