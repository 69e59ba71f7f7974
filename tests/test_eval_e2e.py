"""A tiny trained run evaluated through the CLI in-process: eval.jsonl lines that parse, the shared
evaluation-network cache, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.run.files import read_jsonl
from gan_bench.train.loop import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


DATA = {"name": "shapes", "per_class": 100, "test_fraction": 0.2}  # 800 train, 200 test images


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    cfg = build_config([{"data": {**DATA, "root": str(tmp / "datasets")}, "out": str(tmp / "res"),
                         "model": {"name": "cdcgan", "width": 4, "nz": 8},
                         "train": {"epochs": 1, "max_steps": 6, "batch_size": 16, "log_every": 2,
                                   "progress": False}}], name="tiny")
    return train(cfg)


def test_classifier_train_then_eval_reuses_the_cached_network(run: Path, capsys):
    root = run.parents[2] / "datasets"
    sets = [f"data.{k}={v}" for k, v in {**DATA, "root": str(root)}.items() if k != "name"]
    assert main(["classifier", "train", "--dataset", "shapes", *sum((["--set", s] for s in sets), [])]) == 0
    out = capsys.readouterr().out
    assert out.startswith("shapes: test accuracy ") and "cached as" in out
    cached = list((root / ".eval_nets").glob("shapes-*.pt"))
    assert len(cached) == 1

    rc = main(["eval", str(run), "--metrics", "fd,kid,precision,recall,cond_acc", "--samples", "200",
               "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0 and "training the evaluation network" not in captured.err  # loaded from the cache
    lines = (run / "eval.jsonl").read_text().splitlines()
    recs = [json.loads(s) for s in lines]
    assert [r["metric"] for r in recs] == ["fd", "kid", "precision", "recall", "cond_acc"]
    fingerprint = cached[0].stem.split("-", 1)[1]
    for r in recs:
        assert r["step"] == 6 and r["checkpoint"] == "last" and r["samples"] == 200
        assert r["classifier"] == fingerprint and 0.0 <= r["classifier_test_acc"] <= 1.0
    assert recs[0]["fd"] > 0 and recs[1]["kid_std"] >= 0 and 0 <= recs[4]["cond_acc"] <= 1
    assert set(recs[4]["per_class"]) == {"circle", "square", "triangle", "plus", "cross", "star", "heart",
                                         "arrow", "zigzag", "house"}
    for name in ("fd", "kid", "precision", "recall", "cond_acc"):
        assert any(row.startswith(name) for row in captured.out.splitlines())
    # a second evaluation appends; read_jsonl sees both
    assert main(["eval", str(run), "--metrics", "fd", "--samples", "200", "--device", "cpu"]) == 0
    again = read_jsonl(run / "eval.jsonl")
    assert len(again) == 6 and again[-1]["fd"] == recs[0]["fd"]  # same seed, same number


@pytest.mark.parametrize("args, message", [
    (["--metrics", "fid"], "unknown metric 'fid'"),
    (["--checkpoint", "best"], "no checkpoints/best.pt"),
    (["--samples", "50", "--metrics", "fd"], "fd needs at least 128 generated images"),
])
def test_eval_errors_are_one_line(run: Path, capsys, args, message):
    assert main(["eval", str(run), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("gan-bench: error: ")


def test_eval_of_a_folder_that_is_not_a_run(tmp_path: Path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_eval_inception_metrics_offline_through_the_cli(run: Path, capsys, monkeypatch):
    """`gan-bench eval RUN --metrics inception_fid,inception_kid` with the `inception` extra and no network:
    lines that name the network, its resize and range, beside their real-data floor."""
    from gan_bench.metrics import inception, inception_net

    if inception_net.wheel_file() is None:
        pytest.skip(f"needs the inception extra: {inception_net.EXTRA}")
    monkeypatch.setattr(inception, "FID_DIM", 4)  # 10 images at 299 px (one per class), not 2,048 (a CPU's hour)
    assert main(["eval", str(run), "--metrics", "inception_fid,inception_kid", "--samples", "10", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    recs = read_jsonl(run / "eval.jsonl")[-2:]
    assert [r["metric"] for r in recs] == ["inception_fid", "inception_kid"] and "inception_fid" in out
    for r in recs:
        assert r["inception_sha256"] == inception_net.WHEEL_SHA256 and r["reference_images"] == 10
        assert "nv_bilinear_float" in r["inception_resize"] and r["inception_range"].startswith("[-1, 0.9921875]")
    assert recs[0]["inception_fid"] > recs[0]["real_inception_fid"] > 0 and recs[0]["real_images"] == 10
