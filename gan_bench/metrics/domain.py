"""Metrics in the space of the data set's evaluation network (see classifier.py).

The real reference set is the test split (never seen by the evaluation network in training);
generated images are the context's `samples` images, class-balanced for class-aware models.
"""
from __future__ import annotations

import torch

from gan_bench.metrics import classifier as C
from gan_bench.metrics import stats
from gan_bench.metrics.classifier import FEATURE_DIM
from gan_bench.metrics.context import EvalContext, sharded
from gan_bench.metrics.registry import metric

PR_K = 3  # neighbourhood size of the k-NN manifolds (Kynkaanniemi et al. 2019 use k = 3)


@metric("fd", kind="domain", key="fd", better="lower", headline=True, label="FD")
def fd(ctx: EvalContext) -> dict:
    """Frechet distance between Gaussians fitted to real-test and generated features (float64)."""
    ctx.need("fd", FEATURE_DIM, generated=len(ctx.fake), real=len(ctx.splits.test),
             what=f" (one per feature dimension, {FEATURE_DIM})")
    return {"fd": stats.frechet_distance(ctx.real_features, ctx.fake_features)}


@metric("kid", kind="domain", key="kid_mean", better="lower", headline=True, label="KID",
        columns=("kid_mean", "kid_std"))
def kid(ctx: EvalContext) -> dict:
    """Unbiased MMD^2 with a cubic kernel over 100 subsets of up to 1,000 images; mean and std."""
    ctx.need("kid", 2, generated=len(ctx.fake), real=len(ctx.splits.test))
    mean, std = stats.kid(ctx.real_features, ctx.fake_features, subsets=100, subset_size=1000, seed=ctx.seed)
    return {"kid_mean": mean, "kid_std": std}


def _precision_recall(ctx: EvalContext) -> dict:
    """Both numbers from one k-NN pass, on equal-size sets (the larger one is subsampled, seeded):
    the k-NN radii depend on the set size, so unequal sets would bias one direction.

    Beside them, the same two numbers for real training images in place of the generated ones
    (real_precision, real_recall): what a perfect generator would score in this feature space, the
    ceiling to read a model's precision against (as cond_acc is read against real_acc). On the demo's
    shapes, held-out real images score 0.92 / 0.94 where the 10-epoch demo model scores 0.045 / 0.39
    with cond_acc 0.95: its doodles are recognisable but not yet real-like, which precision sees."""
    if "pr" not in ctx.shared:
        ctx.need("precision/recall", PR_K + 1, generated=len(ctx.fake), real=len(ctx.splits.test))
        real, fake = ctx.real_features, ctx.fake_features
        n = min(len(real), len(fake), len(ctx.splits.train))
        g = torch.Generator().manual_seed(ctx.seed)
        real, fake = real[torch.randperm(len(real), generator=g)[:n]], fake[torch.randperm(len(fake), generator=g)[:n]]
        p, r = stats.precision_recall(real, fake, k=PR_K)
        clf, train = ctx.classifier, ctx.splits.train.x
        held = sharded(lambda b: C.features(clf, b), train[torch.randperm(len(train), generator=g)[:n]])
        p_real, r_real = stats.precision_recall(real, held, k=PR_K)
        ctx.shared["pr"] = {"precision": p, "recall": r, "pr_images": n, "real_precision": p_real,
                            "real_recall": r_real}
    return ctx.shared["pr"]


@metric("precision", kind="domain", key="precision", better="higher", headline=True)
def precision(ctx: EvalContext) -> dict:
    """Share of generated images inside the real k-NN manifold (fidelity)."""
    pr = _precision_recall(ctx)
    return {"precision": pr["precision"], "pr_images": pr["pr_images"], "real_precision": pr["real_precision"]}


@metric("recall", kind="domain", key="recall", better="higher", headline=True)
def recall(ctx: EvalContext) -> dict:
    """Share of real test images inside the generated k-NN manifold (coverage)."""
    pr = _precision_recall(ctx)
    return {"recall": pr["recall"], "pr_images": pr["pr_images"], "real_recall": pr["real_recall"]}


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
