"""A sweep's figures (matplotlib, Agg): Lucic et al.'s best-of-k curves, the objective's spread over the
trials, and Optuna's slice plot of a study's two most important keys."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import optuna
import pandas as pd

from gan_bench.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def best_of_k(curves: dict[str, pd.DataFrame], path: Path, *, objective: str, lower: bool, note: str) -> Path:
    """Per model, the expected best objective of a k-trial search with its 95 % band: against k (left) and
    against the expected training minutes of k trials (right)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (model, c) in enumerate(sorted(curves.items())):
        color = f"C{i % 10}"
        for ax, x in ((axes[0], c["k"]), (axes[1], c["minutes"])):
            if x.isna().all():
                continue
            ax.plot(x, c["exact"], "-o", ms=3, color=color, label=f"{model} ({len(c)} trials)")
            ax.fill_between(x, c["low"], c["high"], color=color, alpha=0.15, linewidth=0)
    axes[0].set_xlabel("trials k")
    axes[1].set_xlabel("training minutes of k trials (k x the mean trial's)")
    for ax in axes:
        ax.set_ylabel(f"expected best {objective} ({'lower' if lower else 'higher'} is better)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Best {objective} of a k-trial search, 95 % band of resampled searches. {note}", fontsize=9)
    return _save(fig, path)


def distribution(values: dict[str, list[float]], path: Path, *, objective: str, lower: bool) -> Path:
    """The objective of every completed trial of each model: a box and the trials as points (the spread is
    the model's sensitivity to its hyperparameters)."""
    plt = _pyplot()
    models = sorted(values)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.3 * len(models) + 1.5), 4.0))
    data = [values[m] or [math.nan] for m in models]
    ax.boxplot(data, showfliers=False, widths=0.5)
    rng = np.random.default_rng(0)  # the jitter only spreads the points sideways; fixed so the figure is too
    for i, v in enumerate(data, 1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(v)), v, s=14, alpha=0.7, zorder=3)
    ax.set_xticks(range(1, len(models) + 1), models, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"{objective} ({'lower' if lower else 'higher'} is better)")
    ax.set_title(f"{objective} of each completed trial", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def slice_plot(study: optuna.Study, params: list[str], path: Path) -> Optional[Path]:
    """Optuna's slice plot (objective against each key's value, one point per trial) of `params`."""
    from optuna.visualization.matplotlib import plot_slice

    axes = plot_slice(study, params=params)
    fig = np.atleast_1d(axes)[0].figure
    fig.set_size_inches(4.2 * len(params), 3.8)
    return _save(fig, path)
