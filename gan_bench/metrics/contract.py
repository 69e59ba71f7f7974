"""A metric's contract (metrics/registry.py), checked before its line is appended to a run's records.

A metric is fn(ctx: EvalContext) -> dict: its MetricInfo.key holds a finite number (the headline one
that tables rank and checkpoints/best.pt follows); any other entry is a finite number, text, a bool,
None, or a list or mapping of those (per-class numbers), since each record is one JSON line. What a metric that
breaks it returned, against what was expected, is one PluginError line naming its file and line.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Optional

from gan_bench.metrics.registry import MetricInfo
from gan_bench.plugins import broken, describe

METRIC = "fn(ctx: EvalContext) -> dict of numbers"
# What a report needs of a metric (which way is better, its headline number, label, columns, floor), written
# into every eval line under INFO, so `compare` and `gallery` rank a plugin's metric without its code loaded.
INFO = "info"
REPORTED = ("kind", "key", "better", "headline", "label", "columns", "floor")
# The fields an eval line sets itself (evaluate.py): which metric, where training stood, which G, how many
# images, which evaluation network, and INFO; a metric's dict holding one would overwrite it.
LINE_FIELDS = ("metric", "step", "checkpoint", "g", "samples", "classifier", "classifier_test_acc", "train_seconds",
               "images_seen", INFO)


def check_metric_value(info: MetricInfo, value: object, *, name: str, fn: Optional[Callable] = None) -> dict:
    """value as metric `name` returned it, checked; returns it."""
    what = f"metric {name!r}"
    expected = f"a dict with {info.key!r} (its MetricInfo.key) holding a finite number, e.g. {{{info.key!r}: 0.5}}"
    if not isinstance(value, dict):
        raise broken(what, fn, describe(value), expected)
    if info.key not in value:
        raise broken(what, fn, f"a dict of {sorted(map(str, value))[:6]}", expected)
    if not _number(value[info.key]):
        raise broken(what, fn, f"{info.key!r}: {describe(value[info.key])}",
                     "a finite int or float there (a tensor's .item(), a numpy number's float())")
    for key, v in value.items():
        if key in LINE_FIELDS:
            raise broken(what, fn, f"a dict with {key!r}", f"a dict without {', '.join(LINE_FIELDS)}: every eval "
                                                            f"line sets those fields itself; rename {key!r}")
        problem = "" if isinstance(key, str) else f"a key {describe(key)}"
        problem = problem or _unwritable(v)
        if problem:
            raise broken(what, fn, f"{key!r}: {problem}" if isinstance(key, str) else problem,
                         "text keys and values that are finite numbers, text, bools, or lists or dicts of "
                         "those (one JSON line)")
    return value


def _number(v: Any) -> bool:
    """A finite int or float (numpy's float64 is a float; its other scalars do not go into JSON)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float
        return False


def _unwritable(v: Any) -> str:
    """Why v cannot go into a JSON record line ("" when it can)."""
    if v is None or isinstance(v, (str, bool)) or _number(v):
        return ""
    if isinstance(v, float):  # NaN or infinite: Python's json writes them, other readers refuse them
        return f"{v!r} (not finite)"
    if isinstance(v, (list, tuple)):
        return next((p for p in map(_unwritable, v) if p), "")
    if isinstance(v, dict):
        bad = next((k for k in v if not isinstance(k, str)), None)
        if bad is not None:
            return f"a key {describe(bad)}"
        return next((p for p in map(_unwritable, v.values()) if p), "")
    return describe(v)


def line_info(info: MetricInfo) -> dict[str, Any]:
    """The INFO field of a metric's eval lines: its record's REPORTED fields, as JSON holds them."""
    return {f: list(info.columns) if f == "columns" else getattr(info, f) for f in REPORTED}


def info_of_line(value: Any) -> Optional[MetricInfo]:
    """The MetricInfo an eval line's INFO field describes (default False: a report's stand-in computes
    nothing); None when the line has none (written before lines carried it) or a hand-edited one that is
    not a record."""
    if not isinstance(value, dict) or not isinstance(value.get("columns", []), list):
        return None
    fields = {f: value[f] for f in REPORTED if f in value}
    try:
        info = MetricInfo(**{**fields, "columns": tuple(fields.get("columns") or ())}, default=False)
    except TypeError:  # a field missing or of another type, or MetricInfo's own checks (kind, better, columns)
        return None
    texts = (info.key, info.label, info.floor, *info.columns)
    return info if info.key and all(isinstance(t, str) for t in texts) and isinstance(info.headline, bool) else None
