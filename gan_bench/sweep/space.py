"""A sweep's search space: per config key, one kind of range, sampled through an Optuna trial.

    train.lr_g: {loguniform: [1e-5, 1e-3]}     log-uniform floats in [low, high]
    train.betas[0]: {uniform: [0.0, 0.9]}      uniform floats; [i] picks one element of a list key
    model.width: {int: [32, 96]}               integers in [low, high] (both included)
    train.loss: {choice: [bce, hinge, lsgan]}  one of the values (text, numbers, true/false, null)

The kinds are one table (KINDS); the values themselves are checked by the config's own converter,
since a sweep builds a config with each end of each range before it starts (plan.py).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable

import optuna

from gan_bench.config import nest
from gan_bench.errors import ConfigError
from gan_bench.registry import closest

KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)(?:\[(\d+)\])?$")


@dataclass(frozen=True)
class Kind:
    """One kind of range: how its bounds are checked, which values probe it, how a trial draws one."""

    check: Callable[[str, Any], list]            # (where, bounds) -> the bounds, or ConfigError
    probes: Callable[[list], list]               # the values a config is built with to check the key
    suggest: Callable[[optuna.Trial, str, list], Any]
    distribution: Callable[[list], Any]          # the Optuna distribution suggest draws from (records.py)


def _pair(where: str, bounds: Any, *, integer: bool = False, log: bool = False) -> list:
    noun = "integers" if integer else "numbers"
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise ConfigError(f"{where}: expected [low, high], two {noun}, got {bounds!r}")
    ok = (lambda v: isinstance(v, int) and not isinstance(v, bool)) if integer else \
        (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
    bounds = [_number(v) for v in bounds] if not integer else bounds
    if not all(ok(v) for v in bounds):
        raise ConfigError(f"{where}: expected [low, high], two {noun}, got {bounds!r}")
    lo, hi = bounds
    if lo == hi:
        raise ConfigError(f"{where}: the range [{lo}, {hi}] is empty; give low < high, or set the key with `set:`")
    if lo > hi:
        raise ConfigError(f"{where}: the range [{lo}, {hi}] is reversed; write it [{hi}, {lo}]")
    if log and lo <= 0:
        raise ConfigError(f"{where}: a log range must stay above 0, got [{lo}, {hi}]; raise the low end "
                          f"(1e-6, say) or use uniform")
    return [float(lo), float(hi)] if not integer else [lo, hi]


def _number(v: Any) -> Any:
    """PyYAML reads 1e-4 (no dot) as text: accept numeric text, as the config's converter does."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _choices(where: str, values: Any) -> list:
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: expected a non-empty list of values, got {values!r}")
    for v in values:
        if v is not None and not isinstance(v, (str, int, float, bool)):
            raise ConfigError(f"{where}: {v!r} is not one text, number, true/false or null; to search one element "
                              f"of a list key, name it KEY[i] (train.betas[0])")
    if len({repr(v) for v in values}) != len(values):
        raise ConfigError(f"{where}: a value appears twice in {values!r}; list each once")
    return values


D = optuna.distributions
KINDS: dict[str, Kind] = {
    "loguniform": Kind(lambda w, b: _pair(w, b, log=True), lambda b: b,
                       lambda t, k, b: t.suggest_float(k, b[0], b[1], log=True),
                       lambda b: D.FloatDistribution(b[0], b[1], log=True)),
    "uniform": Kind(lambda w, b: _pair(w, b), lambda b: b, lambda t, k, b: t.suggest_float(k, b[0], b[1]),
                    lambda b: D.FloatDistribution(b[0], b[1])),
    "int": Kind(lambda w, b: _pair(w, b, integer=True), lambda b: b, lambda t, k, b: t.suggest_int(k, b[0], b[1]),
                lambda b: D.IntDistribution(b[0], b[1])),
    "choice": Kind(_choices, lambda b: b, lambda t, k, b: t.suggest_categorical(k, b),
                   lambda b: D.CategoricalDistribution(b)),
}


@dataclass(frozen=True)
class Param:
    """One searched key: its config path (and list index), its kind and bounds."""

    key: str
    path: tuple[str, ...]
    index: int | None
    kind: str
    bounds: list

    def suggest(self, trial: optuna.Trial) -> Any:
        return KINDS[self.kind].suggest(trial, self.key, self.bounds)

    def probes(self) -> list:
        return KINDS[self.kind].probes(self.bounds)

    def distribution(self) -> optuna.distributions.BaseDistribution:
        return KINDS[self.kind].distribution(self.bounds)

    def as_dict(self) -> dict[str, Any]:
        """What the sweep file said (the study's record of its space)."""
        return {self.kind: self.bounds}


def parse_param(key: Any, spec: Any, where: str) -> Param:
    """space: {KEY: {KIND: BOUNDS}} -> Param; one-line ConfigErrors naming the key."""
    match = KEY.match(key) if isinstance(key, str) else None
    if not match:
        raise ConfigError(f"{where}: {key!r} is not a config key; write a dotted key such as train.lr_g, or "
                          f"train.betas[0] for one element of a list")
    here = f"{where}.{key}"
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{here}: expected one range such as {{loguniform: [1e-5, 1e-3]}} (kinds: "
                          f"{', '.join(KINDS)}), got {spec!r}")
    (kind, bounds), = spec.items()
    if kind not in KINDS:
        near = closest(str(kind), list(KINDS))
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise ConfigError(f"{here}: unknown kind of range {kind!r}.{hint} Valid: {', '.join(KINDS)}")
    bounds = KINDS[kind].check(f"{here}.{kind}", bounds)
    return Param(key, tuple(match.group(1).split(".")), None if match.group(2) is None else int(match.group(2)),
                 kind, bounds)


def delta(param: Param, value: Any, base: dict[str, Any]) -> dict[str, Any]:
    """The config delta that sets param to value; base: the config's resolved dict (Config.to_dict),
    whose list a KEY[i] param changes one element of."""
    if param.index is None:
        return nest(list(param.path), value)
    current: Any = base
    for p in param.path:
        current = current.get(p) if isinstance(current, dict) else None
    if not isinstance(current, list):
        raise ConfigError(f"space: {param.key}: {'.'.join(param.path)} is not a list key of the config, so [i] "
                          f"cannot pick an element of it")
    if param.index >= len(current):
        raise ConfigError(f"space: {param.key}: {'.'.join(param.path)} has {len(current)} elements "
                          f"({current}); the index must be below {len(current)}")
    changed = list(current)
    changed[param.index] = value
    return nest(list(param.path), changed)
