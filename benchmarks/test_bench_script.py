"""bench.py end to end on tiny data and a tiny model: the JSON holds every figure the README needs,
and the reference loop trains the same modules on the same pixel values as the trainer."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import bench
from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec, ImageData
from gan_bench.models import build_model
from gan_bench.train.batches import BatchSource
from gan_bench.train.speed import SpeedSwitches
from reference_loop import ReferenceTrainer, make_loader


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (60, 28, 28), dtype=np.uint8)
    path = tmp_path / "tiny.npz"
    np.savez_compressed(path, x=x, y=np.arange(60) % 3, classes=np.array(["a", "b", "c"]))
    return path


def test_bench_writes_every_figure(tmp_path: Path, tiny_npz: Path, monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)  # leave the test process's threads alone
    out = bench.main(["--data", str(tiny_npz), "--width", "4", "--batch-size", "8", "--steps", "2",
                      "--reps", "2", "--workers", "0", "--batches", "8", "16", "--sweep-images", "16",
                      "--ks", "1", "2", "--class-steps", "1", "--wait", "0", "--device", "cpu",
                      "--speed-steps", "1", "--speed-reps", "1",
                      "--out", str(tmp_path / "results")])
    r = json.loads(out.read_text())
    m = r["machine"]
    assert m["device"].startswith("CPU") and m["torch"] == torch.__version__ and m["cores"] >= 1
    assert out.name.startswith("cpu-") and m["date"][:10] in out.name
    assert len(r["load_avg_start"]) == 3 and len(r["load_avg_end"]) == 3
    c = r["compare"]
    assert all(len(c["runs"][k]) == 2 for k in ("reference", "trainer", "plain", "bare"))
    assert all(run["steps"] == 2 for k in c["runs"] for run in c["runs"][k])
    med = c["median_img_per_sec"]
    assert c["ratio_trainer_to_reference"] == pytest.approx(med["trainer"] / med["reference"])
    assert c["overhead_vs_bare"] == pytest.approx(1 - med["trainer"] / med["bare"])
    assert c["ratio_plain_to_reference"] == pytest.approx(med["plain"] / med["reference"])
    assert r["trainer_speed"] == SpeedSwitches.for_device(torch.device("cpu")).record()
    assert [row["batch_size"] for row in r["batch_sweep"]] == [8, 16]
    assert [row["images_per_step"] for row in r["class_sweep"]] == [8, 16]  # 8 images of each class
    assert r["class_sweep"][0]["vs_one_pair"] == pytest.approx(1.0)
    assert r["peak_cpu_mb"] > 0
    rows = {row["speed"]: row for row in r["speed"]}  # CPU: none, all, all but / all + each switch
    assert list(rows)[:2] == ["none", "all"] and rows["none"]["vs_none"] == 1.0
    assert len(rows) == 5 and all(len(row["reps"]) == 1 for row in rows.values())
    assert rows["all"]["set"] == r["trainer_speed"] and not any(rows["none"]["set"].values())
    for switch in ("channels_last", "bf16", "fused_adam"):  # each switch flipped from the default
        on = r["trainer_speed"][switch]
        assert rows[f"all but {switch}" if on else f"all + {switch}"]["set"][switch] is (not on)
    comp = {row["speed"]: row for row in r["compile"]}  # CPU: the trainer's switches, then with compile
    assert list(comp) == ["all", "all + compile"] and comp["all"]["vs_all"] == 1.0
    assert comp["all"]["set"] == r["trainer_speed"] and comp["all + compile"]["set"]["compile"] is True
    assert all(row["img_per_sec"] > 0 and "error" not in row for row in comp.values())
    text = bench.tables(r)
    assert "trainer, train.fast=false" in text and "| all + compile |" in text and "| compile (bare step) |" in text


def test_bench_parts_measure_only_what_is_asked(tmp_path: Path, tiny_npz: Path, monkeypatch):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    out = bench.main(["--data", str(tiny_npz), "--model", "convdcgan", "--width", "4", "--batch-size", "8",
                      "--parts", "speed", "--speed-steps", "1", "--speed-reps", "2", "--wait", "0",
                      "--device", "cpu", "--out", str(tmp_path)])
    assert out.name.endswith("-convdcgan-speed.json")
    r = json.loads(out.read_text())
    assert "compare" not in r and "batch_sweep" not in r and "class_sweep" not in r
    assert r["settings"]["parts"] == ["speed"] and all(len(row["reps"]) == 2 for row in r["speed"])
    text = bench.tables(r)
    assert "| speed switches (bare step) |" in text and "| loop |" not in text and "parts: speed" in text
    assert "compile" not in r and not list(tmp_path.glob("*.tmp"))  # saved whole after each part, no leftovers


def test_reference_sees_the_trainers_pixels_and_trains_the_same_modules():
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    data = ImageData(x, torch.arange(16) % 2, ["a", "b"])
    ref_x, ref_y = next(iter(make_loader(data, batch_size=16, num_workers=0)))  # all 16, shuffled
    mine, my_y = BatchSource(data, batch_size=16, seed=0, per_class=False, device=torch.device("cpu")).batch(0, 0)
    # pair each reference image with the trainer's copy of it (another order): same values, same label
    dist = (ref_x.flatten(1)[:, None] - mine.flatten(1)[None]).abs().amax(-1)  # (16, 16)
    match = dist.argmin(1)
    assert sorted(match.tolist()) == list(range(16))
    assert dist.min(1).values.max() < 1e-6 and torch.equal(ref_y, my_y[match])

    spec = DataSpec("t", 28, 1, 2, ["a", "b"])
    gan = build_model(ModelConfig(name="cdcgan", width=4, nz=8), spec)
    names = [n for n, _ in build_model(ModelConfig(name="cdcgan", width=4, nz=8), spec).named_parameters()]
    before = [p.detach().clone() for p in gan.parameters()]
    ref = ReferenceTrainer(gan, device=torch.device("cpu"))
    ref.step(ref_x, ref_y)
    assert [n for n, _ in gan.named_parameters()] == names
    assert all(not torch.equal(b, p) for b, p in zip(before, gan.parameters()))
    assert len(ref.lines) == 1 and "Loss_D" in ref.lines[0]
