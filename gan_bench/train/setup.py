"""The trainer, part 1: build everything a run trains with (data, model, levers, optimisers, batches,
the resumed state). Benchmarks and tests build through the same function the trainer uses.
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from gan_bench.config import Config
from gan_bench.data import Splits, load_data
from gan_bench.errors import ConfigError
from gan_bench.metrics.registry import METRICS, check_metrics
from gan_bench.models import GAN, MODELS, build_model
from gan_bench.run import RunFolder
from gan_bench.run.checkpoint import EMA_G, load_weights, rng_state, set_rng_state
from gan_bench.run.sampling import draws_class
from gan_bench.run.world import World, pick_device
from gan_bench.train import distributed, memory
from gan_bench.train.augment import parse_policy
from gan_bench.train.batches import BatchSource
from gan_bench.train.ema import GeneratorAverage
from gan_bench.train.levers import Levers, adam, apply_levers, match_state_layout
from gan_bench.train.losses import LOSSES
from gan_bench.train.schedule import evaluates
from gan_bench.train.trackers import check_trackers


@dataclass
class Training:
    """One run's training state. The loop advances step, images_seen and best; the checkpoint holds it."""

    cfg: Config
    world: World
    device: torch.device
    data: Splits
    gan: GAN                  # single-process modules: what checkpoints hold and sampling uses
    step_gan: GAN             # what the step runs: G and D in DDP under torchrun, else `gan` itself
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    levers: Levers
    source: BatchSource
    run: Optional[RunFolder]  # None when built without a folder (benchmarks, tests of the step)
    total: int                # the step the run ends at
    cpu_peak_reset: bool      # whether the CPU peak in the summary is this run's own (memory.py)
    ema: Optional[GeneratorAverage] = None  # train.ema: the average of gan.G that snapshots and sampling use
    step: int = 0
    images_seen: int = 0      # images drawn for training so far, all ranks, counted batch by batch
    prior_time: float = 0.0   # training seconds before the resume
    best: float = math.inf    # eval.primary of checkpoints/best.pt (lower is better)

    @property
    def per_pair(self) -> int:
        """Pairs a step trains at once: the losses it returns are sums over them."""
        return self.gan.num_classes if self.gan.per_class else 1

    def shown(self) -> GAN:
        """The model snapshots, evaluation and the best checkpoint go by: G's average (its statistics
        brought up to date) when train.ema is on, else the model itself."""
        if self.ema is None:
            return self.gan
        self.ema.refresh(self.gan.G, batch=self.source.global_batch_images)  # statistics at G's training batch
        return self.ema.view

    def checkpoint_payload(self, train_time: float) -> dict[str, Any]:
        payload = {"G": self.gan.G.state_dict(), "D": self.gan.D.state_dict(), "opt_g": self.opt_g.state_dict(),
                   "opt_d": self.opt_d.state_dict(), "step": self.step, "images_seen": self.images_seen,
                   "rng": rng_state(self.device), "config_hash": self.cfg.hash(), "config": self.cfg.to_dict(),
                   "spec": vars(self.data.spec), "train_time": train_time, "best": self.best}
        if self.ema is not None:
            payload[EMA_G] = self.shown().G.state_dict()  # statistics recomputed: what sampling loads
        return payload


def build(cfg: Config, *, device: torch.device, world: World = World(), run_dir: Optional[Path] = None,
          resume: Optional[Path] = None, folder: bool = True, data: Optional[Splits] = None) -> Training:
    """Everything a run needs, in the trainer's order of random draws. folder=False: no run folder is
    made or read (a benchmark's or a test's training state); otherwise a new one under cfg.out (or
    run_dir), or the resumed one with its checkpoint loaded. Nothing is written before every check
    has passed, so bad input leaves no half run folder behind. data: cfg.data, loaded already."""
    check_levers(cfg)
    cpu_peak_reset = memory.reset_peaks(device)  # this run's peaks, not those of earlier runs in the process
    torch.manual_seed(cfg.train.seed), np.random.seed(cfg.train.seed), random.seed(cfg.train.seed)
    data = load_data(cfg.data) if data is None else data
    gan = build_model(cfg.model, data.spec).to(device)
    levers = Levers.for_device(device, compile=cfg.train.compile) if cfg.train.fast else Levers()
    # the average is copied before compiling: it runs eagerly, only for pictures and metrics
    ema = GeneratorAverage(gan, beta=cfg.train.ema, rampup=cfg.train.ema_rampup) if cfg.train.ema else None
    apply_levers(gan, levers)  # in place: parameters, and state-dict keys, stay the same
    if ema is not None:
        levers.layout(ema.G)
    opt_g = adam(gan.G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas, levers=levers)
    opt_d = adam(gan.D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas, levers=levers)
    source = BatchSource(data.train, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                         per_class=gan.per_class, device=device, rank=world.rank, ranks=world.size)
    if not source.resident and world.is_main:
        print(f"gan-bench: the training data ({source.nbytes / 2**30:.1f} GiB) does not fit beside training "
              f"on {device}: each batch is copied from host memory (slower)", file=sys.stderr)
    total = source.steps_per_epoch * cfg.train.epochs
    total = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
    # the registry's record was checked first (check_levers); what decides is the built model and data
    check_eval(cfg, labelled=data.train.labelled, class_model=draws_class(gan))
    if world.is_main:
        check_trackers(cfg)  # before the run folder exists: a missing package leaves nothing behind
    t = Training(cfg=cfg, world=world, device=device, data=data, gan=gan, step_gan=gan, opt_g=opt_g, opt_d=opt_d,
                 levers=levers, source=source, run=None, total=total, cpu_peak_reset=cpu_peak_reset, ema=ema)
    if resume is not None:
        t.run = RunFolder(resume)
        _restore(t, world.on_main(lambda: t.run.load_checkpoint(cfg)))  # rank 0 reads, every rank restores
        # `run --resume --set train.epochs=N` (cli.cmd_run allows the budget keys only)
        if world.on_main(lambda: t.run.read_config().hash() != cfg.hash()):
            _check_budget_left(t)
            if world.is_main:
                t.run.raise_budget(cfg, step=t.step)
        if world.is_main:
            t.run.remove_stale_temp_files()
            t.run.truncate_records(max_step=t.step)  # what will be logged again
    elif folder:
        t.run = world.on_main(lambda: _new_run(cfg, run_dir))  # every rank learns rank 0's folder
    t.step_gan = distributed.data_parallel(gan, world, sync_bn=cfg.train.sync_bn)
    return t


def preflight(cfg: Config, data: Optional[Splits] = None) -> None:
    """Every check a run makes before it writes anything (the device, its data loaded and read, the model
    built for it, the levers, the evaluation), on the CPU and without a folder: a suite runs it on each
    distinct config before the first run starts, so bad data stops the suite at once, not one run at a
    time. data: cfg.data already loaded (a suite's configs share a few data sets)."""
    pick_device(cfg.train.device)
    with torch.random.fork_rng(devices=[]):  # build() seeds the global RNGs; the caller's are kept
        state = np.random.get_state(), random.getstate()
        try:
            build(cfg, device=torch.device("cpu"), folder=False, data=data)
        finally:
            np.random.set_state(state[0]), random.setstate(state[1])


def check_eval(cfg: Config, *, labelled: bool = True, class_model: Optional[bool] = None) -> None:
    """eval.metrics of an in-training evaluation must apply to the model (and, when known, the data):
    a suite's eval.metrics=[..., cond_acc] on an unconditional model would otherwise fail at its first
    evaluation, minutes in. labelled: the data set's (True where not loaded yet, as in a suite's plan);
    class_model: the built model's (None: the registry record's, before it is built)."""
    if evaluates(cfg.eval):
        cm = MODELS.info(cfg.model.name).draws_class if class_model is None else class_model
        try:
            check_metrics(cfg.eval.metrics, labelled=labelled, class_model=cm)
        except ConfigError as e:
            raise ConfigError(f"eval.metrics: {e} (list only those; a suite can set eval.metrics per run)") from None
        # eval.primary picks best.pt, lowest first, by metric name (train/loop.py): any other name (a
        # headline key such as kid_mean, a higher-is-better metric) would silently never save one
        lower = [e.name for e in METRICS if e.info.lower_is_better]
        if cfg.eval.primary not in lower:
            raise ConfigError(f"eval.primary: {cfg.eval.primary!r} is not the name of a lower-is-better metric; use "
                              f"one of {', '.join(lower)}")


def check_levers(cfg: Config) -> None:
    """The trainer's registry names in a config (train.loss, train.diffaug), what the loss allows and the
    in-training evaluation's metrics: checked before anything runs or is written."""
    info = LOSSES.info(cfg.train.loss)
    parse_policy(cfg.train.diffaug)
    check_eval(cfg)
    if cfg.train.mismatch and not MODELS.info(cfg.model.name).conditional:
        raise ConfigError(f"train.mismatch={cfg.train.mismatch:g} shows D real images with a wrong label, but model "
                          f"{cfg.model.name!r} reads no label; set it to 0 or use a conditional model (cdcgan)")
    if not info.soft_targets and list(cfg.train.real_label_range) != [1.0, 1.0]:
        raise ConfigError(f"train.real_label_range={list(cfg.train.real_label_range)}: loss {cfg.train.loss!r} "
                          f"takes only hard targets; set [1.0, 1.0] (label_flip still applies) or use bce or lsgan")


def _restore(t: Training, ckpt: dict[str, Any]) -> None:
    load_weights(t.gan, ckpt, model=t.cfg.model.name)
    if t.ema is not None:
        t.ema.load_state_dict(ckpt[EMA_G])
    t.opt_g.load_state_dict(ckpt["opt_g"]), t.opt_d.load_state_dict(ckpt["opt_d"])
    match_state_layout(t.opt_g), match_state_layout(t.opt_d)
    t.step, t.prior_time, t.best = ckpt["step"], ckpt.get("train_time", 0.0), ckpt.get("best", math.inf)
    # checkpoints before images_seen was recorded: every earlier step drew a full batch
    t.images_seen = ckpt.get("images_seen", t.step * t.source.global_batch_images)
    set_rng_state(ckpt["rng"], t.device)


def _check_budget_left(t: Training) -> None:
    """A raised budget must leave steps and minutes to train: one --set below what the run has trained
    would end it at once, rewriting its summary for nothing."""
    minutes = t.cfg.train.max_minutes
    if t.step >= t.total:
        raise ConfigError(f"the new budget is {t.total} steps and the run has trained {t.step}: set train.epochs "
                          f"({t.source.steps_per_epoch} steps each) or train.max_steps above that")
    if minutes and t.prior_time >= minutes * 60:
        raise ConfigError(f"the run has trained {t.prior_time / 60:.1f} minutes and its budget is train.max_minutes="
                          f"{minutes:g}: to train longer, raise it above {t.prior_time / 60:.1f}")


def _new_run(cfg: Config, run_dir: Optional[Path]) -> RunFolder:
    run = RunFolder(run_dir).prepare() if run_dir is not None else RunFolder.create(cfg.out, cfg.name)
    run.write_config(cfg)
    return run

