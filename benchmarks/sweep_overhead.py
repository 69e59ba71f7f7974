"""A sweep's overhead per trial against the trial's training time (issue 34's target: under 5 % at one-minute
trials).

    python benchmarks/sweep_overhead.py                 # 3 trials of cdcgan at 20 training seconds each
    python benchmarks/sweep_overhead.py --seconds 60    # the target's one-minute trials

Measured, each on its own:
  process start   `python -c "import gan_bench.sweep.worker"` in a fresh interpreter (once per worker)
  data loading    load_data of the sweep's data set (once per worker: DataCache)
  bookkeeping     one trial's study traffic on SQLite: the lock, the check for dead workers, ask, the
                  worker's attributes, tell (median of 20)
  trial           a real sweep (gan-bench sweep's run_sweep, one worker): each trial's wall time from the
                  study, its training seconds from its run's summary; the rest is the run's own work at the
                  end (the objective's evaluation, snapshots, GIFs, summary) and the trial's bookkeeping
                  (medians over the trials after the first, which also fits the data set's evaluation
                  network once per machine: metrics cache it)
The data is the shared Quick, Draw! file when it is there (../shared/data from the repo root), else a
small generated npz. Writes benchmarks/results/sweep-overhead-<date>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _data(tmp: Path) -> dict:
    train = SHARED / "quickdraw10_train.npz"
    if train.exists():
        return {"name": "npz", "path": str(train), "test_path": str(SHARED / "quickdraw10_test.npz")}
    rng = np.random.default_rng(0)
    path = tmp / "synthetic.npz"
    np.savez(path, x=rng.integers(0, 255, (3000, 28, 28), dtype=np.uint8), y=np.arange(3000) % 10,
             classes=np.array([f"c{i}" for i in range(10)]))
    return {"name": "npz", "path": str(path), "test_fraction": 0.2}


def process_start() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import gan_bench.sweep.worker"], check=True, cwd=ROOT,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    return time.perf_counter() - t


def bookkeeping(tmp: Path, n: int = 20) -> float:
    import optuna

    from gan_bench.sweep.folder import SweepFolder
    from gan_bench.sweep.study import locked, take_trial

    folder = SweepFolder(tmp / "bookkeeping")
    folder.path.mkdir()
    study = optuna.create_study(storage=folder.storage_url, study_name="b")
    times = []
    for _ in range(n):
        t = time.perf_counter()
        with locked(folder):
            trial = take_trial(study, n + 1)
        trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("train_seconds", 1.0)
        study.tell(trial, 1.0)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=20.0, help="training seconds per trial (default 20)")
    p.add_argument("--trials", type=int, default=3)
    a = p.parse_args()
    import torch

    from gan_bench.config import build_config
    from gan_bench.data import load_data
    from gan_bench.sweep import SweepFolder, load_sweep, run_sweep

    from gan_bench.run.world import device_name

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    machine = device_name(torch.device("cpu"))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        data = _data(tmp)
        (tmp / "c.yaml").write_text(yaml.safe_dump({"data": data, "model": {"name": "cdcgan"},
                                                    "train": {"progress": False, "device": "cpu"},
                                                    "eval": {"samples": 2000}}))
        (tmp / "s.yaml").write_text(yaml.safe_dump({
            "name": "overhead", "out": str(tmp / "sw"), "configs": [str(tmp / "c.yaml")], "objective": "fd",
            "budget": {"minutes": a.seconds / 60, "machine": machine},
            "trials": a.trials, "space": {"train.lr_g": {"loguniform": [1e-4, 1e-3]}}}))
        start = process_start()
        t = time.perf_counter()
        load_data(build_config([{"data": data}]).data)
        loading = time.perf_counter() - t
        book = bookkeeping(tmp)
        sweep = load_sweep(tmp / "s.yaml")
        t = time.perf_counter()
        run_sweep(sweep, folder=SweepFolder(tmp / "sw"), report=False, say=lambda s: None)
        sweep_wall = time.perf_counter() - t
        import optuna

        study = optuna.load_study(study_name="overhead/c", storage=SweepFolder(tmp / "sw").storage_url)
        trials = [{"number": tr.number, "wall_s": (tr.datetime_complete - tr.datetime_start).total_seconds(),
                   "train_s": tr.user_attrs["train_seconds"]} for tr in study.get_trials()]
    later = trials[1:] or trials  # the first trial on a machine also fits the data set's evaluation network (cached)
    train_s = statistics.median(x["train_s"] for x in later)
    in_trial = statistics.median(x["wall_s"] - x["train_s"] for x in later)
    per_worker = start + loading  # once per worker, spread over its trials
    rows = {"process start (once per worker)": start, "data loading (once per worker)": loading,
            "bookkeeping per trial": book, "in the trial, beside training (evaluation, snapshots, summary)": in_trial,
            "training per trial": train_s}
    for k, v in rows.items():
        print(f"{k:62s} {v:8.2f} s")
    book_share = (book + per_worker / a.trials) / train_s
    print(f"overhead per trial, without the objective's evaluation: {100 * book_share:.1f} % of its training "
          f"({a.trials} trials per worker); with everything beside training: "
          f"{100 * (book_share + in_trial / train_s):.1f} %")
    out = ROOT / "benchmarks" / "results" / f"sweep-overhead-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "cores": os.cpu_count(),
                               "load_average": os.getloadavg(), "torch": torch.__version__, "seconds": rows,
                               "trials": trials, "sweep_wall_s": sweep_wall}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
