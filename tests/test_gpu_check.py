"""benchmarks/gpu_check.py, the one command of the GPU check, in its smoke mode (every part on the CPU at
toy sizes) so that it cannot rot while no GPU is at hand; and its data staging, which must fit what one
device call carries."""
from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ROOT, cli_env

sys.path.insert(0, str(ROOT / "benchmarks"))
import gpu_check  # noqa: E402
import gpu_check_data as gdata  # noqa: E402

PART_KEYS = {"part", "n", "status", "reason", "seconds", "budget_s", "device", "torch", "smoke", "figures", "targets"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, str, dict]:
    """One smoke run, packed as on the device: three configs of part 2 and one suite run keep it short."""
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--smoke", "--pack",
                           "--out", str(out), "--configs", "quickdraw_cdcgan", "mnist_mlpgan", "celeba_lindcgan",
                           "--suite-runs", "1"], cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout, json.loads((out / "results.json").read_text())


@pytest.mark.slow  # about 2 minutes on 2 cores: seven parts, each in its own processes
def test_smoke_writes_every_part_and_packs_three_files(smoke):
    out, stdout, results = smoke
    assert sorted(p.name for p in out.iterdir()) == ["gpu_check.tar.gz", "results.json", "summary.txt"]
    assert list(results["parts"]) == gpu_check.PART_NAMES
    with tarfile.open(out / "gpu_check.tar.gz") as tar:
        names = set(tar.getnames())
    for n, name in enumerate(gpu_check.PART_NAMES, 1):
        part = results["parts"][name]
        assert PART_KEYS <= set(part), name
        assert part["status"] == "ok", (name, part.get("reason"))
        assert part["device"].startswith("CPU") and part["torch"] == torch.__version__ and part["smoke"] is True
        assert all({"value", "target", "pass"} <= set(t) for t in part["targets"].values())
        assert f"gpu_check/parts/{n}-{name}.json" in names
        assert f"\n{n} {name}" in stdout  # the summary's line of the part
    assert (out / "summary.txt").read_text() in stdout


@pytest.mark.slow
def test_smoke_figures_of_each_part(smoke):
    _, _, results = smoke
    p = results["parts"]
    assert p["tests"]["figures"]["passed"] >= 1 and p["tests"]["figures"]["failed"] == 0
    assert p["tests"]["targets"]["no host synchronisation"]["pass"] is None  # not on CUDA
    runs = {r["config"]: r for r in p["configs"]["figures"]["runs"]}
    assert set(runs) == {"quickdraw_cdcgan", "mnist_mlpgan", "celeba_lindcgan"}
    assert all(r["status"] == "completed" and r["steps"] == 2 and "peak_gpu_mb" in r for r in runs.values())
    assert p["configs"]["targets"]["every staged config trains"]["pass"] is True
    bench = p["bench"]["figures"]
    assert set(bench) == {"cdcgan 28x28", "convdcgan 64x64"}
    for f in bench.values():
        assert set(f["median_img_per_sec"]) == {"reference", "trainer", "plain", "bare"}
        assert f["trainer_to_reference"] > 0 and f["batch_sweep"] and f["class_sweep"] and f["switches"]
        assert [r["speed"] for r in f["compile"]] == ["all", "all + compile"]  # CUDA adds two graph rows
    assert set(p["bench"]["targets"]) >= {"cdcgan 28x28 trainer >= 10x reference",
                                          "convdcgan 64x64 trainer >= 80% of bare step"}
    assert p["sync_bn"]["figures"]["norm_layers"] == ["GlobalBatchNorm"]  # torch's SyncBatchNorm is CUDA-only
    assert p["sync_bn"]["targets"]["one-process step equals the plain step"]["pass"] is True
    assert p["quality"]["figures"]["curve"] and p["quality"]["targets"]["time to quality"]["pass"] is not None
    suite = p["suite"]["figures"]
    assert len(suite["runs"]) == 1 and suite["runs"][0]["status"] == "completed"
    steps = p["profile"]["figures"]["steps"]
    assert steps and steps[0]["step_ms"] > 0 and steps[0]["top_ops"]
    assert p["profile"]["figures"]["trainer"]["steps"] == 2


def _npz(path: Path, n: int, shape: tuple[int, ...], labelled: bool = True) -> None:
    x = np.random.default_rng(0).integers(0, 256, (n, *shape), dtype=np.uint8)  # noise: does not compress
    arrays = {"x": x, "y": np.arange(n) % 2, "classes": np.array(["a", "b"])} if labelled else {"x": x}
    np.savez_compressed(path, **arrays)


def test_staging_copies_whole_files_in_order_then_the_first_images_that_fit(tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    _npz(shared / "quickdraw10_train.npz", 400, (28, 28))
    _npz(shared / "quickdraw10_test.npz", 100, (28, 28))
    _npz(shared / "mnist_train.npz", 3000, (28, 28))                 # 2.4 MB: only part of it fits
    _npz(shared / "celeba64.npz", 400, (64, 64, 3), labelled=False)  # then not even 100 faces
    whole = sum((shared / f).stat().st_size for f in ("quickdraw10_train.npz", "quickdraw10_test.npz"))
    room = whole + 2000 * 28 * 28
    m = gdata.stage(tmp_path / "staged", shared=shared, limit=gdata.tree_bytes() + gdata.MARGIN + room)
    files = m["files"]
    assert list(files) == ["quickdraw10_train.npz", "quickdraw10_test.npz", "mnist_train.npz"]
    assert files["quickdraw10_train.npz"]["whole"] and files["quickdraw10_test.npz"]["whole"]
    mnist = files["mnist_train.npz"]
    assert not mnist["whole"] and 1000 < mnist["images"] <= 2000 and mnist["of"] == 3000
    assert m["bytes"] <= room
    staged = np.load(tmp_path / "staged" / mnist["staged_as"])
    original = np.load(shared / "mnist_train.npz")
    assert np.array_equal(staged["x"], original["x"][:mnist["images"]])  # the first images, labels beside them
    assert np.array_equal(staged["y"], original["y"][:mnist["images"]])
    assert "left under the 64 MiB" in m["left_out"]["celeba64.npz"]
    assert "not in" in m["left_out"]["cifar10_train.npz"]
    sets = gdata.data_sets(tmp_path / "staged")
    assert set(sets) == {"quickdraw", "mnist"}
    assert sets["quickdraw"]["test_path"].endswith("quickdraw10_test.npz") and sets["quickdraw"]["note"] == ""
    assert sets["mnist"]["test_path"] is None and sets["mnist"]["note"] == f"first {mnist['images']} of 3000 images"
    assert "mnist_train.npz as mnist_train_first" in gdata.describe(m)


@pytest.mark.parametrize("args, words", [
    (["--stage-data", "{tmp}/staged", "--shared", "{tmp}/nowhere"], "shared data folder"),
    (["--stage-data", "{tmp}/own", "--shared", "{tmp}"], "not a staged-data folder"),
    (["--smoke", "--out", "{tmp}/a_file"], "cannot write to --out"),
    (["--smoke", "--out", "{tmp}/o", "--budget", "0"], "--budget 0.0: expected seconds > 0"),
    (["--smoke", "--out", "{tmp}/o", "--suite-runs", "0"], "--suite-runs 0"),
])
def test_bad_input_is_one_line_and_status_2(tmp_path: Path, capsys, args, words):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert gpu_check.main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and err.startswith("gpu_check: error: ")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_the_full_check_needs_a_gpu(tmp_path: Path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "o")]) == 2
    assert "no CUDA device here" in capsys.readouterr().err
