"""Statistics over seeds for the rankings: bootstrap intervals of means and of differences of means, and
the seeds a gap would need.

Method: the percentile bootstrap of `scipy.stats.bootstrap` (9,999 resamples, 95 %), each call seeded
with SEED, so a table made twice from the same records is the same table. A difference of means resamples
each model's seeds independently (two unpaired samples: seed 0 of one model has nothing to do with seed 0
of another).

Why percentile and not BCa: a benchmark has 2 to 5 seeds per model. BCa's two corrections are estimated
from those few values (the acceleration from a jackknife over 3 values), and BCa is undefined (NaN and a
warning) whenever the bootstrap distribution is degenerate, which two equal seeds of a saturated metric
(cond_acc 1.0) already make; the percentile interval is defined for any two or more values. Neither
reaches its nominal coverage at n = 3 (with 3 seeds the percentile interval of a mean spans nearly their
whole range, and that of a difference excludes zero about when the two models' seeds do not overlap),
so a "not distinguishable" is the honest reading of most 3-seed pairs, and seeds_needed says how many
seeds would settle it.

Seeds needed: the normal-approximation sample size of a two-sided two-sample test of means,
    n per group = 2 (z_{1 - alpha/2} + z_{power})^2 s^2 / d^2   (= 15.7 s^2 / d^2 at alpha 0.05, power 0.8)
with d the observed gap of the means and s the pooled standard deviation of the two models' seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import scipy.stats

METHOD = "percentile"
LEVEL = 0.95
RESAMPLES = 9999
SEED = 0
ALPHA = 0.05  # seeds_needed's test: two-sided level and power
POWER = 0.80


@dataclass(frozen=True)
class Interval:
    """A confidence interval [low, high] of a mean or of a difference of means."""

    low: float
    high: float

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def _interval(data: tuple[np.ndarray, ...], statistic, *, level: float, seed: int) -> Interval:
    res = scipy.stats.bootstrap(data, statistic, n_resamples=RESAMPLES, confidence_level=level, method=METHOD,
                                vectorized=True, rng=np.random.default_rng(seed))
    return Interval(float(res.confidence_interval.low), float(res.confidence_interval.high))


def _values(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, dtype=float)


def mean_interval(values: Sequence[float], *, level: float = LEVEL, seed: int = SEED) -> Optional[Interval]:
    """The bootstrap interval of the mean of one model's seeds; None for fewer than two values."""
    x = _values(values)
    return _interval((x,), np.mean, level=level, seed=seed) if len(x) > 1 else None


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def difference_interval(a: Sequence[float], b: Sequence[float], *, level: float = LEVEL,
                        seed: int = SEED) -> Optional[Interval]:
    """The bootstrap interval of mean(a) - mean(b), each sample resampled on its own; None when either has
    fewer than two values."""
    x, y = _values(a), _values(b)
    return _interval((x, y), _mean_difference, level=level, seed=seed) if len(x) > 1 and len(y) > 1 else None


def pooled_std(a: Sequence[float], b: Sequence[float]) -> float:
    """sqrt(((n_a - 1) s_a^2 + (n_b - 1) s_b^2) / (n_a + n_b - 2)), s the sample standard deviations."""
    x, y = _values(a), _values(b)
    dof = len(x) + len(y) - 2
    if dof < 1:
        raise ValueError("a pooled standard deviation needs three values or more")
    return math.sqrt(((len(x) - 1) * np.var(x, ddof=1 if len(x) > 1 else 0)
                      + (len(y) - 1) * np.var(y, ddof=1 if len(y) > 1 else 0)) / dof)


def seeds_needed(gap: float, std: float, *, alpha: float = ALPHA, power: float = POWER) -> Optional[int]:
    """Seeds per model for a two-sample test to find a gap of `gap` between means at two-sided level alpha
    with the given power, the seeds' standard deviation being `std` (the formula is in the module
    docstring; at least 2, the fewest that have a spread). None when there is no gap to find."""
    if gap == 0 or not math.isfinite(gap):
        return None
    return max(2, math.ceil(seeds_factor(alpha=alpha, power=power) * std * std / (gap * gap)))


def seeds_factor(*, alpha: float = ALPHA, power: float = POWER) -> float:
    """2 (z_{1 - alpha/2} + z_{power})^2, the constant of seeds_needed (15.7 at alpha 0.05, power 0.8)."""
    z = scipy.stats.norm.ppf(1 - alpha / 2) + scipy.stats.norm.ppf(power)
    return float(2 * z * z)
