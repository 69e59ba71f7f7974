"""The metric registry: every metric is a function EvalContext -> dict of numbers.

Registration meta:
  kind               domain (features/predictions of the data set's evaluation network),
                     retrain (trains new classifiers), inception (torch-fidelity)
  key                the metric's headline number in its dict (what training-time evaluation tracks)
  better             "lower" or "higher": which way `key` improves (picks checkpoints/best.pt)
  needs_labels       the data set must be labelled
  needs_class_model  the model must generate a requested class (conditional or per-class)
  default            part of "all metrics that apply" (expensive experiments are opt-in)
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Sequence

from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

if TYPE_CHECKING:
    from gan_bench.metrics.context import EvalContext

MetricFn = Callable[["EvalContext"], dict]
METRICS: Registry[MetricFn] = Registry("metric")


class NotApplicable(Exception):
    """The metric cannot be computed for this run or data (an error when it was asked for by name)."""


class Skipped(Exception):
    """The metric is skipped with one line even when asked for (Inception weights not available)."""


def metric(name: str, *, kind: str, key: str, better: str, needs_labels: bool = False,
           needs_class_model: bool = False, default: bool = True) -> Callable[[MetricFn], MetricFn]:
    assert better in ("lower", "higher"), better
    return METRICS.register(name, kind=kind, key=key, better=better, needs_labels=needs_labels,
                            needs_class_model=needs_class_model, default=default)


def higher_is_better(name: str) -> bool:
    """Direction of a metric's headline number (ConfigError listing valid names if unknown)."""
    return METRICS.entry(name).meta["better"] == "higher"


def inapplicable_reason(name: str, *, labelled: bool, class_model: bool) -> Optional[str]:
    """Why a metric does not apply to a model/data pair, or None when it does."""
    meta = METRICS.entry(name).meta
    if meta["needs_labels"] and not labelled:
        return "needs a labelled data set"
    if meta["needs_class_model"] and not class_model:
        return "needs a conditional or per-class model (this one cannot be asked for a class)"
    return None


def check_metrics(names: Sequence[str], *, labelled: bool, class_model: bool) -> None:
    """ConfigError, before any work, for an unknown metric or one that cannot apply (e.g. eval.metrics)."""
    for n in names:
        reason = inapplicable_reason(n, labelled=labelled, class_model=class_model)
        if reason:
            valid = [e.name for e in METRICS
                     if not inapplicable_reason(e.name, labelled=labelled, class_model=class_model)]
            raise ConfigError(f"metric {n!r} {reason}; metrics that apply: {', '.join(valid)}")
