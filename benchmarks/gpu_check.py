"""The GPU check: every CUDA figure the project lacks, in one command, each part under its own time limit.

    bash benchmarks/gpu_check.sh                          # on a GPU machine; with $OUT set, into $OUT
    python benchmarks/gpu_check.py --out DIR              # the same, into DIR
    python benchmarks/gpu_check.py --smoke --out DIR      # every part on the CPU at toy sizes (minutes)
    python benchmarks/gpu_check.py --stage-data .device_data    # the shared .npz files that fit, to carry
    python benchmarks/gpu_check.py --out DIR --parts suite --budget 540   # one part alone, all the time

The parts, in order (the cheapest proof first):
  1 tests    pytest tests/ -k "cuda or fast_path" (the CUDA-only tests, the no-host-synchronisation one too)
  2 configs  a short run of every shipped config on the staged data, with its peak GPU memory
  3 bench    benchmarks/bench.py for cdcgan 28x28 and convdcgan 64x64 (loops, batch and K sweeps,
             speed switches, then torch.compile and CUDA graphs in a second call of their own)
  4 sync_bn  train.sync_bn takes torch's SyncBatchNorm in a one-process group
  5 quality  training seconds until configs/quickdraw_cdcgan_tuned.yaml's cond_acc reaches 0.8
  6 suite    configs/suites/paper.yaml on the staged data at the largest budget the time left allows
  7 profile  when a speed or time-to-quality target is missed: torch.profiler of one step of each such model
Every part writes <out>/parts/<n>-<name>.json (device, torch, status, seconds, figures, targets: value,
target and pass or miss each) and its logs under <out>/logs/; <out>/results.json holds every part and
<out>/summary.txt the screen printed at the end. With --pack (the device returns at most 8 files), the
work goes to a temporary folder and <out> gets results.json, summary.txt and gpu_check.tar.gz (every
JSON, log and table), rewritten after each part so that a call cut short still returns what was done.

Beside this file: gpu_check_parts.py (the parts), gpu_check_proc.py (the run and its processes),
gpu_check_work.py (what runs in the parts' own processes), gpu_check_data.py (the staged data).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tarfile
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import gpu_check_data as data  # beside this file
from gpu_check_parts import (PROFILE_RESERVE_S, QUALITY, missed, part_bench, part_configs, part_profile,
                             part_quality, part_suite, part_sync_bn, part_tests)
from gpu_check_proc import Check

FULL_BUDGET_S, SMOKE_BUDGET_S = 540.0, 300.0  # a device call runs 10 minutes at most
TEXT = {".json", ".jsonl", ".log", ".txt", ".xml", ".yaml", ".md", ".csv"}  # what the bundle keeps


class CheckError(Exception):
    """Bad input to the check: one line, exit status 2."""


# ---- the driver ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    n: int
    name: str
    budget_s: Optional[float]   # None: what is left (part 6)
    smoke_budget_s: float
    run: Callable[[Check, float], dict[str, Any]]


PARTS = [Part(1, "tests", 60, 90, part_tests), Part(2, "configs", 110, 90, part_configs),
         Part(3, "bench", 190, 120, part_bench), Part(4, "sync_bn", 20, 40, part_sync_bn),
         Part(5, "quality", 110, 60, part_quality), Part(6, "suite", None, 90, part_suite),
         Part(7, "profile", PROFILE_RESERVE_S, 60, part_profile)]
PART_NAMES = [p.name for p in PARTS]


def budget_for(c: Check, part: Part, todo: list[str]) -> float:
    if c.smoke:
        return min(part.smoke_budget_s, max(c.left(), 5.0))
    if part.budget_s is None:  # the rest, less part 7's share when it will run
        keep = PROFILE_RESERVE_S if "profile" in todo and missed(c) else 0.0
        return max(0.0, c.left() - keep - 5)
    return max(5.0, min(part.budget_s, c.left()))


def run_part(c: Check, part: Part, todo: list[str]) -> dict[str, Any]:
    budget = budget_for(c, part, todo)
    print(f"[{part.n}/7 {part.name}] {budget:.0f} s", flush=True)
    t0 = time.monotonic()
    try:
        r = part.run(c, budget)
    except Exception as e:  # noqa: BLE001  one part's bug must not cost the others
        r = {"status": "failed", "reason": f"{type(e).__name__}: {e}", "figures": {}, "targets": {}}
    r = {"part": part.name, "n": part.n, "status": r.pop("status"), "reason": r.pop("reason", None),
         "seconds": round(time.monotonic() - t0, 1), "budget_s": round(budget, 1),
         "device": c.machine["device"], "torch": c.machine["torch"], "smoke": c.smoke, **r}
    c.path("parts", f"{part.n}-{part.name}.json").write_text(json.dumps(r, indent=2) + "\n")
    c.results[part.name] = r
    print(f"[{part.n}/7 {part.name}] {r['status']} in {r['seconds']:.0f} s", flush=True)
    return r


def machine(device: str) -> dict[str, Any]:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"CPU {cpu}", "torch": torch.__version__,
            "cuda": torch.version.cuda, "cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "date": dt.datetime.now().isoformat(timespec="seconds")}


def mark(t: dict[str, Any]) -> str:
    return {True: "pass", False: "MISS", None: "n/a"}[t["pass"]]


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def summary(c: Check) -> str:
    """The one screen printed at the end (summary.txt)."""
    m = c.machine
    lines = [f"GPU check{' (SMOKE: toy sizes on the CPU; no figure here is a measurement)' if c.smoke else ''}: "
             f"{m['device']}, torch {m['torch']}, {m['cores']} cores, {m['date']}; "
             f"{c.budget - c.left():.0f} s of a {c.budget:.0f} s budget",
             f"data: {data.describe(c.manifest) if c.manifest else f'none staged in {c.data_dir}'}"]
    for part in PARTS:
        r = c.results.get(part.name)
        if r is None:
            lines.append(f"{part.n} {part.name:8s} not run")
            continue
        lines.append(f"{part.n} {part.name:8s} {r['status']:8s} {r['seconds']:5.0f} s  {headline(part.name, r)}"
                     + (f"  ({r['reason']})" if r.get("reason") else ""))
        lines += [f"    {mark(t):4s} {name}: {fmt(t['value'])}" for name, t in r.get("targets", {}).items()]
    return "\n".join(lines) + "\n"


def headline(name: str, r: dict[str, Any]) -> str:
    f = r.get("figures", {})
    if name == "tests":
        return (f"{f.get('passed', 0)} passed, {f.get('failed', 0) + f.get('error', 0)} failed, {f.get('skipped', 0)} "
                f"skipped; {len(f.get('collection_errors', []))} test modules not importable here")
    if name == "configs":
        runs = f.get("runs", [])
        mem = "peak_gpu_mb" if any(x.get("peak_gpu_mb") is not None for x in runs) else "peak_cpu_mb"
        text = ", ".join(f"{x['config']} {fmt(x.get('img_per_sec'))} img/s {fmt(x.get(mem))} MiB"
                         if x.get("status") == "completed" else f"{x['config']} {x.get('status')}" for x in runs)
        return wrap(f"{len(runs)} runs ({mem.split('_')[1].upper()} memory), {len(f.get('skipped', []))} "
                    f"skipped: {text}")
    if name == "bench":
        return wrap("; ".join(f"{k}: trainer {fmt(v.get('median_img_per_sec', {}).get('trainer'))} img/s, reference "
                         f"{fmt(v.get('median_img_per_sec', {}).get('reference'))}, bare "
                         f"{fmt(v.get('median_img_per_sec', {}).get('bare'))}" for k, v in f.items()))
    if name == "sync_bn":
        return f"{f.get('backend')} group of {f.get('world_size')}: {f.get('norm_layers')}"
    if name == "quality":
        return (f"cond_acc {fmt(f.get('best_cond_acc'))} best, {QUALITY} at {fmt(f.get('seconds_to_quality'))} s "
                f"(step {f.get('step')}), {fmt(f.get('img_per_sec'))} img/s")
    if name == "suite":
        return f"{len(f.get('runs', []))} runs at {fmt(f.get('max_minutes_per_run'))} min each, {len(f.get('dropped', []))} dropped"
    if name == "profile":
        return wrap("; ".join(f"{s['case']['name']}: {fmt(s['step_ms'])} ms/step, device busy "
                              f"{fmt(s['device_busy_share'])}, {s['kernels']} kernels" for s in f.get("steps", []))
                    + f"; {len(f.get('misses', []))} targets missed")
    return ""


def wrap(text: str, width: int = 110) -> str:
    return textwrap.fill(text, width, subsequent_indent=" " * 26)


def write_results(c: Check) -> None:
    results = {"machine": c.machine, "smoke": c.smoke, "budget_s": c.budget, "data": c.manifest, "parts": c.results}
    text = summary(c)
    c.path("results.json").write_text(json.dumps(results, indent=2) + "\n")
    c.path("summary.txt").write_text(text)
    if c.pack is not None:  # three files where the device returns eight at most
        for name in ("results.json", "summary.txt"):
            tmp = c.pack / f".{name}.tmp"
            tmp.write_text((c.out / name).read_text())
            tmp.replace(c.pack / name)
        tmp = c.pack / ".gpu_check.tar.gz.tmp"
        with tarfile.open(tmp, "w:gz") as tar:
            for p in sorted(c.out.rglob("*")):
                if p.is_file() and p.suffix in TEXT and "datasets" not in p.relative_to(c.out).parts:
                    tar.add(p, arcname=str(Path("gpu_check") / p.relative_to(c.out)))
        tmp.replace(c.pack / "gpu_check.tar.gz")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path(os.environ["OUT"]) if os.environ.get("OUT") else None,
                   help="where every JSON and log goes (default: $OUT)")
    p.add_argument("--pack", action="store_true", help="work in a temporary folder; --out gets 3 files")
    p.add_argument("--smoke", action="store_true", help="every part on the CPU at toy sizes")
    p.add_argument("--parts", nargs="+", choices=PART_NAMES, default=PART_NAMES, help="the parts to run (in order)")
    p.add_argument("--budget", type=float, help=f"seconds for all parts (default {FULL_BUDGET_S:.0f}; smoke "
                                                f"{SMOKE_BUDGET_S:.0f})")
    p.add_argument("--data", type=Path, default=data.DEVICE_DATA, help="the staged data (default .device_data)")
    p.add_argument("--configs", nargs="+", default=[], metavar="GLOB", help="part 2: only these config stems")
    p.add_argument("--suite-runs", type=int, help="part 6: at most this many runs")
    p.add_argument("--stage-data", type=Path, metavar="DIR", help="copy the shared .npz files that fit into DIR, and stop")
    p.add_argument("--shared", type=Path, default=data.SHARED, help="the shared data folder (for --stage-data)")
    return p


def prepare(a: argparse.Namespace) -> Check:
    """Check the arguments and make the output folder; CheckError on bad input, before anything runs."""
    if a.out is None:
        raise CheckError("no output folder: pass --out DIR (or set $OUT)")
    if a.suite_runs is not None and a.suite_runs < 1:
        raise CheckError(f"--suite-runs {a.suite_runs}: expected a count of at least 1")
    if a.budget is not None and not a.budget > 0:
        raise CheckError(f"--budget {a.budget}: expected seconds > 0, e.g. 540")
    import torch

    if not a.smoke and not torch.cuda.is_available():
        raise CheckError("no CUDA device here: the full check needs a GPU; use --smoke for the CPU sizes")
    try:
        a.out.mkdir(parents=True, exist_ok=True)
        probe = a.out / f".gpu_check-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise CheckError(f"cannot write to --out {a.out} ({e.strerror}); choose a writable folder") from None
    out = Path(tempfile.mkdtemp(prefix="gpu_check-")) if a.pack else a.out
    device = "cpu" if a.smoke else "cuda"
    if a.smoke:  # tiny stand-ins under the shared names, inside the output folder
        a.data = out / "smoke_data"
        manifest = data.smoke_data(a.data)
    else:
        try:
            manifest = data.read_manifest(a.data)
        except data.DataError:
            manifest = None  # parts that need the data say so; the rest still runs
    return Check(out=out, smoke=a.smoke, device=device, machine=machine(device), data_dir=a.data, manifest=manifest,
                 budget=a.budget or (SMOKE_BUDGET_S if a.smoke else FULL_BUDGET_S), configs=a.configs,
                 suite_runs=a.suite_runs, pack=a.out if a.pack else None)


def main(argv: Optional[list[str]] = None) -> int:
    a = parser().parse_args(argv)
    try:
        if a.stage_data is not None:
            manifest = data.stage(a.stage_data, shared=a.shared)
            print(f"staged in {a.stage_data}: {data.describe(manifest)}")
            return 0
        c = prepare(a)
    except (CheckError, data.DataError) as e:
        print(f"gpu_check: error: {e}", file=sys.stderr)
        return 2
    print(f"gpu_check: {c.machine['device']}, {'smoke, ' if c.smoke else ''}{c.budget:.0f} s, into {c.out}", flush=True)
    todo = [p.name for p in PARTS if p.name in a.parts]
    for part in PARTS:
        if part.name in todo:
            run_part(c, part, todo)
            write_results(c)
    write_results(c)
    print(summary(c), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
