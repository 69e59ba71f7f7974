"""Two trainings side by side on one CPU: how much each loses, under each OpenMP setting.

    python benchmarks/shared_cpu.py                 # cdcgan 28 px, batch 128, 60 steps a process
    python benchmarks/shared_cpu.py --steps 10      # quicker

Each setting runs the trainer's bare step (bench.time_bare: the trainer's speed switches) in a fresh
process, first alone, then two processes started together; the settings alternate, `--reps` times.
Settings (environment of the process, set before torch loads OpenMP):
  spin      OpenMP's defaults (idle threads spin-wait), every core's worth of threads per process
  passive   OMP_WAIT_POLICY=PASSIVE (idle threads sleep), every core's worth of threads
  gan-bench what `gan-bench` chooses (gan_bench/threads.py): passive waiting, and the cores shared out
            among the gan-bench trainings running on the machine
Prints a table of images/s (median over reps) and writes JSON to benchmarks/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r}); sys.path.insert(0, {here!r})
{prelude}
import torch
from bench import time_bare
from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
spec = DataSpec("bench", 28, 1, 10, [f"c{{i}}" for i in range(10)])
r = time_bare(ModelConfig(name="cdcgan"), spec, batch_size=128, steps={steps}, device=torch.device("cpu"), warmup=2)
print(json.dumps({{"img_per_sec": r["img_per_sec"], "threads": torch.get_num_threads()}}))
"""

SETTINGS = {
    "spin": ({}, ""),
    "passive": ({"OMP_WAIT_POLICY": "PASSIVE"}, ""),
    # the CLI's choice: gan_bench/threads.py runs as the package loads, before torch
    "gan-bench": ({}, "import gan_bench.threads as t; t.claim()"),
}


def launch(setting: str, steps: int) -> subprocess.Popen:
    extra, prelude = SETTINGS[setting]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    env.update(extra)
    code = CHILD.format(root=str(ROOT), here=str(HERE), prelude=prelude, steps=steps)
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)


def measure(setting: str, n: int, steps: int) -> list[dict]:
    procs = [launch(setting, steps) for _ in range(n)]
    if setting == "gan-bench":
        time.sleep(0.0)
    out = []
    for p in procs:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"{setting}: a child failed (status {p.returncode})")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from gan_bench.run.world import cpu_model

    load_before = os.getloadavg()
    rows: dict[str, dict[str, list[float]]] = {s: {"alone": [], "side by side": [], "threads": []} for s in SETTINGS}
    for rep in range(a.reps):
        for s in SETTINGS:  # alternate the settings within each repetition
            alone = measure(s, 1, a.steps)[0]
            pair = measure(s, 2, a.steps)
            rows[s]["alone"].append(alone["img_per_sec"])
            rows[s]["side by side"] += [r["img_per_sec"] for r in pair]
            rows[s]["threads"].append(f"{alone['threads']} alone, {'+'.join(str(r['threads']) for r in pair)} paired")
            print(f"rep {rep + 1} {s:9s} alone {alone['img_per_sec']:7.1f} img/s; side by side "
                  + ", ".join(f"{r['img_per_sec']:.1f}" for r in pair), flush=True)
    cpu = cpu_model()
    print(f"\n{cpu}, {os.cpu_count()} cores; load average before {load_before[0]:.2f}, after "
          f"{os.getloadavg()[0]:.2f}; cdcgan 28 px batch 128, {a.steps} steps a process, {a.reps} reps, medians\n")
    print("| setting | alone (img/s) | each, two side by side (img/s) | each / alone | threads |")
    print("| --- | ---: | ---: | ---: | --- |")
    summary = {}
    for s, r in rows.items():
        alone, pair = statistics.median(r["alone"]), statistics.median(r["side by side"])
        summary[s] = {"alone": alone, "side_by_side": pair, "ratio": pair / alone, **r}
        print(f"| {s} | {alone:.1f} | {pair:.1f} | {pair / alone:.2f} | {r['threads'][0]} |")
    out = HERE / "results" / f"shared-cpu-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps({"cpu": cpu, "cores": os.cpu_count(), "load_before": load_before,
                               "steps": a.steps, "reps": a.reps, "settings": summary}, indent=2))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
