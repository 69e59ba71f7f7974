"""A sweep checked against its configs before anything is written, and each trial's config.

check_sweep builds every base config, then a config with each end of each range (each value of each
choice), so an unknown key, a value of the wrong type or out of the key's range, or a lever the model
cannot take is one line before the first trial; it loads each data set once and runs the trainer's
preflight on each base config at the sweep's budget, and checks the objective applies to it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from gan_bench.config import Config, build_config, nest, parse_set, read_yaml
from gan_bench.data import Splits, load_data
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.metrics.registry import METRICS, check_metrics
from gan_bench.models import MODELS
from gan_bench.plugins import load as load_plugins
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.space import Param, delta
from gan_bench.train.plan import make_plan, preflight

# A minutes budget stops on the clock: the epochs must not stop it first.
UNBOUNDED_EPOCHS = 100_000
# Keys the sweep sets itself in every trial (the seed, the budget, the evaluations the objective is read from)
FIXED_KEYS = ("train.seed", "train.epochs", "train.max_steps", "train.max_minutes", "eval.metrics", "eval.every",
              "eval.every_steps", "eval.every_seconds")


@dataclass
class Base:
    """One base config of a sweep (one study): its deltas, the keys it searches, its resolved config."""

    name: str
    deltas: list[dict[str, Any]]
    params: list[Param]
    cfg: Config
    record: list[str]  # the metrics evaluated beside the objective: the sweep's and the config's own

    @property
    def resolved(self) -> dict[str, Any]:
        return self.cfg.to_dict()


class DataCache:
    """Each data set loaded once per process (a worker's trials share it)."""

    def __init__(self) -> None:
        self._loaded: dict[str, Splits] = {}

    def get(self, cfg: Config) -> Splits:
        key = json.dumps(cfg.to_dict()["data"], sort_keys=True, default=str)
        if key not in self._loaded:
            self._loaded[key] = load_data(cfg.data)
        return self._loaded[key]


def bases(sweep: Sweep) -> list[Base]:
    """The sweep's base configs built (ConfigError naming the config on a bad one); no data is read."""
    load_plugins(sweep.plugins)
    out = []
    for i, c in enumerate(sweep.configs, 1):
        where = f"{sweep_where(sweep)}configs[{i}] ({c.config})"
        try:
            deltas = [read_yaml(Path(c.config))] + [nest(*parse_set(s)) for s in sweep.set + c.set]
            cfg = build_config(deltas, name=c.name, plugins=sweep.plugins)
            out.append(Base(c.name, deltas, sweep.params(c), cfg, list(dict.fromkeys(sweep.record + c.record))))
        except GanBenchError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


def sweep_where(sweep: Sweep) -> str:
    return f"{sweep.file}: " if sweep.file else ""


def check_sweep(sweep: Sweep, *, data: Optional[DataCache] = None) -> list[Base]:
    """Every check before the first trial (see the module docstring); returns the bases."""
    for key, names in (("objective", [sweep.objective]), ("record", sweep.record + [r for c in sweep.configs
                                                                                    for r in c.record])):
        for n in names:
            try:
                METRICS.entry(n)
            except GanBenchError as e:
                raise ConfigError(f"{sweep_where(sweep)}{key}: {e}") from None
    built = bases(sweep)
    data = data or DataCache()
    for b in built:
        where = f"{sweep_where(sweep)}config {b.name!r}: "
        try:
            cfg = trial_config(sweep, b, {}, seed=sweep.seeds[0], steps=1)
            splits = data.get(cfg)
        except GanBenchError as e:
            raise ConfigError(f"{where}{e}") from None
        try:  # the objective first: every probe below would fail on it, less clearly
            check_metrics([sweep.objective, *b.record], labelled=splits.train.labelled,
                          draws_class=MODELS.info(cfg.model.name).draws_class)
        except ConfigError as e:
            raise ConfigError(f"{sweep_where(sweep)}objective {sweep.objective!r} is not computed for config "
                              f"{b.name!r}: {e}") from None
        for p in b.params:
            if ".".join(p.path) in FIXED_KEYS:
                raise ConfigError(f"{sweep_where(sweep)}space: {p.key} is set by the sweep itself (the seeds, the "
                                  f"budget and the evaluations are the same for every trial); use seeds:, budget: "
                                  f"or record: instead")
            for value in p.probes():
                try:
                    make_plan(trial_config(sweep, b, {p.key: value}, seed=sweep.seeds[0], steps=1), device=False)
                except GanBenchError as e:
                    raise ConfigError(f"{sweep_where(sweep)}space {p.key}={value!r} on config {b.name!r}: {e}") from None
        try:
            preflight(cfg, splits)
        except GanBenchError as e:
            raise ConfigError(f"{where}{e}") from None
    return built


def sampled_deltas(base: Base, values: dict[str, Any]) -> list[dict[str, Any]]:
    by_key = {p.key: p for p in base.params}
    return [delta(by_key[k], v, base.resolved) for k, v in values.items()]


def trial_config(sweep: Sweep, base: Base, values: dict[str, Any], *, seed: int, steps: Optional[int],
                 name: Optional[str] = None) -> Config:
    """A trial's config: the base, the sampled values, then what the sweep fixes: the seed, the budget
    (steps: the trial's step budget, from budget_steps; None for a minutes budget) and the in-training
    evaluations the objective and the pruner read."""
    b, pruner = sweep.budget, sweep.pruner
    evaluations = pruner.evaluations if pruner else 1
    train: dict[str, Any] = {"seed": seed}
    ev: dict[str, Any] = {"metrics": list(dict.fromkeys([sweep.objective, *base.record])), "every": 0}
    if b.minutes is not None:
        train.update(max_minutes=b.minutes, max_steps=None, epochs=UNBOUNDED_EPOCHS)
        ev.update(every_steps=0, every_seconds=b.minutes * 60 / evaluations)
    else:
        train.update(max_minutes=None, max_steps=steps, epochs=UNBOUNDED_EPOCHS)
        ev.update(every_steps=max(1, math.ceil((steps or 1) / evaluations)), every_seconds=0.0)
    fixed = {"train": train, "eval": ev}
    return build_config(base.deltas + sampled_deltas(base, values) + [fixed], name=name or base.name,
                        plugins=sweep.plugins)


def budget_steps(sweep: Sweep, cfg: Config, data: Splits) -> Optional[int]:
    """A trial's steps: budget.steps, or budget.images over the images one step draws (the batch, of
    every class for a per-class model), or None for a minutes budget. A batch larger than the data is the
    run plan's to refuse: a failed trial with its reason."""
    b = sweep.budget
    if b.steps is not None:
        return b.steps
    if b.images is None:
        return None
    per_class = MODELS.info(cfg.model.name).per_class
    per_step = cfg.train.batch_size * (data.spec.num_classes if per_class else 1)
    return max(1, math.ceil(b.images / per_step))


def fingerprint(sweep: Sweep, base: Base) -> dict[str, Any]:
    """What a study's results depend on, kept in the study: a rerun whose file changed any of it is refused
    (plan and file names, the number of trials and the output folder may change)."""
    cfg = {k: v for k, v in base.resolved.items() if k not in ("name", "out", "plugins")}
    out = {"config": cfg, "space": {p.key: p.as_dict() for p in base.params}, "objective": sweep.objective,
           "budget": sweep.budget.as_dict(), "seeds": list(sweep.seeds), "sampler": sweep.sampler,
           "pruner": vars(sweep.pruner) if sweep.pruner else None, "record": base.record}
    if sweep.seed != 0:  # studies made before the key existed hold no seed: the default keeps them continuing
        out["seed"] = sweep.seed
    return out


def changes(before: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two fingerprints, with both values."""
    out = []
    for k in sorted(set(before) | set(now)):
        a, b = before.get(k), now.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{prefix}{k}.")
        elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
            out.append(f"{prefix}{k} was {a!r}, now {b!r}")
    return out

