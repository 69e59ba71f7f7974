"""Step time of each training lever (train.loss, train.diffaug, train.ema, train.mismatch, TTUR,
model.spectral_norm, model.d_label) against the shared recipe, on the same model and data.

    python benchmarks/training_levers.py            # cdcgan width 64, batch 128, 28 px (about 10 min on 2 cores)
    python benchmarks/training_levers.py --quick    # smoke-sized

Every variant is built through the trainer's own build() (the device's speed switches, the trainer's
batches of shared/data/quickdraw10_train.npz, or shapes when it is missing). After warm-up steps
that are not counted, the variants take one trainer step each (gan_step, plus the average's update
for train.ema) per round, the order rotating every round, so that a machine whose load changes
(a shared one) slows every variant alike: the ratio to the baseline is the median over rounds of
the variant's step time / the baseline's in the same round. For train.ema the one-off cost of
recomputing the average's BatchNorm statistics (before every snapshot, evaluation and checkpoint)
is timed separately. The JSON goes to benchmarks/results/<device>-<date>-training-levers.json with
every step time and the load average before and after.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from bench import SHARED_QUICKDRAW, machine, slug  # beside this file
from gan_bench.config import build_config
from gan_bench.run.world import pick_device
from gan_bench.train.setup import Training, build
from gan_bench.train.step import gan_step

HERE = Path(__file__).resolve().parent
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "baseline (bce)": {},
    "loss=hinge": {"train": {"loss": "hinge"}},
    "loss=lsgan": {"train": {"loss": "lsgan"}},
    "diffaug=color,translation,cutout": {"train": {"diffaug": "color,translation,cutout"}},
    "diffaug=translation,cutout": {"train": {"diffaug": "translation,cutout"}},
    "ema=0.999": {"train": {"ema": 0.999}},
    "spectral_norm": {"model": {"spectral_norm": True}},
    "d_label=projection": {"model": {"d_label": "projection"}},
    "mismatch=1": {"train": {"mismatch": 1.0}},
    "lr_d=4e-4, lr_g=1e-4 (TTUR)": {"train": {"lr_d": 4e-4, "lr_g": 1e-4}},
    "spectral_norm + projection + hinge + diffaug + ema": {
        "model": {"spectral_norm": True, "d_label": "projection"},
        "train": {"loss": "hinge", "diffaug": "color,translation,cutout", "ema": 0.999}},
}


def recipe(batch: int) -> dict[str, Any]:
    data = ({"name": "npz", "path": str(SHARED_QUICKDRAW)} if SHARED_QUICKDRAW.exists()
            else {"name": "shapes", "per_class": 1000})
    return {"data": data, "model": {"name": "cdcgan"}, "train": {"batch_size": batch, "progress": False}}


def step(t: Training, i: int) -> float:
    """Seconds for trainer step i (the device synchronised at both ends)."""
    sync = (torch.cuda.synchronize if t.device.type == "cuda" else (lambda: None))
    x, y = t.source.batch(0, i % t.source.steps_per_epoch)
    sync()
    t0 = time.perf_counter()
    gan_step(t.plan.recipe, t.gan, t.opt_d, t.opt_g, t.speed.input(x), y, step=i)
    if t.ema is not None:
        t.ema.update(t.gan.G, i + 1)
    sync()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    rounds, warm, batch = (2, 1, 16) if a.quick else (30, 2, 128)
    common = recipe(batch)
    if a.quick:
        common["model"]["width"] = 8
    built = {name: build(build_config([common, delta]), device=device, folder=False)
             for name, delta in VARIANTS.items()}
    load_before = os.getloadavg()
    for t in built.values():
        t.gan.train()
        for i in range(warm):
            step(t, i)
    times: dict[str, list[float]] = {name: [] for name in built}
    names = list(built)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(step(built[name], warm + r))
        print(f"round {r + 1}/{rounds}: baseline {times[names[0]][-1] * 1e3:.0f} ms, load {os.getloadavg()[0]:.2f}",
              flush=True)
    t = built["ema=0.999"]
    t0 = time.perf_counter()
    t.shown()  # the average's BatchNorm statistics, recomputed
    refresh = time.perf_counter() - t0
    baseline = times[names[0]]
    rows = {name: {"median_ms_per_step": statistics.median(v) * 1e3, "ms_per_step": [x * 1e3 for x in v],
                   "ratio_to_baseline": statistics.median(x / b for x, b in zip(v, baseline))}
            for name, v in times.items()}
    out = {"machine": machine(device), "config": common, "rounds": rounds,
           "warmup_steps": warm, "speed": built["baseline (bce)"].speed.record(),
           "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "ema_batchnorm_refresh_seconds": refresh, "variants": rows}
    print(f"\n{'variant':52s} {'ms/step':>9s} {'x baseline (paired)':>20s}")
    for name, row in rows.items():
        print(f"{name:52s} {row['median_ms_per_step']:9.1f} {row['ratio_to_baseline']:20.2f}")
    print(f"EMA BatchNorm statistics recomputed in {refresh:.2f} s; load average {load_before} -> {os.getloadavg()}")
    if not a.quick:
        path = HERE / "results" / f"{slug(out['machine']['device'])}-{time.strftime('%Y-%m-%d')}-training-levers.json"
        path.write_text(json.dumps(out, indent=1) + "\n")
        print(f"written {path}")


if __name__ == "__main__":
    main()
