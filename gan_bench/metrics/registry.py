"""The metric registry: every metric is a function EvalContext -> dict of numbers, with a MetricInfo.

Reports, the CLI and the trainer read a metric's direction, headline number and kind from its record;
nothing keeps its own table of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from gan_bench.errors import ConfigError
from gan_bench.registry import Registry

if TYPE_CHECKING:
    from gan_bench.metrics.context import EvalContext

MetricFn = Callable[["EvalContext"], dict]
KINDS = ("domain", "retrain", "inception", "custom")


@dataclass(frozen=True)
class MetricInfo:
    """A registered metric's record.

    kind               domain (features/predictions of the data set's evaluation network), retrain
                       (trains new classifiers on generated images), inception (Inception-v3 features,
                       no data set needed), custom (its own computation from the context's images,
                       such as a plugin's)
    key                its headline number in its dict (what training-time evaluation tracks)
    better             "lower" or "higher": which way `key` improves (picks checkpoints/best.pt)
    needs_labels       the data set must be labelled
    needs_draws_class  the model must generate a requested class (conditional or per-class)
    default            part of "all metrics that apply" (expensive experiments are opt-in)
    headline           a key metric: shown first in tables, and on the gallery's index and cards
    label              its name in the gallery ("FD"); empty: the metric's name
    columns            the table columns it fills, headline first (default: just `key`)
    floor              the field of its line that holds what held-out real images score in place of
                       generated ones at the same N (its real-data floor; a ceiling when higher is
                       better), shown beside `key` in tables; empty: none
    needs_generator    draws its own images: `gan-bench score`, which scores two image sets, cannot
                       compute it (nor a metric that needs_draws_class)
    """

    kind: str
    key: str
    better: str
    needs_labels: bool = False
    needs_draws_class: bool = False
    default: bool = True
    headline: bool = False
    label: str = ""
    columns: tuple[str, ...] = ()
    floor: str = ""
    needs_generator: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"MetricInfo.kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.better not in ("lower", "higher"):
            raise TypeError(f"MetricInfo.better must be 'lower' or 'higher', got {self.better!r}")
        if not (isinstance(self.key, str) and self.key):
            raise TypeError(f"MetricInfo.key must be the name of its headline number (text), got {self.key!r}")
        for field in ("label", "floor"):
            if not isinstance(getattr(self, field), str):
                raise TypeError(f"MetricInfo.{field} must be text, got {getattr(self, field)!r}")
        if self.columns and self.columns[0] != self.key:
            raise TypeError(f"MetricInfo.columns must start with the key {self.key!r}, got {self.columns!r}")

    @property
    def uses_eval_network(self) -> bool:
        """Computed in the data set's evaluation network (its records name the network's fingerprint)."""
        return self.kind in ("domain", "retrain")

    @property
    def from_images(self) -> bool:
        """Computed from a set of images alone, without asking a generator for more (`gan-bench score`)."""
        return not (self.needs_generator or self.needs_draws_class)

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    @property
    def table_columns(self) -> tuple[str, ...]:
        return self.columns or (self.key,)


METRICS: Registry[MetricFn, MetricInfo] = Registry("metric", MetricInfo)


class NotApplicable(Exception):
    """The metric cannot be computed for this run or data (an error when it was asked for by name)."""


class Skipped(Exception):
    """The metric is skipped with one line even when asked for (Inception weights not available)."""


def metric(name: str, **info) -> Callable[[MetricFn], MetricFn]:
    """@metric("fd", kind="domain", key="fd", better="lower", ...): register a metric (MetricInfo fields)."""
    return METRICS.register(name, **info)


def headline_columns() -> list[str]:
    """The key metrics' table columns, in registration order (fd, kid_mean, kid_std, ...)."""
    return [c for e in METRICS if e.info.headline for c in e.info.table_columns]


def floor_columns() -> dict[str, str]:
    """{a metric's headline key: the field of its line holding its real-data floor} (fd -> real_fd)."""
    return {e.info.key: e.info.floor for e in METRICS if e.info.floor}


def default_metrics() -> list[str]:
    """The metrics `gan-bench eval` computes when none are named (those that apply to a run)."""
    return [e.name for e in METRICS if e.info.default]


def direction(column: str) -> Optional[bool]:
    """True when a table column (a metric's name or headline key) is better lower; None if no metric
    has it as its headline."""
    for e in METRICS:
        if column in (e.name, e.info.key):
            return e.info.lower_is_better
    return None


def higher_is_better(name: str) -> bool:
    """Direction of a metric's headline number (ConfigError listing valid names if unknown)."""
    return not METRICS.info(name).lower_is_better


def inapplicable_reason(name: str, *, labelled: bool, draws_class: bool) -> Optional[str]:
    """Why a metric does not apply to a model/data pair, or None when it does."""
    info = METRICS.info(name)
    if info.needs_labels and not labelled:
        return "needs a labelled data set"
    if info.needs_draws_class and not draws_class:
        return "needs a conditional or per-class model (this one cannot be asked for a class)"
    return None


def check_metrics(names: Sequence[str], *, labelled: bool, draws_class: bool) -> None:
    """ConfigError, before any work, for an unknown metric or one that cannot apply (e.g. eval.metrics)."""
    for n in names:
        reason = inapplicable_reason(n, labelled=labelled, draws_class=draws_class)
        if reason:
            valid = [e.name for e in METRICS
                     if not inapplicable_reason(e.name, labelled=labelled, draws_class=draws_class)]
            raise ConfigError(f"metric {n!r} {reason}; metrics that apply: {', '.join(valid)}")
