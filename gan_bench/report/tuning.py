"""The best objective a hyperparameter search reaches in k trials (Lucic et al. 2018, "Are GANs Created
Equal?", Fig. 4): the comparison of models at an equal tuning budget.

Given the N trials a model's search ran, a search of k trials is modelled as k draws with replacement
from those N (the empirical distribution of the search's outcomes). The expected best of k draws has a
closed form over the sorted scores, y_(1) worst ... y_(N) best:

    E[best of k] = sum_i y_(i) * ((i / N)^k - ((i - 1) / N)^k)

since the best of k draws is at most y_(i) (in the order of quality) with probability (i / N)^k. The
resampled estimate draws k of the N trials many times and averages the best of each draw; it converges
to the closed form, and its 2.5 and 97.5 percentiles are the band: where 95 % of k-trial searches land.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import direction

RESAMPLES = 10_000
SEED = 0
LEVEL = 0.95
COLUMNS = ["k", "exact", "mean", "low", "high", "minutes"]


def _oriented(scores: Sequence[float], metric: str) -> tuple[np.ndarray, float]:
    """The scores as numpy, multiplied by the sign that makes higher better (-1 for a lower-is-better
    metric), and that sign."""
    lower = direction(metric)
    if lower is None:
        raise GanBenchError(f"{metric!r} is not a registered metric's headline number, so its direction is unknown")
    y = np.asarray(scores, dtype=float)
    if y.ndim != 1 or len(y) == 0 or not np.isfinite(y).all():
        raise GanBenchError(f"expected best of k: need one finite score per trial, got {y.tolist()!r}")
    sign = -1.0 if lower else 1.0
    return sign * y, sign


def exact_expected_best(scores: Sequence[float], *, metric: str) -> np.ndarray:
    """E[best of k draws with replacement from scores], k = 1..N (the module docstring's closed form);
    best in the direction of `metric`'s registry record."""
    y, sign = _oriented(scores, metric)
    y = np.sort(y)  # worst first
    n = len(y)
    i = np.arange(1, n + 1)
    k = np.arange(1, n + 1)[:, None]
    weights = (i / n) ** k - ((i - 1) / n) ** k  # (k, i): P(the best of k draws is the i-th)
    return sign * (weights @ y)


def expected_best(scores: Sequence[float], *, metric: str, minutes: Optional[Sequence[float]] = None,
                  resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> pd.DataFrame:
    """Lucic et al.'s curve for one model's search.

    scores:  the objective of each of the model's N trials (one number each, in the metric's units).
    metric:  the objective's metric name or headline key; its registry record says whether lower or
             higher is better.
    minutes: each trial's training minutes (optional), for the curve against tuning time.
    resamples, seed: the number of resampled searches per k and the seed of their generator (the same
             seed gives the same table).
    level:   the band's coverage.

    Returns one row per k = 1..N: k; exact, the closed-form expected best of k; mean, the resampled
    estimate of it; low and high, the band (percentiles (1 - level) / 2 and (1 + level) / 2 of the
    resampled bests, in the metric's units, low <= high); minutes, the expected training minutes of k
    trials (k times the mean trial's minutes; empty without `minutes`).
    """
    y, sign = _oriented(scores, metric)
    n = len(y)
    if minutes is not None and len(minutes) != n:
        raise GanBenchError(f"expected best of k: {len(minutes)} trial minutes for {n} scores; give one per trial")
    rng = np.random.default_rng(seed)
    # the first k draws of each row are a k-trial search, for every k at once: (resamples, N) -> running best
    best = np.maximum.accumulate(y[rng.integers(0, n, size=(resamples, n))], axis=1) * sign
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(best, [tail, 100 - tail], axis=0)
    per_trial = float(np.mean(minutes)) if minutes is not None else None
    k = np.arange(1, n + 1)
    return pd.DataFrame({"k": k, "exact": exact_expected_best(scores, metric=metric), "mean": best.mean(axis=0),
                         "low": np.minimum(low, high), "high": np.maximum(low, high),
                         "minutes": k * per_trial if per_trial is not None else np.full(n, np.nan)},
                        columns=COLUMNS)
