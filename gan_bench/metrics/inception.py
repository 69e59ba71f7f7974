"""Inception FID, KID and IS through torch-fidelity, the numbers papers report.

One torch-fidelity call computes all three (the cost is the Inception features), shared by the
three registry entries. Generated images go in as uint8 3-channel tensors (grayscale repeated),
the same quantisation as saved PNGs. The real reference set is a seeded subset of the training
split of the same size as the generated set, as papers compare against training images (the test
splits are too small for a 2,048-dimensional covariance: 2,000 CIFAR-10 images).

Weights (pt_inception-2015-12-05-6726825d.pth, named weights-inception-... by torch-fidelity):
--inception-weights PATH, else the evaluation-network cache folder or torch hub's checkpoints
folder, else torch-fidelity's normal download. If all fail, the metrics are skipped with one line.
"""
from __future__ import annotations

import socket
from pathlib import Path
from typing import Optional

import torch
from torch.utils.data import Dataset

from gan_bench.errors import GanBenchError
from gan_bench.metrics.context import EvalContext
from gan_bench.metrics.registry import Skipped, metric

WEIGHT_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
FID_DIM = 2048          # pool3 features: a Frechet distance needs at least this many images per set
DOWNLOAD_TIMEOUT_S = 30


class UInt8Images(Dataset):
    """(N, C, H, W) uint8 images as torch-fidelity wants them: (3, H, W) uint8 per item."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        im = self.x[i]
        return im.expand(3, -1, -1).contiguous() if im.shape[0] == 1 else im


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def check_weights(path: Path) -> None:
    """--inception-weights must be a readable PyTorch state dict (checked before any work is done)."""
    if path.is_dir():
        raise GanBenchError(f"--inception-weights {str(path)!r} is a folder; give the weights file in it "
                            f"({WEIGHT_NAMES[1]})")
    if not path.is_file():
        raise GanBenchError(f"--inception-weights {str(path)!r}: no such file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated, foreign or HTML-error-page file: torch raises many types
        raise GanBenchError(f"--inception-weights {str(path)!r} is corrupt or not a PyTorch weights file "
                            f"({type(e).__name__}); download {WEIGHT_NAMES[1]} again from {URL}") from None
    if not isinstance(state, dict) or not state:
        raise GanBenchError(f"--inception-weights {str(path)!r} holds no weights; download {WEIGHT_NAMES[1]} "
                            f"again from {URL}")


def find_weights(explicit: Optional[Path], cache_dirs: list[Path], *, download: bool = True) -> Path:
    """The weights file: explicit path, a cached copy, or a fresh download into torch hub's folder.
    Raises Skipped with the one line that says how to get them."""
    if explicit is not None:
        check_weights(Path(explicit))
        return Path(explicit)
    for folder in [*cache_dirs, hub_checkpoints()]:
        for name in WEIGHT_NAMES:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    dst = hub_checkpoints() / WEIGHT_NAMES[0]
    if download:
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib has no timeout of its own: never hang offline
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(URL, str(dst), hash_prefix="6726825d", progress=False)
            return dst
        except Exception:  # no network, proxy, wrong hash: all mean "not available here"
            dst.unlink(missing_ok=True)
        finally:
            socket.setdefaulttimeout(old)
    raise Skipped(f"inception metrics skipped: weights not found; download {WEIGHT_NAMES[1]} ({URL}) "
                  f"and pass --inception-weights PATH (or copy it to {hub_checkpoints()}/)")


def _weights(ctx: EvalContext) -> Path:
    """The weights file, looked up once per evaluation (a Skipped is remembered and raised again)."""
    if "inception_weights" not in ctx.shared:
        try:
            ctx.shared["inception_weights"] = find_weights(ctx.inception_weights,
                                                           [ctx.cache_dir] if ctx.cache_dir else [])
        except Skipped as e:
            ctx.shared["inception_weights"] = e
    if isinstance(ctx.shared["inception_weights"], Skipped):
        raise ctx.shared["inception_weights"]
    return ctx.shared["inception_weights"]


def _compute(ctx: EvalContext) -> dict:
    """All three metrics from one torch-fidelity call, shared by the three entries."""
    if "inception" not in ctx.shared:
        ctx.shared["inception"] = _fidelity(ctx, _weights(ctx))
    return ctx.shared["inception"]


def _fidelity(ctx: EvalContext, weights: Path) -> dict:
    import torch_fidelity

    fake, train = ctx.fake.x, ctx.splits.train.x
    g = torch.Generator().manual_seed(ctx.seed)
    real = train[torch.randperm(len(train), generator=g)[:len(fake)]]
    ctx.need("inception_kid", 2, generated=len(fake), real=len(real), split="training")
    out = torch_fidelity.calculate_metrics(
        input1=UInt8Images(fake), input2=UInt8Images(real), fid=True, kid=True, isc=True,
        feature_extractor_weights_path=str(weights), kid_subset_size=min(1000, len(fake), len(real)),
        isc_splits=min(10, len(fake)), rng_seed=ctx.seed, cuda=ctx.device.type == "cuda",
        batch_size=64, cache=False, save_cpu_ram=True, verbose=False)  # save_cpu_ram: no loader workers
    return {"fid": out["frechet_inception_distance"], "kid_mean": out["kernel_inception_distance_mean"],
            "kid_std": out["kernel_inception_distance_std"], "is_mean": out["inception_score_mean"],
            "is_std": out["inception_score_std"], "reference_images": len(real)}


@metric("inception_fid", kind="inception", key="inception_fid", better="lower")
def inception_fid(ctx: EvalContext) -> dict:
    """FID (Heusel et al. 2017): Frechet distance of Inception-v3 pool3 features, generated vs train."""
    _weights(ctx)  # missing weights: the skip line, not a sample-count error
    ctx.need("inception_fid", FID_DIM, generated=len(ctx.fake), real=len(ctx.splits.train), split="training",
             what=f" (one per Inception feature dimension, {FID_DIM})")
    r = _compute(ctx)
    return {"inception_fid": r["fid"], "reference_images": r["reference_images"]}


@metric("inception_kid", kind="inception", key="inception_kid_mean", better="lower")
def inception_kid(ctx: EvalContext) -> dict:
    """KID (Binkowski et al. 2018) on Inception-v3 pool3 features, mean and std over subsets."""
    r = _compute(ctx)
    return {"inception_kid_mean": r["kid_mean"], "inception_kid_std": r["kid_std"],
            "reference_images": r["reference_images"]}


@metric("inception_is", kind="inception", key="inception_is_mean", better="higher")
def inception_is(ctx: EvalContext) -> dict:
    """Inception Score (Salimans et al. 2016) of the generated images, mean and std over 10 splits."""
    r = _compute(ctx)
    return {"inception_is_mean": r["is_mean"], "inception_is_std": r["is_std"]}
