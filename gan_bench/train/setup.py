"""The trainer, part 1: build everything a run trains with from its plan (data, model, speed switches,
optimisers, batches, the resumed state). Benchmarks and tests build through the same function the
trainer uses.
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
from gan_bench.models import GAN, build_model
from gan_bench.run import RunFolder
from gan_bench.run.checkpoint import EMA_G, load_weights, rng_state, set_rng_state
from gan_bench.run.world import World
from gan_bench.train import distributed, memory
from gan_bench.train.batches import BatchSource
from gan_bench.train.budget import Budget
from gan_bench.train.ema import GeneratorAverage
from gan_bench.train.plan import RunPlan, make_plan
from gan_bench.train.speed import SpeedSwitches, adam, apply_speed, match_state_layout

@dataclass
class Training:
    """One run's training state. The loop advances step, images_seen and best; the checkpoint holds it."""

    plan: RunPlan             # resolved: the config, recipe, budget, evaluation and speed switches
    data: Splits
    gan: GAN                  # single-process modules: what checkpoints hold and sampling uses
    step_gan: GAN             # what the step runs: G and D in DDP under torchrun, else `gan` itself
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    source: BatchSource
    run: Optional[RunFolder]  # None when built without a folder (benchmarks, tests of the step)
    total: int                # the step the run ends at
    cpu_peak_reset: bool      # whether the CPU peak in the summary is this run's own (memory.py)
    ema: Optional[GeneratorAverage] = None  # train.ema: the average of gan.G that snapshots and sampling use
    step: int = 0
    images_seen: int = 0      # images drawn for training so far, all ranks, counted batch by batch
    prior_time: float = 0.0   # training seconds before the resume
    best: float = math.inf    # eval.primary of checkpoints/best.pt (lower is better)
    threads: Optional[int] = None  # a resumed CPU run's threads, as its checkpoint recorded (threads.py)

    @property
    def cfg(self) -> Config:
        return self.plan.cfg

    @property
    def world(self) -> World:
        return self.plan.world

    @property
    def device(self) -> torch.device:
        return self.plan.device

    @property
    def speed(self) -> SpeedSwitches:
        return self.plan.speed

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
                   "spec": vars(self.data.spec), "train_time": train_time, "best": self.best,
                   # the order of a CPU's float sums follows the threads: a resume takes the same count
                   "threads": torch.get_num_threads() if self.device.type == "cpu" else None}
        if self.ema is not None:
            payload[EMA_G] = self.shown().G.state_dict()  # statistics recomputed: what sampling loads
        return payload


def build(plan: RunPlan | Config, *, device: torch.device, world: World = World(), run_dir: Optional[Path] = None,
          resume: Optional[Path] = None, folder: bool = True, data: Optional[Splits] = None) -> Training:
    """Everything a run needs, in the trainer's order of random draws. plan: make_plan's (a Config is
    planned here). folder=False: no run folder is made or read (a benchmark's or a test's training state);
    otherwise a new one under cfg.out (or run_dir), or the resumed one with its checkpoint loaded. Nothing
    is written before the plan is resolved, so bad input leaves no half run folder behind. data: the
    plan's data set, loaded already."""
    plan = make_plan(plan, device=False) if isinstance(plan, Config) else plan
    cfg = plan.cfg
    cpu_peak_reset = memory.reset_peaks(device)  # this run's peaks, not those of earlier runs in the process
    torch.manual_seed(cfg.train.seed), np.random.seed(cfg.train.seed), random.seed(cfg.train.seed)
    data = load_data(cfg.data) if data is None else data
    plan = plan.resolve(data, device=device, world=world, resuming=resume is not None)
    gan = build_model(cfg.model, plan.spec).to(device)
    plan.check_plugins(gan, data)  # before the run folder: a broken model, loss or augmentation is one line
    speed = plan.speed
    # the average is copied before compiling: it runs eagerly, only for pictures and metrics
    ema = GeneratorAverage(gan, beta=cfg.train.ema, rampup=cfg.train.ema_rampup) if cfg.train.ema else None
    apply_speed(gan, speed)  # in place: parameters, and state-dict keys, stay the same
    if ema is not None:
        speed.layout(ema.G)
    opt_g = adam(gan.G.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas, speed=speed)
    opt_d = adam(gan.D.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas, speed=speed)
    source = BatchSource(data.train, batch_size=cfg.train.batch_size, seed=cfg.train.seed,
                         per_class=gan.per_class, device=device, rank=world.rank, ranks=world.size)
    if not source.resident and world.is_main:
        print(f"gan-bench: the training data ({source.nbytes / 2**30:.1f} GiB) does not fit beside training "
              f"on {device}: each batch is copied from host memory (slower)", file=sys.stderr)
    total = plan.budget.total_steps(source.steps_per_epoch)
    t = Training(plan=plan, data=data, gan=gan, step_gan=gan, opt_g=opt_g, opt_d=opt_d, source=source, run=None,
                 total=total, cpu_peak_reset=cpu_peak_reset, ema=ema)
    if resume is not None:
        t.run = RunFolder(resume)
        _restore(t, world.on_main(lambda: t.run.load_checkpoint(cfg)))  # rank 0 reads, every rank restores
        # `run --resume --set train.epochs=N` (cli.cmd_run allows the budget keys only)
        if world.on_main(lambda: t.run.read_config().hash() != cfg.hash()):
            plan.budget.check_left(step=t.step, seconds=t.prior_time, steps_per_epoch=source.steps_per_epoch)
            if world.is_main:
                before = Budget.of(t.run.read_config())
                t.run.rewrite_budget(cfg, step=t.step, message=f"budget raised at step {t.step} from {before.text()} "
                                                                 f"to {plan.budget.text()}")
        if world.is_main:
            t.run.remove_stale_temp_files()
            t.run.truncate_records(max_step=t.step)  # what will be logged again
    elif folder:
        t.run = world.on_main(lambda: _new_run(cfg, run_dir))  # every rank learns rank 0's folder
    t.step_gan = distributed.data_parallel(gan, world, sync_bn=cfg.train.sync_bn)
    return t


def _restore(t: Training, ckpt: dict[str, Any]) -> None:
    load_weights(t.gan, ckpt, model=t.cfg.model.name)
    if t.ema is not None:
        t.ema.load_state_dict(ckpt[EMA_G])
    t.opt_g.load_state_dict(ckpt["opt_g"]), t.opt_d.load_state_dict(ckpt["opt_d"])
    match_state_layout(t.opt_g), match_state_layout(t.opt_d)
    t.step, t.prior_time, t.best = ckpt["step"], ckpt.get("train_time", 0.0), ckpt.get("best", math.inf)
    t.threads = ckpt.get("threads")
    # checkpoints before images_seen was recorded: every earlier step drew a full batch
    t.images_seen = ckpt.get("images_seen", t.step * t.source.global_batch_images)
    set_rng_state(ckpt["rng"], t.device)


def _new_run(cfg: Config, run_dir: Optional[Path]) -> RunFolder:
    home = Path(run_dir) if run_dir is not None else Path(cfg.out) / cfg.name
    made = [p for p in (home, *home.parents) if not p.exists()]  # the folders this run adds
    run = RunFolder(run_dir).prepare() if run_dir is not None else RunFolder.create(cfg.out, cfg.name)
    if made:  # everything under the outermost folder this run made is this run's
        run.made_from = made[-1]
    try:
        run.write_config(cfg)
    except BaseException:  # a full disk at config.yaml: no empty run folder, nor its parents, left behind
        if made or run_dir is None:  # a given folder that existed stays
            run.discard()
        raise
    return run

