"""The run plan: a config checked once and resolved into everything a run needs.

"Can this config run?" is answered here and only here. make_plan() makes every check that needs no data,
in the order a user wants to hear about problems (names, the recipe against the model, the data files,
the model against the data set's record, the evaluation, the device); RunPlan.resolve() makes those that
need the loaded data and the device (the model against the data, the batches, the evaluation against the
labels and the test split, the trackers) and binds the recipe and the speed switches to the run. Each
check says the key, the problem and the fix in one line. The CLI (`run`, `--dry-run`, which prints the
plan), a suite's preflight, build(), the loop and gan_step all read a plan; none re-checks what it holds.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gan_bench.config import Config
from gan_bench.data import DATASETS, DatasetInfo, DataSpec, Splits, from_uint8
from gan_bench.errors import ConfigError
from gan_bench.metrics.registry import METRICS, check_metrics
from gan_bench.models import GAN, MODELS, ModelInfo, build_model, check_compatible
from gan_bench.models.contract import check_model
from gan_bench.run.world import World, pick_device
from gan_bench.train.augment import parse_policy
from gan_bench.train.budget import Budget
from gan_bench.train.contracts import check_augments, check_loss
from gan_bench.train.losses import LOSSES
from gan_bench.train.recipe import Recipe
from gan_bench.train.speed import SpeedSwitches
from gan_bench.train.trackers import check_trackers


@dataclass(frozen=True)
class EvalPlan:
    """In-training evaluation: which metrics, how many samples, when, and which one picks best.pt."""

    metrics: tuple[str, ...]
    samples: int
    primary: str
    every: int             # epochs
    every_steps: int
    every_seconds: float

    @property
    def on(self) -> bool:
        """Whether the run evaluates during training (any trigger set)."""
        return bool(self.every or self.every_steps or self.every_seconds)

    @property
    def keeps_best(self) -> bool:
        """best.pt is kept only when the primary metric is among those evaluated."""
        return self.on and self.primary in self.metrics


@dataclass(frozen=True)
class RunPlan:
    """A validated run: the resolved config and what was built from it once.

    spec, device, speed and world are None/default until resolve() (the data loaded, the device chosen).
    """

    cfg: Config
    dataset: DatasetInfo
    model: ModelInfo
    recipe: Recipe
    budget: Budget
    evaluation: EvalPlan
    spec: Optional[DataSpec] = None
    device: Optional[torch.device] = None
    speed: SpeedSwitches = SpeedSwitches()
    world: World = World()

    def resolve(self, data: Splits, *, device: torch.device, world: World = World(),
                resuming: bool = False) -> "RunPlan":
        """The plan for this data on this device: the checks that need them, then the recipe bound to the
        run (class pairs, autocast dtype, rank) and the device's speed switches. resuming: a run folder made
        before the batch was checked against the data (it trained whatever batch the data gave) resumes."""
        cfg, spec = self.cfg, data.spec
        check_compatible(cfg.model.name, spec)
        _check_batches(cfg, data, per_class=self.model.per_class, ranks=world.size, resuming=resuming)
        _check_evaluation(cfg, self.evaluation, labelled=spec.labelled, draws_class=self.model.draws_class,
                          test_images=len(data.test), classes=spec.num_classes)
        if world.is_main:
            check_trackers(cfg)  # before the run folder exists: a missing package leaves nothing behind
        speed = SpeedSwitches.for_device(device, compile=cfg.train.compile) if cfg.train.fast else SpeedSwitches()
        pairs = spec.num_classes if self.model.per_class else 1
        recipe = self.recipe.on(pairs=pairs, amp_dtype=speed.amp_dtype, rank=world.rank, ranks=world.size)
        return dataclasses.replace(self, spec=spec, device=device, speed=speed, world=world, recipe=recipe)

    def check_plugins(self, gan: GAN, data: Splits) -> None:
        """The plugins' contracts on a tiny batch, before anything is written (build() calls it on the model
        it built, on the run's device): the model (G and D on two latent vectors and two real images), the
        loss on D's logits, the augmentations on the batch. Every random state is left as it was, so the
        run's own draws start from its seed."""
        cfg, spec, device = self.cfg, data.spec, next((p.device for p in gan.parameters()), torch.device("cpu"))
        state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                real = from_uint8(data.train.x[:2 * max(spec.num_classes, 1)]).to(device)
                check_model(gan, spec, cfg.model.nz, device, name=cfg.model.name, factory=MODELS.get(cfg.model.name),
                            real=None if self.model.per_class else real)
                check_loss(self.recipe.loss, name=cfg.train.loss, device=device, pairs=self.recipe.pairs)
                check_augments(cfg.train.diffaug, real[:2])
        finally:
            np.random.set_state(state[0]), random.setstate(state[1])

    def describe(self) -> str:
        """What --dry-run prints: the resolved config (YAML), then the plan as YAML comments."""
        ev, b = self.evaluation, self.budget
        loss = self.cfg.train.loss + (f" + DiffAugment {self.cfg.train.diffaug}" if self.cfg.train.diffaug else "")
        lines = [f"model: {self.cfg.model.name} ({_kind(self.model)})",
                 f"budget: {_budget_line(b)}",
                 f"recipe: {loss}, lr G {self.cfg.train.lr_g:g} / D {self.cfg.train.lr_d:g}, batch "
                 f"{self.cfg.train.batch_size}" + (f", G's average {self.cfg.train.ema:g}" if self.cfg.train.ema else ""),
                 "evaluation: " + (f"{', '.join(ev.metrics)} on {ev.samples} samples" + _when(ev) if ev.on
                                   else "none during training (gan-bench eval RUN afterwards)")]
        return self.cfg.to_yaml() + "".join(f"# plan: {line}\n" for line in lines)


def make_plan(cfg: Config, *, device: bool = True) -> RunPlan:
    """Check a config without loading its data and plan the run; raises ConfigError (one line naming the
    key and the fix) at the first problem. device=False skips the device check (a suite's configs are
    checked on the machine that submits them, not the one that trains them)."""
    # names the config converter does not know (it checks data.name, model.name and train.trackers)
    loss = LOSSES.info(cfg.train.loss)
    if cfg.train.diffaug.strip() and "" in (n.strip() for n in cfg.train.diffaug.split(",")):
        raise ConfigError(f"train.diffaug={cfg.train.diffaug!r} has an empty name between commas; write names such "
                          f"as color,translation,cutout (\"\" for none)")
    parse_policy(cfg.train.diffaug)
    for m in cfg.eval.metrics:
        METRICS.entry(m)
    model, dataset = MODELS.info(cfg.model.name), DATASETS.info(cfg.data.name)
    # the recipe against what the model reads
    t = cfg.train
    if t.mismatch and not model.conditional:
        raise ConfigError(f"train.mismatch={t.mismatch:g} shows D real images with a wrong label, but model "
                          f"{cfg.model.name!r} reads no label; set it to 0 or use a conditional model (cdcgan)")
    if t.mismatch and LOSSES.get(t.loss).both_sides:
        raise ConfigError(f"train.mismatch={t.mismatch:g} adds D's loss on real images with a wrong label, one side "
                          f"at a time, but loss {t.loss!r} compares the two sides; set train.mismatch=0 or use bce, "
                          f"hinge or lsgan")
    if cfg.model.d_label != "planes" and not model.conditional:
        raise ConfigError(f"model.d_label={cfg.model.d_label} is how a conditional D reads the label, but model "
                          f"{cfg.model.name!r} has no label input; remove it or use a conditional model (cdcgan)")
    if not loss.soft_targets and list(t.real_label_range) != [1.0, 1.0]:
        raise ConfigError(f"train.real_label_range={list(t.real_label_range)}: loss {t.loss!r} takes only hard "
                          f"targets; set [1.0, 1.0] (label_flip still applies) or use bce or lsgan")
    # the data files, then the model against the data set's record (where the record knows the size)
    for key, p in (("data.path", cfg.data.path), ("data.test_path", cfg.data.test_path)):
        if p and not Path(p).exists():
            raise ConfigError(f"data file {p!r} not found; check {key} (relative paths start at {Path.cwd()})")
    sizes = dataset.resolutions
    res = cfg.data.resolution or (sizes[0] if len(sizes) == 1 else None)
    if res is not None and dataset.labelled is not None:
        check_compatible(cfg.model.name, DataSpec(cfg.data.name, res, dataset.channels or 1,
                                                  1 if dataset.labelled else 0, []))
    evaluation = EvalPlan(metrics=tuple(cfg.eval.metrics), samples=cfg.eval.samples, primary=cfg.eval.primary,
                          every=cfg.eval.every, every_steps=cfg.eval.every_steps, every_seconds=cfg.eval.every_seconds)
    _check_evaluation(cfg, evaluation, labelled=dataset.labelled is not False, draws_class=model.draws_class)
    if device:
        pick_device(t.device)
    return RunPlan(cfg=cfg, dataset=dataset, model=model, recipe=Recipe.of(t), budget=Budget.of(cfg),
                   evaluation=evaluation)


def preflight(cfg: Config, data: Splits) -> RunPlan:
    """Every check a run makes before it writes anything (the device, the loaded data, the model built for
    it and the plugins' contracts, the evaluation), on the CPU and without a folder: a suite runs it on each
    distinct config before the first run starts, so bad data stops the suite at once, not one run at a
    time. data: cfg.data loaded (a suite's configs share a few data sets)."""
    plan = make_plan(cfg).resolve(data, device=torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        plan.check_plugins(build_model(cfg.model, plan.spec), data)
    return plan


def _check_evaluation(cfg: Config, ev: EvalPlan, *, labelled: bool, draws_class: bool,
                      test_images: Optional[int] = None, classes: int = 0) -> None:
    """eval.metrics of an in-training evaluation must apply to the model and data (a suite's
    eval.metrics=[..., cond_acc] on an unconditional model would otherwise fail at its first evaluation,
    minutes in), and eval.primary must be a lower-is-better metric (it picks best.pt, lowest first)."""
    if not ev.on:
        return
    if not ev.metrics:
        raise ConfigError("eval.metrics is empty, but the run evaluates during training (eval.every, every_steps or "
                          "every_seconds); list the metrics to compute, such as [fd, kid], or turn those off")
    try:
        check_metrics(ev.metrics, labelled=labelled, draws_class=draws_class)
    except ConfigError as e:
        raise ConfigError(f"eval.metrics: {e} (list only those; a suite can set eval.metrics per run)") from None
    lower = [e.name for e in METRICS if e.info.lower_is_better]
    if ev.primary not in lower:
        raise ConfigError(f"eval.primary: {ev.primary!r} is not the name of a lower-is-better metric; use "
                          f"one of {', '.join(lower)}")
    if draws_class and ev.samples < classes:  # a class-aware evaluation draws samples // classes of each
        raise ConfigError(f"eval.samples={ev.samples} is fewer than the {classes} classes of data set "
                          f"{cfg.data.name!r}, of which the evaluation draws as many each; raise eval.samples")
    if test_images == 0:
        raise ConfigError(f"eval.every/every_steps/every_seconds: the run evaluates during training, but data set "
                          f"{cfg.data.name!r} has no test images to compare with; give it a test split "
                          f"(data.test_fraction, data.test_path) or turn in-training evaluation off")


def _check_batches(cfg: Config, data: Splits, *, per_class: bool, ranks: int, resuming: bool = False) -> None:
    """Batches the loaded data can give: every class has images for a per-class model, a batch is not
    larger than the data (it would silently train smaller batches than config.yaml says), and under
    torchrun the global batch splits evenly among the processes."""
    train, batch = data.train, cfg.train.batch_size
    if batch % ranks:
        raise ConfigError(f"train.batch_size is the global batch ({batch}) and must split evenly among the {ranks} "
                          f"processes; use a multiple of {ranks}")
    if per_class:
        counts = torch.bincount(train.y, minlength=train.num_classes).tolist()
        empty = [train.classes[c] for c, n in enumerate(counts) if n == 0]
        if empty:
            raise ConfigError(f"class {', '.join(repr(c) for c in empty)} has no training images, and a per-class "
                              f"model trains one pair per class; give every class images, or drop that class")
    elif batch > len(train) and not resuming:
        raise ConfigError(f"train.batch_size={batch} is larger than the {len(train)} training images of data set "
                          f"{cfg.data.name!r}; set train.batch_size to at most {len(train)}")


def _kind(model: ModelInfo) -> str:
    return "per-class pairs" if model.per_class else "conditional" if model.conditional else "unconditional"


def _budget_line(b: Budget) -> str:
    steps = f"{b.max_steps} steps" if b.max_steps else f"{b.epochs} epochs"
    return steps + (f", at most {b.max_minutes:g} training minutes" if b.max_minutes else "")


def _when(ev: EvalPlan) -> str:
    parts = [f"every {ev.every} epochs" if ev.every else "", f"every {ev.every_steps} steps" if ev.every_steps else "",
             f"every {ev.every_seconds:g} s of training" if ev.every_seconds else ""]
    return ", " + ", ".join(p for p in parts if p) + (f"; best.pt by {ev.primary}" if ev.keeps_best else "")
