"""Images per second: the reference loop vs gan-bench's trainer vs the bare step, plus sweeps.

    python benchmarks/bench.py              # the full benchmark (CPU: about 15 minutes)
    python benchmarks/bench.py --quick      # a smoke run of every part (about a minute)

In one process, alternating (the order rotates every repetition), on the same model and data:
  reference  benchmarks/reference_loop.py: Dataset + PIL transforms + DataLoader, the example's step;
             timed from the first DataLoader iterator (worker start-up included) to the last step.
  trainer    gan_bench.train.loop.train(cfg) with default log/snapshot/checkpoint frequency and the
             progress bar off; images/s = summary.json's images_seen / train_seconds, which runs from
             the first step through the last snapshot, checkpoint, GIFs and loss plot (data loading
             and model building before the loop are not counted; call_img_per_sec counts them too).
  plain      the same trainer with train.fast=false: eager float32, no speed switch, so that
             plain / reference compares the loops alone, with the reference's arithmetic.
  bare       gan_bench.train.step.gan_step, the trainer's step with the trainer's speed switches for this
             device, on synthetic on-device inputs (randn images, fixed labels), nothing else; one
             warm-up step is not counted.
Each starts from a freshly built model with the same seed. The medians give ratio = trainer /
reference and overhead = 1 - trainer / bare. Then, with the device's speed switches: the bare step at batch
128, 512 and 2048, classDCGAN at K = 1, 2, 5, 10 pairs, the speed table (none, all, all but
one, all plus one not on by default) and the compile table (all, all + torch.compile; on CUDA also
compile's CUDA graphs, mode reduce-overhead, and the whole D+G step captured as one CUDA graph). The JSON
goes to benchmarks/results/<device>-<date>.json, rewritten after each part.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from gan_bench.config import ModelConfig, TrainConfig, build_config
from gan_bench.data import load_data
from gan_bench.data.base import DataSpec
from gan_bench.models import build_model
from gan_bench.train.speed import SpeedSwitches, adam, apply_speed
from gan_bench.train.recipe import Recipe
from gan_bench.train.step import gan_step
from gan_bench.run.world import pick_device
from gan_bench.train.loop import train
from gan_bench.train.memory import peaks
from reference_loop import ReferenceTrainer, make_loader  # beside this file (on sys.path as the script's folder)

HERE = Path(__file__).resolve().parent
SHARED_QUICKDRAW = HERE.parent.parent / "shared" / "data" / "quickdraw10_train.npz"
Log = Callable[[str], None]


# ---- the machine ---------------------------------------------------------------------------------

def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on."""
    out = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU {cpu_model()}",
           "device_type": device.type, "cpu": cpu_model(), "cores": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
           "python": platform.python_version(), "date": dt.datetime.now().isoformat(timespec="seconds")}
    if device.type == "cuda":
        out["cuda"] = torch.version.cuda
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def wait_for_quiet(*, max_load: float, timeout_s: float, log: Log) -> float:
    """Wait (up to timeout_s) until the 1-minute load average is below max_load; returns the last one."""
    deadline = time.time() + timeout_s
    load = os.getloadavg()[0]
    while load >= max_load and time.time() < deadline:
        log(f"load average {load:.2f} >= {max_load}: waiting for a quieter machine")
        time.sleep(30)
        load = os.getloadavg()[0]
    return load


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---- the three loops -----------------------------------------------------------------------------

def run_deltas(*, data_path: Optional[Path], model: str, width: int, batch_size: int, device: str,
               seed: int = 0, resolution: Optional[int] = None) -> dict[str, Any]:
    """Config deltas shared by all three loops (the npz file, or the built-in shapes data; resized to
    resolution at load time when given)."""
    data: dict[str, Any] = {"name": "npz", "path": str(data_path)} if data_path else {"name": "shapes"}
    if resolution:
        data["resolution"] = resolution
    return {"data": data, "model": {"name": model, "width": width},
            "train": {"batch_size": batch_size, "device": device, "seed": seed, "progress": False}}


def time_trainer(deltas: dict[str, Any], *, steps: Optional[int], out: Path, fast: bool = True) -> dict[str, float]:
    """One run of the real trainer (steps=None: one epoch); its own summary.json gives images/s."""
    train_delta: dict[str, Any] = {"epochs": 1} if steps is None else {"max_steps": steps}
    train_delta["fast"] = fast
    cfg = build_config([deltas, {"out": str(out), "train": train_delta}], name="bench")
    t0 = time.perf_counter()
    run = train(cfg)
    call = time.perf_counter() - t0
    summary = json.loads((run / "summary.json").read_text())
    shutil.rmtree(run)  # a checkpoint per run adds up
    return {"img_per_sec": summary["img_per_sec"], "seconds": summary["train_seconds"],
            "steps": summary["steps"], "call_img_per_sec": summary["images_seen"] / call}


def time_reference(deltas: dict[str, Any], train_data, *, steps: Optional[int], num_workers: int) -> dict[str, float]:
    """One run of the reference loop on the trainer's training split (steps=None: one epoch)."""
    cfg = build_config([deltas])
    device = pick_device(cfg.train.device)
    torch.manual_seed(cfg.train.seed)
    gan = build_model(cfg.model, load_spec(deltas)).to(device)
    loader = make_loader(train_data, batch_size=cfg.train.batch_size, num_workers=num_workers, seed=cfg.train.seed)
    n = len(loader) if steps is None else steps
    ref = ReferenceTrainer(gan, device=device, lr=cfg.train.lr_d, betas=tuple(cfg.train.betas))
    seconds = ref.run(loader, steps=n)
    return {"img_per_sec": n * cfg.train.batch_size / seconds, "seconds": seconds, "steps": n}


def synthetic_batch(spec: DataSpec, *, batch_size: int, per_class: bool, conditional: bool,
                    device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """randn images in [-1, 1] and labels laid out as the trainer's batches are (class-fastest for pairs)."""
    k = spec.num_classes
    n = batch_size * k if per_class else batch_size
    x = torch.randn(n, spec.channels, spec.resolution, spec.resolution, device=device).clamp_(-1, 1)
    if per_class:
        return x, torch.arange(k, device=device).repeat(batch_size)
    return x, torch.randint(0, k, (n,), device=device) if conditional else None


def bare_step(model: ModelConfig, spec: DataSpec, *, batch_size: int, device: torch.device,
              speed: Optional[SpeedSwitches] = None, seed: int = 0, graph: bool = False,
              warmup: int = 3) -> tuple[Callable[[], Any], int]:
    """(one call = one trainer step on synthetic on-device inputs, images per step). speed: the
    trainer's for this device unless given. graph (CUDA): the whole D+G step captured once as one CUDA
    graph (after `warmup` steps) and replayed, Adam made capturable: every kernel's launch cost gone."""
    speed = SpeedSwitches.for_device(device) if speed is None else speed
    torch.manual_seed(seed)
    gan = apply_speed(build_model(model, spec).to(device), speed)
    if graph:  # capturable: Adam's step count stays on the GPU, so a replay advances it
        opt_g, opt_d = (torch.optim.Adam(m.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True, capturable=True)
                        for m in (gan.G, gan.D))
    else:
        opt_g = adam(gan.G.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=speed)
        opt_d = adam(gan.D.parameters(), lr=2e-4, betas=(0.5, 0.999), speed=speed)
    x, y = synthetic_batch(spec, batch_size=batch_size, per_class=gan.per_class, conditional=gan.conditional,
                           device=device)
    x = speed.input(x)
    recipe = Recipe.of(TrainConfig()).on(amp_dtype=speed.amp_dtype, pairs=spec.num_classes if gan.per_class else 1)
    gan.train()

    def step() -> Any:
        return gan_step(recipe, gan, opt_d, opt_g, x, y)

    return (capture(step, warmup=warmup) if graph else step), len(x)


def time_bare(model: ModelConfig, spec: DataSpec, *, batch_size: int, steps: int, device: torch.device,
              speed: Optional[SpeedSwitches] = None, seed: int = 0, warmup: int = 1,
              graph: bool = False) -> dict[str, float]:
    """The trainer's step alone (bare_step) on synthetic on-device inputs: seconds per step and images/s;
    `warmup` steps not counted."""
    step, n = bare_step(model, spec, batch_size=batch_size, device=device, speed=speed, seed=seed, graph=graph,
                        warmup=max(3, warmup))
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = time.perf_counter() - t0
    return {"img_per_sec": steps * n / seconds, "sec_per_step": seconds / steps, "steps": steps,
            "images_per_step": n}


def capture(step: Callable[[], Any], *, warmup: int) -> Callable[[], None]:
    """step captured as one CUDA graph (warmed up on a side stream first, as torch's docs do: cudnn's
    algorithm search and the optimiser state happen outside the capture); returns its replay."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(warmup):
            step()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    return g.replay


_SPECS: dict[str, DataSpec] = {}


def load_spec(deltas: dict[str, Any]) -> DataSpec:
    key = json.dumps(deltas["data"], sort_keys=True)
    if key not in _SPECS:
        _SPECS[key] = load_data(build_config([deltas]).data).spec
    return _SPECS[key]


# ---- the comparison and the sweeps ---------------------------------------------------------------

def compare(deltas: dict[str, Any], *, steps: Optional[int], reps: int, num_workers: int, log: Log) -> dict[str, Any]:
    """reps rounds of reference / trainer / plain / bare (the order rotates), after a short warm-up of each."""
    cfg = build_config([deltas])
    device = pick_device(cfg.train.device)
    data = load_data(cfg.data)
    _SPECS[json.dumps(deltas["data"], sort_keys=True)] = data.spec
    bare_steps = steps or max(1, len(data.train) // cfg.train.batch_size)
    with tempfile.TemporaryDirectory(prefix="gan-bench-bench-") as tmp:
        runs: dict[str, Callable[[Optional[int]], dict[str, float]]] = {
            "reference": lambda n: time_reference(deltas, data.train, steps=n, num_workers=num_workers),
            "trainer": lambda n: time_trainer(deltas, steps=n, out=Path(tmp)),
            "plain": lambda n: time_trainer(deltas, steps=n, out=Path(tmp), fast=False),
            "bare": lambda n: time_bare(cfg.model, data.spec, batch_size=cfg.train.batch_size,
                                        steps=n or bare_steps, device=device, seed=cfg.train.seed),
        }
        warm = min(3, steps or 3)
        for name, fn in runs.items():  # imports, allocator, worker fork, matplotlib: not measured
            fn(warm)
        results: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
        names = list(runs)
        for r in range(reps):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                res = runs[name](steps)
                results[name].append(res)
                log(f"rep {r + 1}/{reps} {name:9s} {res['img_per_sec']:8.1f} img/s ({res['steps']} steps)")
    med = {name: statistics.median(x["img_per_sec"] for x in rs) for name, rs in results.items()}
    return {"runs": results, "median_img_per_sec": med,
            "median_trainer_call_img_per_sec": statistics.median(x["call_img_per_sec"] for x in results["trainer"]),
            "ratio_trainer_to_reference": med["trainer"] / med["reference"],
            "ratio_plain_to_reference": med["plain"] / med["reference"],
            "overhead_vs_bare": 1.0 - med["trainer"] / med["bare"]}


def batch_sweep(model: ModelConfig, spec: DataSpec, *, batches: Sequence[int], device: torch.device,
                images_per_point: int, log: Log) -> list[dict[str, Any]]:
    """The bare step at each batch size, over about images_per_point images (at least 2 steps)."""
    out = []
    for b in batches:
        res = time_bare(model, spec, batch_size=b, steps=max(2, images_per_point // b), device=device)
        out.append({"batch_size": b, **res})
        log(f"batch {b:5d}: {res['img_per_sec']:8.1f} img/s, {res['sec_per_step'] * 1e3:8.1f} ms/step")
    return out


def class_sweep(*, width: int, resolution: int, channels: int, ks: Sequence[int], batch_size: int,
                steps: int, device: torch.device, log: Log) -> list[dict[str, Any]]:
    """classDCGAN's batched step with K pairs (batch_size images of each class) against one pair."""
    out = []
    for k in ks:
        spec = DataSpec("synthetic", resolution, channels, k, [f"c{i}" for i in range(k)])
        res = time_bare(ModelConfig(name="classdcgan", width=width), spec, batch_size=batch_size,
                        steps=steps, device=device)
        out.append({"K": k, **res})
    base = out[0]  # the smallest K, normally 1
    for row in out:
        # vs_one_pair: step time of K pairs over one pair's; vs_sequential: over K one-pair steps
        row["vs_one_pair"] = row["sec_per_step"] / base["sec_per_step"] * base["K"]
        row["vs_sequential"] = row["vs_one_pair"] / row["K"]
        log(f"K {row['K']:3d}: {row['sec_per_step'] * 1e3:8.1f} ms/step = {row['vs_one_pair']:5.2f} x one pair "
            f"({row['vs_sequential']:4.2f} x K one-pair steps)")
    return out


# the speed switches each device's table varies (cudnn_benchmark means nothing on a CPU; async_log is not in the
# table: the bare step logs nothing, it shows in the trainer's figure; compile has a table of its own, as
# compiling takes minutes where the other rows take seconds)
SPEED = {"cuda": ("channels_last", "bf16", "fused_adam", "cudnn_benchmark"),
         "cpu": ("channels_last", "bf16", "fused_adam")}


def speed_table(model: ModelConfig, spec: DataSpec, *, batch_size: int, steps: int, reps: int,
                 device: torch.device, log: Log) -> list[dict[str, Any]]:
    """The bare step with no switch, the device's switches ("all": the trainer's), all but each switch
    that is on, and all plus each one that is off by default (why it is off); reps alternating rounds."""
    full = SpeedSwitches.for_device(device)
    rows = [("none", SpeedSwitches()), ("all", full)]
    for n in SPEED.get(device.type, ()):
        rows.append((f"all but {n}", full.without(n)) if getattr(full, n)
                    else (f"all + {n}", dataclasses.replace(full, **{n: True})))
    times: dict[str, list[dict[str, float]]] = {name: [] for name, _ in rows}
    for _ in range(reps):
        for name, lv in rows:
            torch.backends.cudnn.benchmark = False  # apply_speed turns it on for the rows that have it
            times[name].append(time_bare(model, spec, batch_size=batch_size, steps=steps, device=device,
                                         speed=lv, warmup=3))
    out = []
    for name, lv in rows:
        ips = statistics.median(t["img_per_sec"] for t in times[name])
        out.append({"speed": name, "img_per_sec": ips, "reps": [t["img_per_sec"] for t in times[name]],
                    "set": lv.record()})
        log(f"{name:22s} {ips:10.1f} img/s")
    none = out[0]["img_per_sec"]
    for row in out:
        row["vs_none"] = row["img_per_sec"] / none
    return out


def compile_table(model: ModelConfig, spec: DataSpec, *, batch_size: int, steps: int, reps: int,
                  device: torch.device, log: Log,
                  save: Callable[[list[dict[str, Any]]], None] = lambda rows: None) -> list[dict[str, Any]]:
    """The trainer's switches ("all") against, on CUDA, the whole D+G step as one CUDA graph, and
    all + torch.compile of G and D (train.compile, the device's mode) and, on CUDA, compile's own CUDA
    graphs (mode reduce-overhead). Row after row, reps runs each (a compiled row recompiles its fresh
    model, which the caches make quick after the first), the cheap rows first and save(rows) after each,
    as compiling can take minutes; a row that fails (a graph that cannot be captured) keeps its error."""
    full = SpeedSwitches.for_device(device)
    rows: list[tuple[str, SpeedSwitches, bool]] = [("all", full, False)]
    if device.type == "cuda":
        rows.append(("all + whole step as one CUDA graph", full, True))
    rows.append(("all + compile", SpeedSwitches.for_device(device, compile=True), False))
    if device.type == "cuda":
        rows.append(("all + compile, CUDA graphs (reduce-overhead)",
                     dataclasses.replace(full, compile=True, compile_mode="reduce-overhead"), False))
    out: list[dict[str, Any]] = []
    for name, sw, graph in rows:
        times, error = [], None
        for _ in range(reps):
            torch.backends.cudnn.benchmark = False
            try:
                times.append(time_bare(model, spec, batch_size=batch_size, steps=steps, device=device, speed=sw,
                                       warmup=3, graph=graph)["img_per_sec"])
            except Exception as e:  # noqa: BLE001  the row says why it has no figure
                error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
                break
        ips = statistics.median(times) if times and error is None else None
        base = out[0]["img_per_sec"] if out else ips
        out.append({"speed": name, "img_per_sec": ips, "reps": times, "set": sw.record(), "graph": graph,
                    "vs_all": ips / base if ips and base else None, **({"error": error} if error else {})})
        log(f"{name:46s} " + (f"{ips:10.1f} img/s" if ips else f"failed: {error}"))
        save(out)
    return out


# ---- main ----------------------------------------------------------------------------------------

def measure(args: argparse.Namespace, *, log: Log = print,
            save: Callable[[dict[str, Any]], None] = lambda report: None) -> dict[str, Any]:
    """Every part asked for; save(report) after each one, so a run stopped midway keeps what it measured."""
    torch.set_num_threads(args.threads)
    data_path = None if args.shapes else Path(args.data)
    if data_path is not None and not data_path.exists():
        log(f"{data_path} not found: using the built-in shapes data")
        data_path = None
    deltas = run_deltas(data_path=data_path, model=args.model, width=args.width, batch_size=args.batch_size,
                        device=args.device, resolution=args.resolution)
    device = pick_device(args.device)
    load_start = wait_for_quiet(max_load=args.max_load, timeout_s=args.wait, log=log) if args.wait else None
    report: dict[str, Any] = {"machine": machine(device), "load_avg_start": list(os.getloadavg()),
                              "load_1min_when_started": load_start}
    report["trainer_speed"] = SpeedSwitches.for_device(device).record()
    report["settings"] = {"model": args.model, "width": args.width, "batch_size": args.batch_size,
                          "data": str(data_path) if data_path else "shapes", "resolution": args.resolution,
                          "steps": args.steps or "one epoch",
                          "reps": args.reps, "reference_num_workers": args.workers, "parts": list(args.parts)}
    if "compare" in args.parts:
        log(f"== reference vs trainer vs bare: {args.model} width {args.width}, batch {args.batch_size}")
        report["compare"] = compare(deltas, steps=args.steps, reps=args.reps, num_workers=args.workers, log=log)
        save(report)
    spec, model = load_spec(deltas), ModelConfig(name=args.model, width=args.width)
    if "batch" in args.parts:
        log("== bare step by batch size")
        report["batch_sweep"] = batch_sweep(model, spec, batches=args.batches, device=device,
                                            images_per_point=args.sweep_images, log=log)
        save(report)
    if "classes" in args.parts:
        log("== classDCGAN: K pairs in one step")
        report["class_sweep"] = class_sweep(width=args.width, resolution=spec.resolution, channels=spec.channels,
                                            ks=args.ks, batch_size=args.batch_size, steps=args.class_steps,
                                            device=device, log=log)
        save(report)
    if "speed" in args.parts:
        log(f"== speed (bare step): {args.model} {spec.resolution}x{spec.resolution} width {args.width}")
        report["speed"] = speed_table(model, spec, batch_size=args.batch_size, steps=args.speed_steps,
                                        reps=args.speed_reps, device=device, log=log)
        save(report)
    if "compile" in args.parts:
        log(f"== compile (bare step): {args.model} {spec.resolution}x{spec.resolution} width {args.width}")
        report["compile"] = compile_table(model, spec, batch_size=args.batch_size, steps=args.speed_steps,
                                          reps=args.speed_reps, device=device, log=log,
                                          save=lambda rows: save({**report, "compile": rows}))
    report["load_avg_end"] = list(os.getloadavg())
    report.update(peaks(device, cpu_reset=False))  # of the whole benchmark process
    return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    head = [f"machine: {report['machine']['device']}, {report['machine']['cores']} cores, "
            f"torch {report['machine']['torch']}, load {report['load_avg_start'][0]:.2f} -> {report['load_avg_end'][0]:.2f}"]
    if "compare" not in report:
        return head
    c = report["compare"]
    m = c["median_img_per_sec"]
    return head + [
            f"median img/s  reference {m['reference']:.1f}  trainer {m['trainer']:.1f}  "
            f"plain {m['plain']:.1f}  bare {m['bare']:.1f}",
            f"trainer / reference = {c['ratio_trainer_to_reference']:.3f}   "
            f"plain / reference = {c['ratio_plain_to_reference']:.3f}   "
            f"overhead = 1 - trainer / bare = {100 * c['overhead_vs_bare']:.1f}%"]


def tables(report: dict[str, Any]) -> str:
    """Markdown tables of one results JSON (the README's Results section is made of these); a file
    measured with --parts has only its parts' tables."""
    m, st = report["machine"], report["settings"]
    c = report.get("compare")
    what = (f"{st['steps']} per timed run, {len(c['runs']['trainer'])} alternating repetitions, medians"
            if c else f"parts: {', '.join(st.get('parts', []))}")
    lines = [f"**{m['device']}**, {m['cores']} cores, {m['torch_threads']} torch threads, torch {m['torch']}, "
             f"{m['date'][:10]}; {st['model']} width {st['width']}, batch {st['batch_size']}, {what} "
             f"(every repetition is in the JSON). "
             f"Trainer speed switches on this device: {speed_text(report.get('trainer_speed'))}."]
    if c:
        med = c["median_img_per_sec"]
        lines += ["", "| loop | images/s (median) | vs reference |", "| --- | ---: | ---: |"]
        for name in ("reference", "trainer", "plain", "bare"):
            if name in med:  # results files made before the plain trainer was measured lack it
                lines.append(f"| {LOOP_NAMES[name]} | {med[name]:.1f} | {med[name] / med['reference']:.3f} |")
        lines += ["", f"trainer / reference = **{c['ratio_trainer_to_reference']:.3f}** (target >= 1); overhead = "
                  f"1 - trainer / bare = **{100 * c['overhead_vs_bare']:.1f} %** (target < 10 %)."
                  + (f" With the speed switches off, trainer / reference = {c['ratio_plain_to_reference']:.3f}."
                     if "ratio_plain_to_reference" in c else "")]
    if report.get("batch_sweep"):
        lines += ["", "| batch size | images/s (bare step) | ms per step |", "| ---: | ---: | ---: |"]
        lines += [f"| {r['batch_size']} | {r['img_per_sec']:.1f} | {r['sec_per_step'] * 1e3:.0f} |"
                  for r in report["batch_sweep"]]
    if report.get("class_sweep"):
        lines += ["", "| classDCGAN pairs K | ms per step | x one pair's step | x K one-pair steps |",
                  "| ---: | ---: | ---: | ---: |"]
        lines += [f"| {r['K']} | {r['sec_per_step'] * 1e3:.0f} | {r['vs_one_pair']:.2f} | {r['vs_sequential']:.2f} |"
                  for r in report["class_sweep"]]
    if report.get("speed"):
        lines += ["", "| speed switches (bare step) | images/s (median) | vs none |", "| --- | ---: | ---: |"]
        lines += [f"| {r['speed']} | {r['img_per_sec']:.1f} | {r['vs_none']:.2f} |" for r in report["speed"]]
    if report.get("compile"):
        lines += ["", "| compile (bare step) | images/s (median) | vs all |", "| --- | ---: | ---: |"]
        lines += [f"| {r['speed']} | {r['img_per_sec']:.1f} | {r['vs_all']:.2f} |" if r["img_per_sec"] else
                  f"| {r['speed']} | failed: {r.get('error', '')} | |" for r in report["compile"]]
    return "\n".join(lines) + "\n"


LOOP_NAMES = {"reference": "reference (eager fp32)", "trainer": "trainer", "plain": "trainer, train.fast=false",
              "bare": "bare step"}


def speed_text(speed: Optional[dict[str, Any]]) -> str:
    if speed is None:
        return "none (made before the CPU speed switches)"
    on = [k for k, v in speed.items() if v is True]
    return ", ".join(on) if on else "none"


def write_readme_tables(paths: Sequence[Path], readme: Path = HERE / "README.md") -> None:
    """Replace the block between the README's results markers with the tables of these JSON files."""
    begin, end = "<!-- results: made by bench.py --tables -->", "<!-- /results -->"
    text = readme.read_text()
    if begin not in text or end not in text:
        raise SystemExit(f"{readme}: no {begin} ... {end} block to fill")
    body = "\n".join(tables(json.loads(Path(p).read_text())) for p in paths)
    head, rest = text.split(begin, 1)
    readme.write_text(head + begin + "\n" + body + end + rest.split(end, 1)[1])


PARTS = ("compare", "batch", "classes", "speed", "compile")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(SHARED_QUICKDRAW), help="training .npz (default: shared Quick, Draw!)")
    p.add_argument("--shapes", action="store_true", help="use the built-in shapes data instead")
    p.add_argument("--resolution", type=int, help="resize the images to this size at load time (data.resolution)")
    p.add_argument("--model", default="cdcgan")
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=2, help="torch threads, the same for every loop")
    p.add_argument("--workers", type=int, default=2, help="the reference loop's DataLoader workers")
    p.add_argument("--steps", type=int, default=None, help="steps per timed run (default: one epoch)")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--batches", type=int, nargs="+", default=[128, 512, 2048])
    p.add_argument("--sweep-images", type=int, default=4096, help="images per batch-size point")
    p.add_argument("--ks", type=int, nargs="+", default=[1, 2, 5, 10])
    p.add_argument("--class-steps", type=int, default=3)
    p.add_argument("--speed-steps", type=int, default=30)
    p.add_argument("--speed-reps", type=int, default=3)
    p.add_argument("--max-load", type=float, default=1.0, help="wait for a 1-minute load average below this")
    p.add_argument("--wait", type=float, default=1200, help="seconds to wait for it (0: do not wait)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="what to measure (default: all): the loops, the batch sweep, the K sweep, the speed-switch "
                        "table, the compile table")
    p.add_argument("--out", type=Path, default=HERE / "results")
    p.add_argument("--quick", action="store_true", help="a smoke run: tiny model, 3 steps, 1 repetition")
    p.add_argument("--tables", type=Path, nargs="+", metavar="JSON",
                   help="measure nothing: write these results files' tables into benchmarks/README.md")
    return p


def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parser().parse_args(argv)
    if args.tables:
        write_readme_tables(args.tables)
        print(f"wrote the tables of {len(args.tables)} results file(s) into {HERE / 'README.md'}")
        return HERE / "README.md"
    if args.quick:
        args.width, args.steps, args.reps, args.wait = 8, 3, 1, 0
        args.sweep_images, args.class_steps, args.speed_steps, args.batches = 256, 1, 3, [32, 128]
        args.speed_reps = 1
    args.out.mkdir(parents=True, exist_ok=True)
    m = machine(pick_device(args.device))
    # the default measurement is named by machine and date; others say what they hold
    extra = ([args.model] if args.model != "cdcgan" else []) + ([] if list(args.parts) == list(PARTS) else list(args.parts))
    extra += ["quick"] if args.quick else []
    path = args.out / ("-".join([slug(m["device"]), m["date"][:10], *extra]) + ".json")

    def save(report: dict[str, Any]) -> None:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(path)

    report = measure(args, save=save)
    save(report)
    for line in summary_lines(report):
        print(line)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
