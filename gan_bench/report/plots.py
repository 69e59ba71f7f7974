"""Plots across runs (matplotlib, Agg): loss curves side by side, metrics against step, throughput."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from gan_bench.atomic import atomic_path
from gan_bench.metrics.registry import direction
from gan_bench.report.records import RunRecord, machine_tags, machines_note, numeric_fields


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def log_axis(values: list[float]) -> bool:
    """A log quality axis where the curves span more than a factor of 10: one collapsed seed (MNIST
    fd ~1500 beside 15) would otherwise flatten every other curve onto the floor of a linear one.
    Only for positive values (fd, kid); cond_acc and the like stay linear."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 10


def loss_curves(runs: list[RunRecord], path: Path) -> Path:
    """One panel per (data set, model), rows = data sets; D and G losses of every seed overlaid."""
    plt = _pyplot()
    datasets = sorted({r.dataset for r in runs})
    models = {d: sorted({r.model for r in runs if r.dataset == d}) for d in datasets}
    ncol = max(len(m) for m in models.values())
    fig, axes = plt.subplots(len(datasets), ncol, figsize=(3.6 * ncol, 2.6 * len(datasets)),
                             squeeze=False, sharex=False)
    for i, d in enumerate(datasets):
        for j in range(ncol):
            ax = axes[i][j]
            if j >= len(models[d]):
                ax.axis("off")
                continue
            for r in (r for r in runs if r.dataset == d and r.model == models[d][j]):
                steps = [h["step"] for h in r.history]
                ax.plot(steps, [h["loss_d"] for h in r.history], color="tab:blue", lw=1, alpha=0.7)
                ax.plot(steps, [h["loss_g"] for h in r.history], color="tab:orange", lw=1, alpha=0.7)
            ax.set_title(f"{d} / {models[d][j]}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
    axes[0][0].legend(["D loss", "G loss"], fontsize=7, loc="upper right")
    fig.supxlabel("step", fontsize=9)
    fig.tight_layout()
    out = _save(fig, path)
    plt.close(fig)
    return out


def run_curves(history: list[dict], path: Path) -> Path:
    """One run's losses and discriminator outputs, stacked, sized for a gallery card (480 x 400 px)."""
    plt = _pyplot()
    steps = [h["step"] for h in history]
    fig, (a, b) = plt.subplots(2, 1, figsize=(4.8, 4.0), sharex=True)
    a.plot(steps, [h["loss_d"] for h in history], label="D loss", lw=1.2)
    a.plot(steps, [h["loss_g"] for h in history], label="G loss", lw=1.2)
    b.plot(steps, [h["d_x"] for h in history], label="D(x)", lw=1.2, color="tab:green")
    b.plot(steps, [h["d_g_z"] for h in history], label="D(G(z))", lw=1.2, color="tab:red")
    b.set_ylim(0, 1), b.set_xlabel("step", fontsize=8)
    for ax in (a, b):
        ax.legend(fontsize=7, loc="upper right", frameon=False), ax.grid(alpha=0.3), ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout(h_pad=0.4)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return path


def metric_series(runs: list[RunRecord]) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """metric -> run label -> (step, value) of every training-time evaluation (eval.jsonl lines with
    checkpoint "training"), for the metrics' headline numbers only."""
    series: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for r in runs:
        for line in r.curves:
            for key, value in numeric_fields(line).items():
                if direction(key) is None:
                    continue  # a metric's by-products (kid_std, real_acc, pr_images): not a quality curve
                series.setdefault(key, {}).setdefault(f"{r.dataset}/{r.model} s{r.seed}", []).append(
                    (int(line.get("step", 0)), value))
    return series


def line_style(i: int) -> tuple[str, str]:
    """(colour, dash) of the i-th line of a plot: ten colours, then the same ten dashed, so the 11th
    line is not the 1st again."""
    return f"C{i % 10}", ("-", "--", ":", "-.")[i // 10 % 4]


def metric_curves(runs: list[RunRecord], path: Path) -> Path | None:
    """metrics_vs_step.png: each metric against training step, one line per run; None if no run was
    evaluated during training."""
    series = metric_series(runs)
    if not series:
        return None
    plt = _pyplot()
    keys = sorted(series)
    # a run keeps its colour and dash in every panel (a panel may lack runs: cond_acc has no unconditional
    # ones), and the legend sits beside the panels in columns of 20: a suite's 30 runs overflow a 3-inch axis
    labels = sorted({label for per_run in series.values() for label in per_run})
    style = {label: line_style(i) for i, label in enumerate(labels)}
    cols = -(-len(labels) // 20)
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys) + 2.2 * cols, 3.2), squeeze=False,
                             layout="constrained")
    for ax, key in zip(axes[0], keys):
        for label, points in sorted(series[key].items()):
            points.sort()
            color, dash = style[label]
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", ms=3, lw=1, color=color, ls=dash,
                    label=label)
        if log_axis([p[1] for points in series[key].values() for p in points]):
            ax.set_yscale("log")
        ax.set_title(key), ax.set_xlabel("step"), ax.grid(alpha=0.3)
    lines = {line.get_label(): line for ax in axes[0] for line in ax.get_lines()}
    fig.legend([lines[label] for label in labels], labels, loc="outside right upper", fontsize=6, ncols=cols,
               frameon=False)
    out = _save(fig, path)
    plt.close(fig)
    return out


def throughput_bars(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """throughput.png's bars: dataset, model, label, mean and std of images/s over seeds, one bar per
    machine where the runs name more than one (records.machine_tags, returned beside them)."""
    done = df[df["img_per_sec"].notna()].copy()
    tags = machine_tags(done["device"])
    done["machine"] = [tags.get(str(d), "machine unknown") if tags else "" for d in done["device"]]
    g = (done.groupby(["dataset", "model", "machine"], sort=True)["img_per_sec"].agg(["mean", "std"])
         .reset_index())
    g["label"] = [f"{d} / {m}" + (f" on {t}" if t else "") for d, m, t in zip(g["dataset"], g["model"], g["machine"])]
    return g, tags


def throughput(df: pd.DataFrame, path: Path) -> Path | None:
    """Training images per second per (data set, model), mean and spread over seeds; one bar per machine
    where the runs name more than one, with a footnote naming them."""
    g, tags = throughput_bars(df)
    if g.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(g) + 1.2 + 0.15 * len(tags)))
    colors = [f"C{sorted(set(g['dataset'])).index(d) % 10}" for d in g["dataset"]]
    ax.barh(range(len(g)), g["mean"], xerr=g["std"].fillna(0), color=colors, alpha=0.85)
    ax.set_yticks(range(len(g)), list(g["label"]), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("training images / second")
    ax.grid(axis="x", alpha=0.3)
    devices = sorted(set(df.loc[df["img_per_sec"].notna(), "device"].dropna()))
    ax.set_title("throughput" + (f" on {devices[0]}" if len(devices) == 1 else
                                 " (different machines: compare bars of one machine)" if tags else ""), fontsize=9)
    if tags:
        fig.text(0.01, 0.005, machines_note(tags), fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.12 * len(tags) / (0.35 * len(g) + 1.2), 1, 1))
    out = _save(fig, path)
    plt.close(fig)
    return out


def write_plots(runs: list[RunRecord], df: pd.DataFrame, out: Path) -> list[Path]:
    """losses.png, throughput.png and metrics_vs_step.png (when there are training-time metrics)."""
    out.mkdir(parents=True, exist_ok=True)
    made = [loss_curves([r for r in runs if r.history], out / "losses.png") if any(r.history for r in runs) else None,
            throughput(df, out / "throughput.png"), metric_curves(runs, out / "metrics_vs_step.png")]
    return [p for p in made if p is not None]
