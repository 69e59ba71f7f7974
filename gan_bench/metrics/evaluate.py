"""Evaluation entry points: evaluate() a generator, eval_run() a run folder, in_training() for the trainer.

Every result is one JSON line in the run's eval records (RunFolder):
  {"metric": "fd", "step": 1170, "checkpoint": "last", "samples": 10000,
   "classifier": "<fingerprint>", "classifier_test_acc": 0.948, "fd": 12.3,
   "info": {"kind": "domain", "key": "fd", "better": "lower", ...}}
"info" is what a report needs of the metric (contract.line_info), so reports read a plugin's lines without it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gan_bench.config import Config
from gan_bench.data import Splits, load_data
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.metrics.context import EvalContext, stderr_line
from gan_bench.metrics.contract import INFO, METRIC, check_metric_value, line_info
from gan_bench.metrics.registry import METRICS, NotApplicable, Skipped, check_metrics, inapplicable_reason
from gan_bench.models.base import GAN
from gan_bench.plugins import plugin_call
from gan_bench.run import RunFolder
from gan_bench.run.sampling import load_generator
from gan_bench.run.world import World, joined, pick_device

DEFAULT_SAMPLES = 10_000
CLASSIFIER_EPOCHS = 2


def default_cache_dir(cfg: Config) -> Path:
    """Where evaluation networks are cached: beside the downloaded data (data.root)."""
    return Path(cfg.data.root) / ".eval_nets"


def evaluate(gan: GAN, splits: Splits, *, metrics: Optional[Sequence[str]] = None, samples: int = DEFAULT_SAMPLES,
             seed: int = 0, device: str | torch.device = "cpu", cache_dir: Optional[Path] = None,
             inception_weights: Optional[Path] = None, classifier_epochs: int = CLASSIFIER_EPOCHS,
             log: Callable[[str], None] = stderr_line,
             skipped: Optional[Callable[[str], None]] = None) -> dict[str, dict[str, Any]]:
    """Compute metrics of `gan` against `splits` ({metric: its record without metric/step/checkpoint}).

    metrics None: every default metric that applies; the others are left out, and one that cannot
    run (Inception weights missing, a test split too small) is skipped with one line via `log`.
    Named metrics must apply (ConfigError otherwise), except the Inception ones, which are always
    skipped with one line when their weights are missing. `samples` images are generated (class-
    balanced, samples // K per class) with latents seeded by `seed`; too few for a metric is a
    ConfigError. The caller's RNG state is left as it was.
    """
    if samples < 1:
        raise ConfigError(f"--samples must be at least 1, got {samples}")
    device = torch.device(device)
    labelled, cm = splits.train.labelled, gan.draws_class
    explicit = metrics is not None
    if explicit:
        names = list(dict.fromkeys(metrics))
        for n in names:
            METRICS.entry(n)  # unknown name: ConfigError listing the valid ones
        check_metrics(names, labelled=labelled, draws_class=cm)
    else:
        names = [e.name for e in METRICS if e.info.default
                 and not inapplicable_reason(e.name, labelled=labelled, draws_class=cm)]
    ctx = EvalContext(gan, splits, samples, seed=seed, device=device, cache_dir=cache_dir,
                      inception_weights=inception_weights, classifier_epochs=classifier_epochs, log=log)
    return compute(ctx, names, explicit=explicit, skipped=skipped)


def compute(ctx: EvalContext, names: Sequence[str], *, explicit: bool,
            skipped: Optional[Callable[[str], None]] = None) -> dict[str, dict[str, Any]]:
    """The metrics `names` of one context ({metric: its record}), as evaluate() describes; also the
    loop of `gan-bench score`, whose context holds two image sets."""
    results: dict[str, dict[str, Any]] = {}
    said: set[str] = set()
    log = ctx.log
    with torch.random.fork_rng(devices=[ctx.device] if ctx.device.type == "cuda" else []):
        for name in names:
            entry = METRICS.entry(name)
            try:  # a plugin's metric that raises, or returns what no record can hold, is one line
                with plugin_call(f"metric {name!r}", entry.obj, expects=METRIC, allow=(Skipped, NotApplicable)):
                    numbers = entry.obj(ctx)
                check_metric_value(entry.info, numbers, name=name, fn=entry.obj)
            except Skipped as e:
                if str(e) not in said:  # the three Inception metrics share one line
                    (skipped or log)(str(e))
                    said.add(str(e))
                continue
            except NotApplicable as e:
                if explicit:
                    raise ConfigError(str(e)) from None
                log(f"{name} skipped: {e}")
                continue
            # (augment generates its own images: it never asks for the shared ones)
            record: dict[str, Any] = {"samples": len(ctx.fake)} if "fake" in vars(ctx) else {}
            if entry.info.uses_eval_network:
                record.update(classifier=ctx.classifier.fingerprint, classifier_test_acc=ctx.classifier.test_acc)
            results[name] = {**record, **numbers}
    return results


def headline(name: str, record: dict[str, Any]) -> float:
    """The number a metric is tracked by (its registry `key`), e.g. kid -> kid_mean."""
    return record[METRICS.info(name).key]


def eval_run(run_dir: Path, *, metrics: Optional[Sequence[str]] = None, samples: int = DEFAULT_SAMPLES,
             checkpoint: str = "last", seed: int = 0, device: str = "auto", cache_dir: Optional[Path] = None,
             inception_weights: Optional[Path] = None, classifier_epochs: int = CLASSIFIER_EPOCHS,
             log: Callable[[str], None] = stderr_line, g: str = "ema",
             skipped: Optional[Callable[[str], None]] = None) -> list[dict[str, Any]]:
    """Evaluate a run folder's checkpoint ("last" or "best") on its own data config; append one line
    per metric to the run's eval records and return those records. cache_dir None:
    <data.root>/.eval_nets. g: which G of a train.ema run ("ema", its weight average, or "raw"); the
    lines of such a run say which in their "g" field. skipped: where the metrics skipped for want of
    their weights are told (default: log)."""
    run = RunFolder(run_dir)
    cfg = run.read_config()
    # under torchrun the ranks share the work out (context.py) and rank 0 writes
    with joined(pick_device(device)) as (world, dev):
        gan, step = load_generator(run, checkpoint=checkpoint, device=dev, g=g)
        splits = load_data(cfg.data)
        spec = splits.spec
        if (spec.resolution, spec.channels, spec.classes) != (gan.spec.resolution, gan.spec.channels,
                                                              gan.spec.classes):
            raise GanBenchError(f"{run} was trained on {gan.spec.resolution}px {gan.spec.channels}-channel images "
                                f"of classes {gan.spec.classes}, but its data config now loads {spec.resolution}px "
                                f"{spec.channels}-channel images of {spec.classes}; restore the data it was trained on")
        results = evaluate(gan, splits, metrics=metrics, samples=samples, seed=seed, device=dev,
                           cache_dir=default_cache_dir(cfg) if cache_dir is None else cache_dir,
                           inception_weights=inception_weights, classifier_epochs=classifier_epochs, log=log,
                           skipped=skipped)
        which = ("ema" if gan.averaged else "raw") if cfg.train.ema else None
        return _append(run, results, step=step, checkpoint=checkpoint, g=which, write=world.is_main)


def in_training(gan: GAN, splits: Splits, cfg: Config, run: RunFolder, step: int,
                g: Optional[str] = None, at: Optional[dict[str, Any]] = None) -> dict[str, float]:
    """Evaluation during training (eval.every, every_steps, every_seconds): cfg.eval.metrics on
    cfg.eval.samples images, lines appended with checkpoint "training", `g` (which G of a train.ema run:
    "ema" or "raw") and `at` (where training stood: train_seconds, images_seen); returns {metric:
    headline number}. Leaves the trainer's RNG state and G's train/eval mode
    as they were; latents are seeded with 0 at every call, so successive evaluations see the same z."""
    device = next(gan.parameters()).device
    results = evaluate(gan, splits, metrics=cfg.eval.metrics, samples=cfg.eval.samples, seed=0, device=device,
                       cache_dir=default_cache_dir(cfg))
    _append(run, results, step=step, checkpoint="training", g=g, at=at, write=World.current().is_main)
    return {name: headline(name, r) for name, r in results.items()}


def _append(run: RunFolder, results: dict[str, dict[str, Any]], *, step: int, checkpoint: str,
            g: Optional[str] = None, at: Optional[dict[str, Any]] = None, write: bool = True) -> list[dict[str, Any]]:
    which = {"g": g} if g is not None else {}  # runs without train.ema have one G: no field
    records = [{"metric": name, "step": step, **(at or {}), "checkpoint": checkpoint, **which, **r,
                INFO: line_info(METRICS.info(name))} for name, r in results.items()]
    if write:  # under torchrun only rank 0 writes; one evaluation's lines all at once, or none
        run.append_all("eval", records)
    return records
