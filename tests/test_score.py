"""`gan-bench score FAKE REAL`: two image sets scored through the metric registry, equal to the same
statistics computed by hand from the evaluation network's features (bad inputs: test_bad_inputs.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_bench.cli import main
from gan_bench.config import DataConfig
from gan_bench.data import load_data
from gan_bench.metrics import classifier as C
from gan_bench.metrics import stats
from gan_bench.metrics.score import read_images

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DATA = {"per_class": 100, "test_fraction": 0.2}  # shapes: 800 train, 200 test images


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(folder, fake.npz of noise, real.npz of the shapes test split)."""
    tmp = tmp_path_factory.mktemp("score")
    test = load_data(DataConfig(name="shapes", **DATA)).test.x
    noise = torch.randint(0, 256, (200, *test.shape[1:]), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    np.savez(tmp / "fake.npz", x=noise[:, 0].numpy())   # N x H x W: the layout `gan-bench sample` writes
    np.savez(tmp / "real.npz", x=test[:, 0].numpy())
    return tmp, tmp / "fake.npz", tmp / "real.npz"


def score_json(tmp: Path, fake: Path, real: Path, *more: str, capsys) -> dict:
    sets = [f"data.{k}={v}" for k, v in {**DATA, "root": str(tmp / "datasets")}.items()]
    argv = ["score", str(fake), str(real), "--dataset", "shapes", *sum((["--set", s] for s in sets), []),
            "--device", "cpu", "--json", *more]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_domain_metrics_of_two_npz_files_equal_the_statistics_of_their_features(files, capsys):
    tmp, fake, real = files
    out = score_json(tmp, fake, real, capsys=capsys)
    got = out["metrics"]
    # the default: the data set's default metrics that two image sets give (no class metrics)
    assert list(got) == ["fd", "kid", "precision", "recall", "density", "coverage"] and out["dataset"] == "shapes"
    splits = load_data(DataConfig(name="shapes", root=str(tmp / "datasets"), **DATA))
    clf = C.train_classifier(splits, epochs=2, cache_dir=tmp / "datasets" / ".eval_nets", log=lambda s: None)
    f_fake, f_real = C.features(clf, read_images(fake, what="FAKE").x), C.features(clf, read_images(real, what="REAL").x)
    assert got["fd"]["fd"] == pytest.approx(stats.frechet_distance(f_real, f_fake), rel=1e-9)
    assert got["fd"]["classifier"] == clf.fingerprint and got["fd"]["samples"] == 200
    assert not any(k.startswith("real_") for r in got.values() for k in r)  # no held-out images: no floors
    assert got["density"]["density"] < 0.1 and got["precision"]["pr_images"] == 200  # noise is not shapes


def test_a_folder_and_samples_and_the_table(files, capsys):
    tmp, fake, real = files
    folder = tmp / "fake_pngs"
    (folder / "sub").mkdir(parents=True)
    for i, im in enumerate(np.load(fake)["x"][:150]):  # recursively, any image format PIL reads
        Image.fromarray(im).save(folder / ("sub" if i % 2 else "") / f"{i:03d}.png")
    order = list(range(0, 150, 2)) + list(range(1, 150, 2))  # sorted by path: the top folder's files first
    assert torch.equal(read_images(folder, what="FAKE").x, torch.from_numpy(np.load(fake)["x"][order])[:, None])
    got = score_json(tmp, folder, real, "--metrics", "kid", "--samples", "130", capsys=capsys)["metrics"]
    assert got["kid"]["samples"] == 130 and got["kid"]["kid_mean"] > 0
    sets = [f"data.{k}={v}" for k, v in {**DATA, "root": str(tmp / "datasets")}.items()]
    assert main(["score", str(fake), str(real), "--dataset", "shapes", *sum((["--set", s] for s in sets), []),
                 "--metrics", "fd", "--device", "cpu"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["metric", "value", "details"] and table[1].split()[0] == "fd"
    assert float(table[1].split()[1]) > 0
