"""Evaluation: the metric registry, the data sets' evaluation networks, Frechet/KID/PR statistics,
Inception metrics through torch-fidelity. Metric modules register themselves on import.

Entry points live in gan_bench.metrics.evaluate (evaluate, eval_run, in_training); the name
`evaluate` is not re-exported here so that it keeps naming the module.
"""
from gan_bench.metrics import domain, inception, retrain  # noqa: F401  (registration)
from gan_bench.metrics.evaluate import eval_run, in_training  # noqa: F401
from gan_bench.metrics.registry import METRICS, check_metrics, higher_is_better  # noqa: F401
