"""Metrics that train new classifiers (same network and recipe as the evaluation network):
GAN-train (Shmelkov et al. 2018) and the augmentation experiment. Both report accuracy on the
real test split, beside the evaluation network's (trained on the full real training split).
"""
from __future__ import annotations

import math

import torch

from gan_bench.data.base import ImageData
from gan_bench.metrics import classifier as C
from gan_bench.metrics.context import EvalContext, generate_images
from gan_bench.metrics.registry import NotApplicable, metric

AUGMENT_CLASS = 0        # the class the augmentation experiment starves (the first class)
AUGMENT_FRACTION = 0.1   # share of its real training images that is kept


def _fit_and_test(ctx: EvalContext, data: ImageData) -> dict:
    recipe = C.default_recipe(data, epochs=ctx.classifier_epochs, seed=C.Recipe.seed)
    net = C.train_net(data, recipe=recipe, device=ctx.device)
    return C.accuracy(C.Classifier(net, "", {}, ctx.device), ctx.splits.test, task="classes")


@metric("gan_train", kind="retrain", key="gan_train", better="higher", needs_labels=True, needs_draws_class=True)
def gan_train(ctx: EvalContext) -> dict:
    """Accuracy on real test images of a classifier trained only on the generated images."""
    ctx.need("gan_train", C.Recipe.batch_size, generated=len(ctx.fake), real=len(ctx.splits.test))
    acc = _fit_and_test(ctx, ctx.fake)
    # generated_train_images: what this classifier trained on; real_train_images: the evaluation network's
    return {"gan_train": acc["test_acc"], "per_class": acc["per_class_acc"], "generated_train_images": len(ctx.fake),
            "real_acc": ctx.classifier.test_acc, "real_train_images": len(ctx.splits.train)}


@metric("augment", kind="retrain", key="acc_augmented", better="higher", needs_labels=True,
        needs_draws_class=True, default=False)
def augment(ctx: EvalContext) -> dict:
    """Augmentation experiment: accuracy with and without generated images of a starved class.

    Keeps AUGMENT_FRACTION of class AUGMENT_CLASS's real training images; trains one classifier on
    that reduced set and one on it plus generated images of that class (as many as were removed);
    reports both accuracies on the real test split, overall and on that class."""
    train, c = ctx.splits.train, AUGMENT_CLASS
    idx_c = (train.y == c).nonzero().flatten()
    g = torch.Generator().manual_seed(ctx.seed)
    n_keep = max(1, math.ceil(AUGMENT_FRACTION * len(idx_c)))
    dropped = idx_c[torch.randperm(len(idx_c), generator=g)[n_keep:]]
    keep = torch.ones(len(train), dtype=torch.bool)
    keep[dropped] = False
    reduced = ImageData(train.x[keep], train.y[keep], train.classes)
    if len(dropped) == 0:
        raise NotApplicable(f"augment: class {train.classes[c]!r} has too few training images to reduce")
    gen = generate_images(ctx.gan, per_class=len(dropped), seed=ctx.seed + 1, device=ctx.device, classes=[c])
    augmented = ImageData(torch.cat([reduced.x, gen.x]), torch.cat([reduced.y, gen.y]), train.classes)
    a, b = _fit_and_test(ctx, reduced), _fit_and_test(ctx, augmented)
    name = train.classes[c]
    return {"class": name, "fraction": AUGMENT_FRACTION, "real_kept": n_keep, "generated": len(gen),
            "acc_reduced": a["test_acc"], "acc_augmented": b["test_acc"],
            "class_acc_reduced": a["per_class_acc"][name], "class_acc_augmented": b["per_class_acc"][name],
            "real_acc": ctx.classifier.test_acc}
