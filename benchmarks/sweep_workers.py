"""Two sweep workers against one on the same study (issue 34's target: two workers on two cores finish a study
in at most 55 % of one worker's wall time).

    env -u OMP_NUM_THREADS python benchmarks/sweep_workers.py                # 6 trials of 150 steps, 3 reps
    env -u OMP_NUM_THREADS python benchmarks/sweep_workers.py --trials 2 --steps 2 --reps 1   # a smoke check

Each repetition runs the same sweep file twice, `gan-bench sweep FILE --jobs 1` and `--jobs 2`, each in a fresh
process and a fresh folder (so both draw the same trials: the sweep is seeded), the order alternating between
repetitions; the wall time is the whole command's (process start, checks, data loading per worker, training,
the objective's evaluation, the report). One untimed sweep first fits the data set's evaluation network, which
later runs load from the cache. Leave OMP_NUM_THREADS unset: `--jobs 1` then trains with every core and each of
`--jobs 2`'s workers with half of them, as gan-bench shares a CPU (gan_bench/threads.py). The machine must be
otherwise idle: the script names other gan-bench trainings it finds holding the CPU, and the load average.
The data is the shared Quick, Draw! file when it is there (../shared/data from the repo root), else a small
generated npz. Writes benchmarks/results/sweep-workers-<date>.json (or --json PATH).
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

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from sweep_overhead import _data  # noqa: E402  the same data as the overhead benchmark

TARGET = 0.55


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        import platform

        return platform.processor() or "unknown CPU"


def others() -> int:
    """gan-bench trainings holding a claim on this CPU (gan_bench/threads.py)."""
    from gan_bench import threads

    return threads.trainings(Path(tempfile.gettempdir()) / threads.FOLDER)


def sweep_file(tmp: Path, *, trials: int, steps: int, samples: int) -> Path:
    (tmp / "c.yaml").write_text(yaml.safe_dump({"data": _data(tmp), "model": {"name": "cdcgan"},
                                                "train": {"progress": False, "device": "cpu"},
                                                "eval": {"samples": samples}}))
    path = tmp / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "workers", "configs": [str(tmp / "c.yaml")], "objective": "fd", "budget": {"steps": steps},
        "trials": trials, "space": {"train.lr_g": {"loguniform": [1e-4, 1e-3]},
                                    "train.lr_d": {"loguniform": [1e-4, 1e-3]}}}))
    return path


def timed(sweep: Path, out: Path, jobs: int, env: dict) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "gan_bench", "sweep", str(sweep), "--out", str(out), "--jobs",
                        str(jobs)], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"sweep --jobs {jobs} failed (exit {r.returncode}):\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=6, help="trials of the study (default 6)")
    p.add_argument("--steps", type=int, default=150, help="training steps per trial (default 150)")
    p.add_argument("--samples", type=int, default=2000, help="images the objective (fd) is computed on")
    p.add_argument("--reps", type=int, default=3, help="repetitions of the pair (default 3)")
    p.add_argument("--json", type=Path, help="where the JSON goes (default benchmarks/results/)")
    a = p.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if "OMP_NUM_THREADS" in os.environ:
        print(f"note: OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} is left out of the sweeps' environment")
    cpu, cores = machine(), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load_before, busy = os.getloadavg(), others()
    print(f"{cpu}, {cores} cores; load average {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"{a.trials} trials x {a.steps} steps of cdcgan, {a.reps} reps")
    if busy or load_before[0] > 0.5:
        print(f"warning: {busy} other gan-bench training(s) hold this CPU, load average {load_before[0]:.2f}: wait "
              f"for an idle machine, else these times are not a figure")
    runs = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sweep = sweep_file(tmp, trials=a.trials, steps=a.steps, samples=a.samples)
        (tmp / "warm").mkdir()
        warm = sweep_file(tmp / "warm", trials=1, steps=1, samples=a.samples)
        timed(warm, tmp / "warm" / "out", 1, env)  # the evaluation network fitted and cached, untimed
        for rep in range(a.reps):
            for jobs in ((1, 2) if rep % 2 == 0 else (2, 1)):
                wall = timed(sweep, tmp / f"rep{rep}-jobs{jobs}", jobs, env)
                runs.append({"rep": rep, "jobs": jobs, "wall_s": wall, "load_1min": os.getloadavg()[0]})
                print(f"rep {rep} --jobs {jobs}: {wall:7.1f} s  (load {runs[-1]['load_1min']:.2f})")
    one = statistics.median(r["wall_s"] for r in runs if r["jobs"] == 1)
    two = statistics.median(r["wall_s"] for r in runs if r["jobs"] == 2)
    ratio = two / one
    print(f"median --jobs 1 {one:.1f} s, --jobs 2 {two:.1f} s: ratio {ratio:.2f} (target at most {TARGET}: "
          f"{'met' if ratio <= TARGET else 'missed'}); load average after {os.getloadavg()[0]:.2f}")
    out = a.json or HERE / "results" / f"sweep-workers-{time.strftime('%Y%m%d-%H%M')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": cpu, "cores": cores, "load_average_before": load_before,
                               "load_average_after": os.getloadavg(), "other_trainings": busy,
                               "trials": a.trials, "steps": a.steps, "samples": a.samples, "runs": runs,
                               "median_jobs1_s": one, "median_jobs2_s": two, "ratio": ratio}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
