"""Metrics in the space of the data set's evaluation network (see classifier.py).

The real reference set is the test split (never seen by the evaluation network in training);
generated images are the context's `samples` images, class-balanced for class-aware models. Beside
each number, its line holds the real-data floor (MetricInfo.floor): the same number for as many real
training images in place of the generated ones (EvalContext.held_features).
"""
from __future__ import annotations

import torch

from gan_bench.metrics import stats
from gan_bench.metrics.classifier import FEATURE_DIM
from gan_bench.metrics.context import EvalContext
from gan_bench.metrics.registry import metric

PR_K = 3  # neighbourhood size of precision/recall's k-NN manifolds (Kynkaanniemi et al. 2019 use k = 3)
DC_K = 5  # and of density/coverage's (Naeem et al. 2020 recommend k = 5)


@metric("fd", kind="domain", key="fd", better="lower", headline=True, label="FD", floor="real_fd")
def fd(ctx: EvalContext) -> dict:
    """Frechet distance between Gaussians fitted to real-test and generated features (float64)."""
    ctx.need("fd", FEATURE_DIM, generated=len(ctx.fake), real=len(ctx.real),
             what=f" (one per feature dimension, {FEATURE_DIM})")
    out = {"fd": stats.frechet_distance(ctx.real_features, ctx.fake_features)}
    if ctx.floors and len(ctx.held_features) >= FEATURE_DIM:
        out.update(real_fd=stats.frechet_distance(ctx.real_features, ctx.held_features),
                   real_images=len(ctx.held_features))
    return out


@metric("kid", kind="domain", key="kid_mean", better="lower", headline=True, label="KID",
        columns=("kid_mean", "kid_std"), floor="real_kid_mean")
def kid(ctx: EvalContext) -> dict:
    """Unbiased MMD^2 with a cubic kernel over 100 subsets of up to 1,000 images; mean and std."""
    ctx.need("kid", 2, generated=len(ctx.fake), real=len(ctx.real))
    mean, std = stats.kid(ctx.real_features, ctx.fake_features, subsets=100, subset_size=1000, seed=ctx.seed)
    out = {"kid_mean": mean, "kid_std": std}
    if ctx.floors and len(ctx.held_features) >= 2:
        mean, std = stats.kid(ctx.real_features, ctx.held_features, subsets=100, subset_size=1000, seed=ctx.seed)
        out.update(real_kid_mean=mean, real_kid_std=std, real_images=len(ctx.held_features))
    return out


@metric("fd_inf", kind="domain", key="fd_inf", better="lower", default=False, floor="real_fd_inf")
def fd_inf(ctx: EvalContext) -> dict:
    """FD-infinity (Chong & Forsyth 2020): fd fitted against 1/N over 15 sample sizes, read at 1/N = 0."""
    ctx.need("fd_inf", stats.FD_INF_RANGE * FEATURE_DIM, generated=len(ctx.fake), real=len(ctx.real),
             what=f" (fd at N from {FEATURE_DIM} up, fitted against 1/N)")
    out = stats.fd_infinity(ctx.real_features, ctx.fake_features, seed=ctx.seed).record("fd_inf")
    if ctx.floors and len(ctx.held_features) >= stats.FD_INF_RANGE * FEATURE_DIM:
        floor = stats.fd_infinity(ctx.real_features, ctx.held_features, seed=ctx.seed)
        out.update(real_fd_inf=floor.value, real_fd_inf_err=floor.stderr, real_images=len(ctx.held_features))
    return out


def _knn(ctx: EvalContext) -> dict:
    """Precision and recall (k = PR_K), density and coverage (k = DC_K) on equal-size sets (the larger
    one is subsampled, seeded): the k-NN radii depend on the set size, so unequal sets would bias one
    direction.

    Beside them, the same numbers for real training images in place of the generated ones
    (real_precision, ..., real_coverage): what a perfect generator would score in this feature space, the
    ceiling to read a model's numbers against (as cond_acc is read against real_acc). On the demo's
    shapes, held-out real images score 0.92 / 0.94 where the 10-epoch demo model scores 0.045 / 0.39
    with cond_acc 0.95: its doodles are recognisable but not yet real-like, which precision sees."""
    if "knn" not in ctx.shared:
        ctx.need("precision/recall", DC_K + 1, generated=len(ctx.fake), real=len(ctx.real))
        real, fake = ctx.real_features, ctx.fake_features
        held = ctx.held_features if ctx.floors else fake
        n = min(len(real), len(fake), len(held))
        g = torch.Generator().manual_seed(ctx.seed)
        real, fake, held = (f[torch.randperm(len(f), generator=g)[:n]] for f in (real, fake, held))
        out = {**knn_scores(real, fake), "pr_images": n}
        if ctx.floors:
            out.update({f"real_{k}": v for k, v in knn_scores(real, held).items()})
        ctx.shared["knn"] = out
    return ctx.shared["knn"]


def knn_scores(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """precision and recall with k = PR_K (Kynkaanniemi et al.), density and coverage with k = DC_K
    (Naeem et al. recommend 5), from stats.prdc."""
    pr, dc = stats.prdc(real, fake, k=PR_K), stats.prdc(real, fake, k=DC_K)
    return {"precision": pr["precision"], "recall": pr["recall"], "density": dc["density"],
            "coverage": dc["coverage"]}


def _one(ctx: EvalContext, name: str) -> dict:
    """A k-NN metric's line: its number, the set size, and its real-data ceiling when measured."""
    r = _knn(ctx)
    return {name: r[name], "pr_images": r["pr_images"], **({f"real_{name}": r[f"real_{name}"]} if ctx.floors else {})}


@metric("precision", kind="domain", key="precision", better="higher", headline=True, floor="real_precision")
def precision(ctx: EvalContext) -> dict:
    """Share of generated images inside the real k-NN manifold (fidelity)."""
    return _one(ctx, "precision")


@metric("recall", kind="domain", key="recall", better="higher", headline=True, floor="real_recall")
def recall(ctx: EvalContext) -> dict:
    """Share of real test images inside the generated k-NN manifold (coverage)."""
    return _one(ctx, "recall")


@metric("density", kind="domain", key="density", better="higher", floor="real_density")
def density(ctx: EvalContext) -> dict:
    """Density (Naeem et al. 2020): real k-NN balls holding each generated image, about 1 for real-like sets."""
    return _one(ctx, "density")


@metric("coverage", kind="domain", key="coverage", better="higher", floor="real_coverage")
def coverage(ctx: EvalContext) -> dict:
    """Coverage (Naeem et al. 2020): share of real k-NN balls holding a generated image."""
    return _one(ctx, "coverage")


@metric("cond_acc", kind="domain", key="cond_acc", better="higher", needs_labels=True, needs_draws_class=True,
        headline=True, label="cond. acc.")
def cond_acc(ctx: EvalContext) -> dict:
    """Share of images generated for class c that the evaluation network assigns to c.

    Per class too, beside the network's own accuracy on real test images of c (the ceiling)."""
    y, hit = ctx.fake.y, ctx.fake_predictions == ctx.fake.y
    names = ctx.splits.train.classes
    per = {names[c]: hit[y == c].float().mean().item() for c in range(len(names)) if (y == c).any()}
    return {"cond_acc": hit.float().mean().item(), "per_class": per,
            "real_acc": ctx.classifier.test_acc, "real_per_class": ctx.classifier.info["per_class_acc"]}


@metric("gan_test", kind="domain", key="gan_test", better="higher", needs_labels=True, needs_draws_class=True)
def gan_test(ctx: EvalContext) -> dict:
    """GAN-test (Shmelkov et al. 2018): real-trained classifier's accuracy on generated images.

    The classifier is the evaluation network, so this equals cond_acc's overall value by construction."""
    hit = ctx.fake_predictions == ctx.fake.y
    return {"gan_test": hit.float().mean().item(), "real_acc": ctx.classifier.test_acc}


@metric("intra_fd", kind="domain", key="intra_fd", better="lower", needs_labels=True, needs_draws_class=True)
def intra_fd(ctx: EvalContext) -> dict:
    """Frechet distance per class (generated vs real test images of c), and its mean over classes."""
    names, y_real, y_fake = ctx.splits.test.classes, ctx.splits.test.y, ctx.fake.y
    fewest_real = min(int((y_real == c).sum()) for c in range(len(names)))
    ctx.need("intra_fd", FEATURE_DIM, generated=ctx.per_class, real=fewest_real,
             what=f" of every class (one per feature dimension; --samples / {len(names)} per class)")
    per = {n: stats.frechet_distance(ctx.real_features[y_real == c], ctx.fake_features[y_fake == c])
           for c, n in enumerate(names)}
    return {"intra_fd": sum(per.values()) / len(per), "per_class": per}
