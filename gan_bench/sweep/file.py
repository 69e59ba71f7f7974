"""The sweep file: typed like a config and a suite file (the same converter, type checks and messages).

A sweep file (YAML; config and data paths are relative to the folder you run from, the repo root):
    name: quickdraw_lr              # optional, default the file's name
    out: results/sweeps/quickdraw_lr  # optional, default results/sweeps/<name>
    plugins: [my_gan.py]            # optional, as in a suite file
    set: ["data.max_per_class=500"] # overrides for every config
    configs:                        # the base configs (models x data sets): one study each
      - configs/quickdraw_cdcgan.yaml
      - config: configs/quickdraw_convdcgan.yaml
        name: quickdraw_lindcgan    # optional: the study's and folders' name (default the file's name)
        set: ["model.name=lindcgan"]
        space: {}                   # optional: keys only this config searches (conditional models' keys)
        record: [cond_acc]          # optional: metrics recorded for this config only
    space:                          # searched for every config (space.py: loguniform, uniform, int, choice)
      train.lr_g: {loguniform: [1e-5, 1e-3]}
      train.loss: {choice: [bce, hinge, lsgan]}
    objective: fd                   # a registered metric; its direction is the metric's record
    budget: {images: 50000}         # equal per trial: steps, images or minutes (with machine: its name)
    trials: 12                      # the same number for every config
    seeds: [0]                      # each trial trains these seeds; the objective is their mean
    sampler: random                 # or tpe
    seed: 0                         # optional (default 0): the samplers' draws repeat for the same seed
    pruner: median                  # optional (off by default): median or hyperband, on in-training evaluations
    record: [cond_acc]              # optional: more metrics evaluated beside the objective, kept in the study
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from gan_bench.config import apply_delta, option, read_yaml
from gan_bench.errors import ConfigError
from gan_bench.plugins import Plugin
from gan_bench.sweep.space import Param, parse_param

SAMPLERS = ("random", "tpe")
PRUNERS = ("median", "hyperband")


@dataclass
class SweepConfig:
    SHORTHAND = "config"  # a bare path is {config: PATH}

    config: str = ""
    name: Optional[str] = None
    set: list[str] = option([])
    space: dict = field(default_factory=dict)  # checked by parse_param, not the converter (any key)
    record: list[str] = option([])             # more metrics for this config (cond_acc for a class model)


@dataclass
class SweepBudget:
    """The same budget for every trial; exactly one of steps, images, minutes."""

    steps: Optional[int] = option(None, lo=1)
    images: Optional[int] = option(None, lo=1, help="training images: steps = images / images per step")
    minutes: Optional[float] = option(None, lo=0.0, lo_open=True)
    machine: Optional[str] = None  # with minutes: the machine they were measured on

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None}

    def text(self) -> str:
        if self.steps:
            return f"{self.steps} steps"
        if self.images:
            return f"{self.images:,} training images"
        return f"{self.minutes:g} training minutes on {self.machine}"


@dataclass
class SweepPruner:
    SHORTHAND = "name"  # `pruner: median` is {name: median}

    name: str = "median"
    evaluations: int = option(4, lo=2, help="in-training evaluations per trial that the pruner reads")
    startup_trials: int = option(3, lo=0, help="trials that run whole before the median pruner prunes")


@dataclass
class Sweep:
    name: str = ""
    out: Optional[str] = None
    plugins: list[Plugin] = option([])
    set: list[str] = option([])
    configs: list[SweepConfig] = option([])
    space: dict = field(default_factory=dict)
    objective: str = ""
    budget: SweepBudget = field(default_factory=SweepBudget)
    trials: int = option(12, lo=1)
    seeds: list[int] = option([0])
    sampler: str = "random"
    seed: int = option(0, lo=0, help="the samplers' seed: each trial's draws are seeded by it, the study and the "
                                     "trial's number")
    pruner: Optional[SweepPruner] = None
    record: list[str] = option([])

    file = ""  # the file it was read from (a class attribute, so not a key of the file)

    @property
    def out_path(self) -> Path:
        return Path(self.out) if self.out else Path("results") / "sweeps" / self.name

    def params(self, c: SweepConfig) -> list[Param]:
        """The keys config `c` searches: the sweep's space, then its own (its own win)."""
        spaces = [("space", self.space), (f"configs[{self.configs.index(c) + 1}].space", c.space)]
        params = {k: parse_param(k, v, where) for where, space in spaces for k, v in space.items()}
        return list(params.values())


def load_sweep(path: Path) -> Sweep:
    """Read and check a sweep file: unknown keys, wrong types, bad ranges are one-line ConfigErrors naming
    the file and the key. The keys of the space are checked against the configs by plan.check_sweep."""
    d = read_yaml(Path(path))
    sweep = Sweep()
    try:
        # the spaces' keys are any config key: parse_param checks them, not the converter
        entries = d.get("configs")
        spaces = [e.pop("space", {}) if isinstance(e, dict) else {} for e in entries] \
            if isinstance(entries, list) else []
        apply_delta(sweep, {k: v for k, v in d.items() if k != "space"})
        sweep.space = d.get("space", {})
        for c, space in zip(sweep.configs, spaces):
            c.space = space
        sweep.name = sweep.name or Path(path).stem
        _check(sweep)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    sweep.file = str(path)
    return sweep


def _check(sweep: Sweep) -> None:
    if not sweep.configs:
        raise ConfigError("configs: expected a non-empty list of config files (the models x data sets to tune)")
    for i, c in enumerate(sweep.configs, 1):
        if not c.config:
            raise ConfigError(f"configs[{i}]: expected {{config: FILE}}; 'config' is missing")
        c.name = c.name or Path(c.config).stem
        if not isinstance(c.space, dict):
            raise ConfigError(f"configs[{i}].space: expected a mapping of keys to ranges, got {c.space!r}")
    names = [c.name for c in sweep.configs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"configs: the name {twice[0]!r} is used twice; give each config its own `name:`")
    for n in names:
        _plain("configs name", n)
    if not isinstance(sweep.space, dict):
        raise ConfigError(f"space: expected a mapping of keys to ranges, got {sweep.space!r}")
    for c in sweep.configs:
        if not sweep.params(c):
            raise ConfigError(f"space: config {c.name!r} searches no key; give `space:` a key such as "
                              f"train.lr_g: {{loguniform: [1e-5, 1e-3]}}")
    if not sweep.objective:
        raise ConfigError("objective: name the metric to optimise, e.g. objective: fd")
    b = sweep.budget
    given = [k for k in ("steps", "images", "minutes") if getattr(b, k) is not None]
    if len(given) != 1:
        raise ConfigError(f"budget: give exactly one of steps, images, minutes (the same for every trial), got "
                          f"{', '.join(given) or 'none'}")
    if b.minutes is not None and not (b.machine or "").strip():
        raise ConfigError("budget: minutes are a budget on one machine; name it (machine: \"2-core Xeon ...\")")
    if b.minutes is None and b.machine is not None:
        raise ConfigError("budget: machine goes with minutes; a steps or images budget holds on any machine")
    if not sweep.seeds:
        raise ConfigError("seeds: expected a non-empty list of integers")
    if sweep.sampler not in SAMPLERS:
        raise ConfigError(f"sampler: expected {' or '.join(SAMPLERS)}, got {sweep.sampler!r}")
    if sweep.pruner is not None and sweep.pruner.name not in PRUNERS:
        raise ConfigError(f"pruner: expected {' or '.join(PRUNERS)} (or leave it out: off), got {sweep.pruner.name!r}")
    if sweep.out is not None and not sweep.out.strip():
        raise ConfigError("out is empty; name the folder the sweep goes to, or leave the key out "
                          "(results/sweeps/<name>)")
    _plain("name", sweep.name)


def _plain(key: str, name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"{key}: expected a plain folder name, got {name!r}")
