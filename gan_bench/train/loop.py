"""The one trainer: importable, used by the CLI, tests and suites alike.

train() is a plan (plan.py: the config checked and resolved once) and three parts: build (setup.py:
data, model, speed switches, optimisers, batches, resume), the loop
below (steps, records, snapshots, evaluation, checkpoints, signals), and finish (finish.py: GIFs,
plots, the summary of what was measured).
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
from pathlib import Path
from typing import Callable, Optional

import torch

from gan_bench import threads
from gan_bench.config import Config
from gan_bench.data import Splits
from gan_bench.errors import ConfigError, GanBenchError, Interrupted, TrainingFailed
from gan_bench.metrics.evaluate import in_training
from gan_bench.plugins import PluginError, plugin_call
from gan_bench.run.sampling import fixed_inputs, generate
from gan_bench.run.world import PeerLost, first_line, joined, peer_lost, pick_device
from gan_bench.train.finish import finish
from gan_bench.train.speed import AsyncScalars
from gan_bench.train.plan import RunPlan, make_plan
from gan_bench.train.schedule import Schedule
from gan_bench.train.setup import Training, build
from gan_bench.train.step import StepOutput, gan_step
from gan_bench.train.trackers import SCALARS, Trackers
from gan_bench.train.watch import Watch

# one metrics.jsonl line, in this order
RECORD_KEYS = ("step", "epoch", "loss_d", "loss_g", "d_x", "d_g_z", "sigma", "sec_per_step", "img_per_sec")


def train(plan: RunPlan | Config, *, run_dir: Optional[Path] = None, resume: Optional[Path] = None,
          data: Optional[Splits] = None, on_eval: Optional[Callable[[int], Optional[str]]] = None) -> Path:
    """Train one run of a plan (make_plan's; a Config is planned here). A new run folder is made under
    cfg.out (or at run_dir) unless resuming one. data: the plan's data set, loaded already (a sweep's
    worker loads it once for all its trials). on_eval(step), asked after each in-training evaluation (a
    sweep's pruner), returns None to go on or the reason to end the run there, completed. Returns the
    folder. Raises TrainingFailed (the run stopped on its own) or Interrupted (a signal).

    Under torchrun every process calls this with the same arguments and trains a shard of each global
    batch (train/distributed.py); rank 0 alone writes the run folder, whose path every rank returns.
    """
    plan = make_plan(plan) if isinstance(plan, Config) else plan
    with joined(pick_device(plan.cfg.train.device)) as (world, device), contextlib.ExitStack() as cpu:
        t = build(plan, device=device, world=world, run_dir=run_dir, resume=resume, data=data)
        if device.type == "cpu":  # the cores shared out among the trainings on this machine (threads.py)
            cpu.enter_context(threads.share(threads=t.threads))
        loop = Loop(t, on_eval=on_eval)
        try:
            status, reason = loop.run()
            if world.is_main:
                summary = finish(t, status=status, reason=reason, seconds=loop.train_time(),
                                 warnings=sorted(loop.watch.warned), out_of_time=loop.budget_spent)
                loop.trackers.finish(summary)
        finally:
            loop.close()
    if status == "failed":
        kept = (f"the last good checkpoint is kept in {t.run.checkpoint_path().parent}"
                if t.run.has_checkpoint() else "no checkpoint was written before it")
        raise TrainingFailed(f"run stopped: {reason}; {kept}")
    if status == "interrupted":
        raise Interrupted(loop.stop[0], t.run.path)
    # a signal after the last step (while the grids, GIFs and summary were written) changes nothing: the
    # run is complete and says so; under torchrun that is the SIGTERM sent when a peer exits first
    return t.run.path


class Unevaluable(ConfigError):
    """An in-training evaluation that cannot be computed on this run's data (Loop.run decides what follows)."""


class Loop:
    """The training loop of one built run: steps until t.total, a signal, or a failure."""

    def __init__(self, t: Training, *, on_eval: Optional[Callable[[int], Optional[str]]] = None) -> None:
        self.t, cfg, main = t, t.cfg, t.world.is_main
        self.on_eval, self.stopped_by_eval = on_eval, None  # train()'s on_eval, and the reason it gave
        self.z_fix, self.y_fix, self.nrow = fixed_inputs(t.gan, cfg, t.device)
        self.labels = t.data.spec.classes if t.plan.model.draws_class else None  # one class per grid row
        try:
            self.trackers = Trackers.start(t.run, cfg, resumed=t.step > 0) if main else Trackers()
        except GanBenchError:
            if not t.run.has_checkpoint():  # a new run that could not start: no folder left behind
                t.run.discard()
            raise
        self.watch = Watch(t.run)
        self.scalars = AsyncScalars(t.device if t.speed.async_log else torch.device("cpu"))
        self.failure: list[str] = []
        self.stop: list[int] = []      # signals received; the loop stops at the end of the step
        self.clock = Schedule(t.plan, t.world, prior_seconds=t.prior_time, steps_per_epoch=t.source.steps_per_epoch)
        self.budget_spent = False  # train.max_minutes ran out: the run ends, completed, before t.total
        # a signal inherited as ignored stays ignored: nohup, or a shell's background job, which a Ctrl-C at
        # the terminal must not stop (what Python does for SIGINT before any handler is installed)
        self.handlers = {s: signal.signal(s, lambda signum, _f: self.stop.append(signum))
                         for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not signal.SIG_IGN}
        self.bar = _progress(cfg, t.total, t.step, show=main)
        if main and t.plan.evaluation.on and not t.plan.evaluation.keeps_best:
            # not an error: a run that measures only precision, say, has no use for best.pt
            self.watch.warn(t.step, "no_best_checkpoint", f"eval.primary={cfg.eval.primary} is not in eval.metrics "
                            f"{list(cfg.eval.metrics)}, so no best.pt is kept; add it to eval.metrics to keep one",
                            self.bar.write)

    def train_time(self) -> float:
        """Training seconds, this run's and before its resume; in-training evaluations left out."""
        return self.clock.seconds()

    def run(self) -> tuple[str, Optional[str]]:
        """(status, reason): completed, interrupted (self.stop holds the signal) or failed."""
        t = self.t
        # training seconds (the clock), so a record's sec_per_step does not include an evaluation
        self.last_log = (self.clock.seconds(), t.step)
        try:
            t.gan.train()
            while t.step < t.total:
                epoch, i = divmod(t.step, t.source.steps_per_epoch)
                x, y = t.source.batch(epoch, i)
                try:  # a plugin's G, D, loss or augmentation that raises is one PluginError line
                    with plugin_call(f"step {t.step + 1}", allow=(torch.cuda.OutOfMemoryError,)):
                        out = gan_step(t.plan.recipe, t.step_gan, t.opt_d, t.opt_g, t.speed.input(x), y, step=t.step)
                except torch.cuda.OutOfMemoryError:
                    if t.world.distributed:  # the other ranks wait in a collective: end the job (torchrun stops them)
                        raise
                    return self.flushed("failed", _out_of_memory(t.cfg, t.data.spec.resolution, t.step + 1))
                t.step += 1
                images = len(x) * t.world.size  # images per step, all ranks (b * K for per-class pairs)
                t.images_seen += images
                if t.ema is not None:
                    t.ema.update(t.gan.G, t.step)
                self.bar.update(1)
                outcome = self.after_step(out, epoch=epoch, images=images)
                if outcome is not None:
                    return self.flushed(*outcome)
        except PluginError as e:  # its contract held on the plan's tiny batch, then it failed mid-run (a step,
            if t.world.distributed:  # an in-training metric): the run ends failed, its records and checkpoints kept
                raise
            return self.flushed("failed", str(e))
        except Unevaluable as e:  # found before a checkpoint: a config error, and no run folder is left; after
            if t.world.distributed or t.run.has_checkpoint():  # one, the run ends failed and keeps what it wrote
                if t.world.distributed:
                    raise
                return self.flushed("failed", f"the in-training evaluation at step {t.step}: {e}")
            self.restore_signals()
            t.run.discard()
            raise ConfigError(str(e)) from None
        except BaseException as e:
            self.restore_signals()
            if t.world.distributed and peer_lost(e):
                raise PeerLost(
                    f"rank {t.world.rank}: another process of this torchrun job died or stopped answering "
                    f"({first_line(e)}); the checkpoints in {t.run.checkpoint_path().parent} are intact: resume "
                    f"with `torchrun ... -m gan_bench run --resume {t.run.path}`") from None
            raise
        finally:
            self.bar.close()
        return self.flushed("completed", None)

    def after_step(self, out: StepOutput, *, epoch: int, images: int) -> Optional[tuple[str, Optional[str]]]:
        """What the end of a step does, in order: the time budget, the record, the ranks' agreement on
        health and signals, a snapshot, an evaluation, a checkpoint. Returns None to go on, or the
        (status, reason) the run ends with."""
        t, cfg = self.t, self.t.cfg
        self.budget_spent = self.clock.out_of_time()
        last = t.step == t.total or self.budget_spent
        # ---- records: scalars leave the device asynchronously on CUDA (no sync in the loop) ------------
        if t.step % cfg.train.log_every == 0 or last:
            self.log(out, epoch=epoch, images=images)
        healthy, stopping = self.flush(), bool(self.stop)
        if t.world.distributed:  # a signal or a NaN seen by one rank stops every rank at this same step
            healthy, stopping = t.world.agree(healthy, stopping)
            if stopping and not self.stop:
                self.stop.append(signal.SIGTERM)
        if not healthy:  # the reason is the failure flush() recorded, or another process's
            return "failed", None if self.failure else "another process of this torchrun job saw a non-finite loss"
        end_of_epoch = t.step % t.source.steps_per_epoch == 0 or last
        if end_of_epoch and ((epoch + 1) % cfg.train.snapshot_every == 0 or last):
            self.snapshot(epoch + 1)
        if self.clock.eval_due(t.step, last=last):
            self.evaluate()
            if self.on_eval is not None:  # rank 0 asks; every rank stops at the same step
                reason = self.on_eval(t.step) if t.world.is_main else None
                self.stopped_by_eval = t.world.broadcast(reason)
        if end_of_epoch or t.step % cfg.train.checkpoint_every == 0 or stopping or self.stopped_by_eval:
            if not self.flush(wait=True):  # records up to the checkpoint are on disk before it is
                return "failed", None
            if not all(torch.isfinite(p).all() for p in t.gan.parameters()):
                return "failed", f"non-finite weights at step {t.step}"
            self.checkpoint()
        if stopping:
            return "interrupted", None
        if self.stopped_by_eval:
            return "completed", self.stopped_by_eval
        if self.budget_spent:
            return "completed", (f"time budget: train.max_minutes={cfg.train.max_minutes:g} reached at step {t.step} "
                                 f"of {t.total}")
        return None

    def log(self, out: StepOutput, *, epoch: int, images: int) -> None:
        """Queue this step's record (its values reach the host without a synchronisation on CUDA)."""
        t = self.t
        now, (then, then_step) = self.clock.seconds(), self.last_log
        dt = (now - then) / max(1, t.step - then_step)
        self.last_log = (now, t.step)
        values = dict(loss_d=out.loss_d, loss_g=out.loss_g, d_x=torch.sigmoid(out.d_real).mean(),
                      d_g_z=torch.sigmoid(out.d_fake).mean())
        if t.world.distributed:  # means over equal shards: the global batch's numbers
            values = dict(zip(values, t.world.mean(torch.stack([v.detach().float() for v in values.values()]))))
        self.scalars.push({"step": t.step, "epoch": epoch + 1, "sigma": t.plan.recipe.sigma(t.step - 1),
                           "sec_per_step": dt, "img_per_sec": images / dt if dt > 0 else None}, **values)

    def flushed(self, status: str, reason: Optional[str]) -> tuple[str, Optional[str]]:
        """The run's end: every record written (a failure found while writing them wins)."""
        if self.failure or (status != "failed" and not self.flush(wait=True)):
            return "failed", self.failure[0]
        return status, reason

    def close(self) -> None:
        """Restored only after finish(): a second Ctrl-C during it still gets a summary written."""
        self.restore_signals()
        self.trackers.close()

    def restore_signals(self) -> None:
        for s, h in self.handlers.items():
            signal.signal(s, h)

    # ---- what the loop writes (rank 0) -----------------------------------------------------------

    def checkpoint(self) -> None:
        if self.t.world.is_main:
            self.t.run.save_checkpoint(self.t.checkpoint_payload(self.train_time()))

    def snapshot(self, epoch: int) -> None:
        if not self.t.world.is_main:
            return
        images = generate(self.t.shown(), self.z_fix, self.y_fix)
        self.t.run.save_snapshot(epoch, images, nrow=self.nrow, labels=self.labels)
        self.trackers.image("samples", self.t.run.snapshot_path(epoch), self.t.step)
        self.watch.samples(self.t.step, images, self.bar.write)

    def evaluate(self) -> None:
        """eval.every epochs, every_steps, every_seconds: metrics on the current G; the best by
        eval.primary -> best.pt. With train.ema, the raw G's lines (g: raw) are written, then the
        average's (g: ema), which picks the best. Every line records the training seconds and images
        seen at this step (the curves of quality against time); the evaluation's own time is not
        counted as training. Every rank takes part (generation and features are sharded); rank 0 writes."""
        t = self.t
        at = {"train_seconds": round(self.train_time(), 3), "images_seen": t.images_seen}
        # evaluation draws its own noise; fork_rng keeps the training trajectory (and resume) unchanged
        with self.clock.pause(), torch.random.fork_rng(devices=[t.device] if t.device.type == "cuda" else []):
            try:
                if t.ema is not None:
                    in_training(t.gan, t.data, t.cfg, t.run, t.step, g="raw", at=at)
                values = in_training(t.shown(), t.data, t.cfg, t.run, t.step, g="ema" if t.ema is not None else None,
                                     at=at)
            except PluginError:
                raise
            except ConfigError as e:  # eval.metrics or eval.samples this data cannot serve (a test split too small
                raise Unevaluable(str(e)) from None  # for fd): known only once a metric asks for its images
        self.trackers.scalars({f"eval/{k}": v for k, v in values.items()}, t.step)
        value = values.get(t.cfg.eval.primary)
        if value is not None and value < t.best:
            t.best = value
            if t.world.is_main:
                self.checkpoint()
                t.run.keep_best()

    def flush(self, wait: bool = False) -> bool:
        """Write the records whose values reached the host; False on a non-finite loss."""
        t = self.t
        for rec in self.scalars.ready(wait=wait):
            if not (math.isfinite(rec["loss_d"]) and math.isfinite(rec["loss_g"])):
                self.failure.append(f"non-finite loss at step {rec['step']} (loss_d={rec['loss_d']}, "
                                    f"loss_g={rec['loss_g']})")
                return False
            if not t.world.is_main:
                continue
            rec = {k: rec[k] for k in RECORD_KEYS}
            t.run.append("metrics", rec)
            self.watch.record(rec, self.bar.write)
            self.bar.set_postfix(epoch=rec["epoch"], D=f"{rec['loss_d']:.3f}", G=f"{rec['loss_g']:.3f}",
                                 img_s=f"{rec['img_per_sec'] or 0:.0f}", refresh=False)  # drawn at the next update
            self.trackers.scalars({k: rec[k] for k in SCALARS if rec[k] is not None}, rec["step"])
        return True


def _out_of_memory(cfg: Config, resolution: int, step: int) -> str:
    """The reason a run that ran out of GPU memory gives, with what to change."""
    return (f"out of GPU memory at step {step} (batch {cfg.train.batch_size}, {resolution}x{resolution}, "
            f"model width {cfg.model.width}): lower train.batch_size or model.width")


def _progress(cfg: Config, total: int, initial: int, *, show: bool = True):
    from tqdm import tqdm

    # into a log file or a pipe (nohup, a cluster job) a bar redrawn ten times a second is megabytes of
    # carriage returns: there, one update every 30 s
    return tqdm(total=total, initial=initial, desc=cfg.name, unit="step", disable=not (cfg.train.progress and show),
                dynamic_ncols=True, file=sys.stderr, mininterval=0.1 if sys.stderr.isatty() else 30)

