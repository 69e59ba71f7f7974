"""The trainer, part 3 (rank 0): what a run leaves when it ends: GIFs, the loss plot, per-class exports
and summary.json, whose figures are the measured ones (images drawn, seconds trained)."""
from __future__ import annotations

import dataclasses
import math
import platform
from typing import Any, Optional

import torch

from gan_bench.run.checkpoint import EMA_G
from gan_bench.run.world import device_name
from gan_bench.train import memory
from gan_bench.train.setup import Training
from gan_bench.train.trackers import tracker_names


def finish(t: Training, *, status: str, reason: Optional[str], seconds: float, warnings: list[str],
           out_of_time: bool = False) -> dict[str, Any]:
    """Write the run's GIFs, loss plot, exports (completed runs) and summary.json; returns the summary."""
    run, spec = t.run, t.data.spec
    records = run.records("metrics")
    run.write_gifs(spec.classes if t.plan.model.draws_class else None, spec.resolution)
    export = t.plan.model.export_classes
    if export is not None and status == "completed":
        payloads = export(t.gan)
        if t.ema is not None:  # each pair's averaged G beside its raw G, under the checkpoint's key
            for name, averaged in export(t.shown()).items():
                payloads[name][EMA_G] = averaged["G"]
        run.write_class_exports(payloads)
    run.write_loss_plot(records)
    out = {**summary(t, status=status, reason=reason, seconds=seconds, records=records),
           **t.plan.budget.summary(out_of_time=out_of_time, step=t.step, total=t.total),
           **memory.peaks(t.device, cpu_reset=t.cpu_peak_reset), "warnings": warnings,
           "best_" + t.cfg.eval.primary: t.best if math.isfinite(t.best) else None,
           "processes": t.world.size,
           "speed": t.speed.record(),  # precision and layout: say how the figures were made
           "data_on_device": t.source.resident}
    run.write_summary(out)
    return out


WINDOW = 0.1  # share of the run's last steps whose logged losses the summary averages


def last_window(records: list[dict[str, Any]], step: int) -> list[dict[str, Any]]:
    """The records logged in the last WINDOW of the steps trained (at least the last record)."""
    start = step - max(1, round(WINDOW * step))
    return [r for r in records if r["step"] > start] or records[-1:]


def _mean(records: list[dict[str, Any]], key: str) -> Optional[float]:
    return sum(r[key] for r in records) / len(records) if records else None


def summary(t: Training, *, status: str, reason: Optional[str], seconds: float,
            records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run was and what it measured; images_seen counts the batches actually drawn."""
    cfg, gan, spec = t.cfg, t.gan, t.data.spec
    last = records[-1] if records else {}
    window = last_window(records, t.step)
    return {
        "status": status, "reason": reason, "name": cfg.name, "dataset": cfg.data.name, "model": cfg.model.name,
        "seed": cfg.train.seed, "config_hash": cfg.hash(), "steps": t.step,
        "train_seconds": seconds, "images_seen": t.images_seen,
        "img_per_sec": t.images_seen / seconds if seconds > 0 else None,
        # the last logged step's losses are one batch's, often a spike; the window's mean is the level
        "final_loss_d": last.get("loss_d"), "final_loss_g": last.get("loss_g"),
        "mean_loss_d": _mean(window, "loss_d"), "mean_loss_g": _mean(window, "loss_g"),
        "mean_loss_steps": [window[0]["step"], window[-1]["step"]] if window else None,
        "params_G": sum(p.numel() for p in gan.G.parameters()),
        "params_D": sum(p.numel() for p in gan.D.parameters()),
        "resolution": spec.resolution, "num_classes": spec.num_classes, "classes": spec.classes,
        "train_images": len(t.data.train), "device": device_name(t.device), "torch": torch.__version__,
        "python": platform.python_version(),
        # the code it ran beside gan-bench's (a resumed run: the files it finished with), where else it was watched
        "plugins": [dataclasses.asdict(p) for p in cfg.plugins], "trackers": tracker_names(cfg),
    }
