"""The GPU check's work that runs in its own processes (gpu_check.py starts them, each under a time limit):

    python benchmarks/gpu_check_work.py configs SPEC.json   # `gan-bench run` of each config, one after another
    python benchmarks/gpu_check_work.py sync_bn SPEC.json   # train.sync_bn's layers in a one-process group
    python benchmarks/gpu_check_work.py profile SPEC.json   # torch.profiler of one step per case

SPEC.json holds the task's inputs; each task writes its results where SPEC.json says, as it goes
(configs: one JSON line before and after each run, so a crash or the time limit loses only the run in flight).
"""
from __future__ import annotations

import copy
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gan_bench.config import ModelConfig, TrainConfig, build_config
from gan_bench.data.base import DataSpec
from gan_bench.models import build_model
from gan_bench.run import RunFolder
from gan_bench.run.world import World
from gan_bench.train.distributed import data_parallel
from gan_bench.train.recipe import Recipe
from gan_bench.train.speed import SpeedSwitches, adam
from gan_bench.train.step import gan_step
from bench import bare_step, synthetic_batch  # beside this file

SUMMARY_KEYS = ("status", "reason", "steps", "train_seconds", "img_per_sec", "peak_gpu_mb", "peak_cpu_mb",
                "device", "train_images", "resolution", "speed")


def append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


# ---- configs: a short run of each shipped config -------------------------------------------------

def run_configs(spec: dict[str, Any]) -> None:
    """For each {config, sets, out}: `gan-bench run config --set ... --out out` through the CLI's main(),
    then the figures of the run's summary.json. Runs not started by spec["deadline"] are not run."""
    from gan_bench.cli import main

    progress = Path(spec["progress"])
    for r in spec["runs"]:
        name = r["config"]
        if time.time() > spec["deadline"]:
            append(progress, {"config": name, "event": "done", "status": "not run", "reason": "out of time"})
            continue
        append(progress, {"config": name, "event": "start"})
        out, t0 = Path(r["out"]), time.time()
        before = {f.path for f in RunFolder.find(out)}
        args = ["run", r["path"], "--out", str(out)] + [a for s in r["sets"] for a in ("--set", s)]
        try:
            rc: Any = main(args)
        except Exception as e:  # noqa: BLE001  a bug in one config must not stop the others
            rc = f"{type(e).__name__}: {e}"
            print(f"[gpu_check] {name}: {rc}", file=sys.stderr, flush=True)
        made = [f for f in RunFolder.find(out) if f.path not in before]
        summary = made[-1].read_summary() if made else {}
        status = summary.get("status", "failed") if rc == 0 else "failed"
        append(progress, {"config": name, "event": "done", "rc": rc, "wall_s": round(time.time() - t0, 2),
                          "run": str(made[-1].path) if made else None, **{k: summary.get(k) for k in SUMMARY_KEYS},
                          "status": status})


# ---- sync_bn: torch's SyncBatchNorm in a one-process group ---------------------------------------

class OneRankGroup(World):
    """A process group of one that data_parallel treats as distributed: World(0, 1) is one process
    without a group, whose GAN data_parallel returns unchanged, so sync_bn would never be taken."""

    @property
    def distributed(self) -> bool:
        return True


def sync_bn(spec: dict[str, Any]) -> None:
    """Start a one-process group (NCCL on CUDA, gloo on a CPU), wrap a GAN as the trainer does with
    train.sync_bn, and take `steps` float32 steps beside an unwrapped copy: with one process the
    synchronised statistics and averaged gradients are one process's, so the weights must agree."""
    import torch.distributed as dist

    device = torch.device(spec["device"])
    fd, init = tempfile.mkstemp(prefix="gpu_check_group-")
    os.close(fd)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", init_method=f"file://{init}",
                            rank=0, world_size=1)
    try:
        classes = [f"c{i}" for i in range(10)]
        spec_ = DataSpec("synthetic", 28, 1, len(classes), classes)
        torch.manual_seed(0)
        gan = build_model(ModelConfig(name="cdcgan", width=spec["width"], nz=spec["nz"]), spec_).to(device)
        plain = copy.deepcopy(gan)
        wrapped = data_parallel(gan, OneRankGroup(0, 1), sync_bn=True)
        norms = sorted({type(m).__name__ for m in wrapped.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)})
        x, y = synthetic_batch(spec_, batch_size=spec["batch"], per_class=False, conditional=True, device=device)
        opts = [(adam(g.D.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=SpeedSwitches()),
                 adam(g.G.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=SpeedSwitches())) for g in (wrapped, plain)]
        recipe = Recipe.of(TrainConfig())  # float32: the two copies must compute the same numbers
        torch.backends.cudnn.deterministic = True
        for step in range(spec["steps"]):
            for g, (opt_d, opt_g) in zip((wrapped, plain), opts):
                torch.manual_seed(step)
                gan_step(recipe, g, opt_d, opt_g, x, y)
        diff = max((a - b).abs().max().item() for a, b in zip(gan.state_dict().values(), plain.state_dict().values())
                   if a.is_floating_point())
        result = {"backend": dist.get_backend(), "world_size": dist.get_world_size(), "norm_layers": norms,
                  "steps": spec["steps"], "max_abs_weight_diff": diff, "width": spec["width"], "batch": spec["batch"]}
    finally:
        dist.destroy_process_group()
        os.unlink(init)
    Path(spec["out"]).write_text(json.dumps(result, indent=2) + "\n")


# ---- profile: one step under torch.profiler, and the trainer under cProfile ----------------------

def _device_us(e: Any) -> float:
    """An op's own time on the device (torch renamed the field from cuda to device)."""
    return float(getattr(e, "self_device_time_total", None) or getattr(e, "self_cuda_time_total", 0) or 0)


def profile_step(case: dict[str, Any], device: torch.device, out_dir: Path) -> dict[str, Any]:
    """The trainer's step with the trainer's speed switches on synthetic inputs: the mean wall time of
    `steps` steps, then one step profiled; its table (top ops by time on the device, or on the CPU
    without one) goes to profile-<name>.txt."""
    from torch.profiler import ProfilerActivity, profile

    classes = [f"c{i}" for i in range(case["classes"])]
    spec = DataSpec("synthetic", case["resolution"], case["channels"], len(classes), classes)
    step, images = bare_step(ModelConfig(name=case["model"], width=case["width"]), spec, batch_size=case["batch"],
                             device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):  # allocation, cudnn's algorithm search
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(case["steps"]):
        step()
    sync()
    wall_ms = (time.perf_counter() - t0) / case["steps"] * 1e3
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step()
        sync()
    events = prof.key_averages()
    on_device = device.type == "cuda"
    sort = ("self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total") \
        if on_device else "self_cpu_time_total"
    name = case["name"].replace(" ", "_")
    (out_dir / f"profile-{name}.txt").write_text(f"{case}\nmean step {wall_ms:.3f} ms over {case['steps']} steps "
                                                 f"(unprofiled)\n\n" + events.table(sort_by=sort, row_limit=25) + "\n")
    device_ms = sum(_device_us(e) for e in events) / 1e3
    kernels = sum(1 for e in prof.events() if on_device and _device_us(e) > 0 and e.device_type.name == "CUDA")
    top = sorted(events, key=(_device_us if on_device else (lambda e: e.self_cpu_time_total)), reverse=True)[:10]
    return {"case": case, "step_ms": wall_ms, "device_busy_ms": device_ms if on_device else None,
            "device_busy_share": device_ms / wall_ms if on_device and wall_ms > 0 else None,
            "kernels": kernels if on_device else None, "images_per_step": images,
            "top_ops": [{"op": e.key, "calls": e.count, "self_device_ms": _device_us(e) / 1e3,
                         "self_cpu_ms": e.self_cpu_time_total / 1e3} for e in top],
            "table": f"profile-{name}.txt"}


def profile_trainer(deltas: list[dict[str, Any]], out_dir: Path) -> dict[str, Any]:
    """A short trainer run under cProfile: where the host's time goes beside the steps (the trainer
    against the bare step); the top functions by cumulative time go to profile-trainer.txt."""
    from gan_bench.train.loop import train

    cfg = build_config(deltas, name="profile_trainer")
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    run = train(cfg)
    prof.disable()
    wall = time.perf_counter() - t0
    path = out_dir / "profile-trainer.txt"
    with open(path, "w") as f:
        f.write(f"train() of {cfg.train.max_steps} steps: {wall:.2f} s wall\n\n")
        pstats.Stats(prof, stream=f).sort_stats("cumulative").print_stats(30)
    summary = RunFolder(run).read_summary()
    return {"steps": summary.get("steps"), "wall_s": wall, "train_seconds": summary.get("train_seconds"),
            "img_per_sec": summary.get("img_per_sec"), "table": path.name}


def profile_cases(spec: dict[str, Any]) -> None:
    device, out_dir = torch.device(spec["device"]), Path(spec["out_dir"])
    result: dict[str, Any] = {"steps": [], "trainer": None}
    for case in spec["cases"]:
        result["steps"].append(profile_step(case, device, out_dir))
        Path(spec["out"]).write_text(json.dumps(result, indent=2) + "\n")  # what is done survives a time-out
    if spec.get("trainer"):
        result["trainer"] = profile_trainer(spec["trainer"], out_dir)
    Path(spec["out"]).write_text(json.dumps(result, indent=2) + "\n")


TASKS = {"configs": run_configs, "sync_bn": sync_bn, "profile": profile_cases}

if __name__ == "__main__":
    task, spec_path = sys.argv[1], Path(sys.argv[2])
    TASKS[task](json.loads(spec_path.read_text()))
