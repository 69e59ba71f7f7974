"""The seven parts of the GPU check (gpu_check.py runs them in order). Each takes the run and its time
limit in seconds and returns {"status", "figures", "targets"} (and "reason", "rc" where they apply);
a target is {"value", "target", "pass"}, pass None where the figure was not measured (not on CUDA)."""
from __future__ import annotations

import fnmatch
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Optional

import yaml

from gpu_check_proc import HERE, ROOT, Check, append_line, call, read_jsonl, status_of, target, work

CONFIG_STEPS = 200           # part 2: steps of each config's run ...
SUBSET_STEPS = 30            # ... and on a staged subset (CelebA's 523 faces end an epoch, and write a checkpoint,
                             # every 3 steps)
QUALITY = 0.8                # part 5: the cond_acc to reach ...
QUALITY_SECONDS = 60.0       # ... within this many training seconds
SUITE_RUN_OVERHEAD_S = 25.0  # part 6: a run's process start, data, evaluation and end, beside training
SUITE_MIN_TRAIN_S = 15.0
PROFILE_RESERVE_S = 30.0     # kept from part 6 for part 7 when a target was missed
OFFLINE_DATA = {"shapes"}    # data sets made on the fly: their configs need no staged file


# ---- part 1: the CUDA tests ------------------------------------------------------------------------

def part_tests(c: Check, budget: float) -> dict[str, Any]:
    """The status says whether pytest ran to its end; the targets whether the tests passed. A test module
    that cannot be imported there (one needing a package the device lacks) is a collection error, listed
    apart: no selected test is in it unless it matched the selection's words."""
    xml = c.path("logs", "tests.xml")
    select = ["tests/test_fast_path.py", "-k", "cuda"] if c.smoke else ["tests/", "-k", "cuda or fast_path"]
    log = c.path("logs", "tests.log")
    rc = call([sys.executable, "-m", "pytest", *select, "-v", "-p", "no:cacheprovider", "--continue-on-collection-errors",
               f"--junitxml={xml}"], log=log, timeout=budget)
    everything = junit(xml) if rc is not None else verbose_lines(log)  # pytest stopped: no XML, its -v lines
    cases = [t for t in everything if t["outcome"] != "collection error"]
    count = {k: sum(1 for t in cases if t["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    no_sync = [t for t in cases if "never_waits_for_the_device" in t["test"]]
    bad = count["failed"] + count["error"]
    return {"status": "ok" if rc in (0, 1) else status_of(rc), "rc": rc,
            "figures": {**count, "collection_errors": [t for t in everything if t["outcome"] == "collection error"],
                        "tests": cases},
            "targets": {
                "selected tests pass": target(f"{count['passed']} passed, {bad} failed", count["passed"] > 0 and bad == 0,
                                              "every selected test passes"),
                "no host synchronisation": target([t["outcome"] for t in no_sync],
                                                  (bool(no_sync) and all(t["outcome"] == "passed" for t in no_sync))
                                                  if c.device == "cuda" else None,
                                                  "test_cuda_step_never_waits_for_the_device passes on CUDA")}}


def verbose_lines(log: Path) -> list[dict[str, str]]:
    """The outcomes pytest -v printed (tests/x.py::test_y PASSED ...), for a run stopped before its XML."""
    found = re.findall(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR)", log.read_text(), re.M) if log.exists() else []
    return [{"test": t, "outcome": {"PASSED": "passed", "FAILED": "failed", "SKIPPED": "skipped"}.get(o, "error"),
             "message": ""} for t, o in found]


def junit(xml: Path) -> list[dict[str, str]]:
    """Each test case of a JUnit XML file: its id, outcome (passed, failed, error, skipped, or collection
    error: a module that could not be imported) and the first line of its message."""
    if not xml.exists():
        return []
    out = []
    for case in ET.parse(xml).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            node = case.find(kind)
            if node is not None:
                outcome = {"failure": "failed"}.get(kind, kind)
                message = (node.get("message") or "").split("\n")[0][:200]
                if node.get("message") == "collection failure":  # the cause is the text's last E line
                    outcome = "collection error"
                    lines = [x for x in (node.text or "").splitlines() if x.startswith("E ")]
                    message = lines[-1][1:].strip()[:200] if lines else message
                break
        out.append({"test": f"{case.get('classname')}::{case.get('name')}".lstrip(":"), "outcome": outcome,
                    "message": message})
    return out


# ---- part 2: every shipped config ------------------------------------------------------------------

def data_set_of(config: Path) -> str:
    from gan_bench.config import load_config
    return load_config(config).data.name


def npz_sets(d: dict[str, Optional[str]]) -> list[str]:
    """--set overrides that point a config at a staged .npz instead of its download (README "Real data")."""
    return ["data.name=npz", f"data.path={d['path']}", f"data.test_path={d['test_path'] or 'null'}",
            "data.categories=null"]


def common_sets(c: Check) -> list[str]:
    sizes = (["train.device=cpu", "train.batch_size=8", "model.width=4", "model.nz=8", "train.log_every=1"]
             if c.smoke else ["train.device=cuda"])
    return sizes + ["train.progress=false", f"data.root={c.out / 'datasets'}"]


def runnable(c: Check, config: Path) -> tuple[Optional[list[str]], str, bool]:
    """(the data overrides for a config, a note, whether its data is a subset of the shared file), or
    (None, why it cannot run here, False)."""
    name = data_set_of(config)
    if name in c.datasets:
        d = c.datasets[name]
        return npz_sets(d), f"{Path(d['path']).name}" + (f" ({d['note']})" if d["note"] else ""), not d["whole"]
    if name in OFFLINE_DATA:
        return [], name, False
    return None, f"data set {name!r} has no staged .npz (it would download; see --stage-data)", False


def part_configs(c: Check, budget: float) -> dict[str, Any]:
    configs = sorted((ROOT / "configs").glob("*.yaml"))
    if c.configs:
        configs = [p for p in configs if any(fnmatch.fnmatch(p.stem, g) for g in c.configs)]
    steps = 2 if c.smoke else CONFIG_STEPS
    runs, skipped, notes = [], [], {}
    for p in configs:
        sets, note, subset = runnable(c, p)
        if sets is None:
            skipped.append({"config": p.stem, "reason": note})
            continue
        notes[p.stem] = note
        n = SUBSET_STEPS if subset and not c.smoke else steps
        runs.append({"config": p.stem, "path": str(p.relative_to(ROOT)), "out": str(c.out / "runs"),
                     "sets": common_sets(c) + [f"train.max_steps={n}", "train.snapshot_every=1000"] + sets})
    records = run_in_turn(c, runs, budget)
    for r in records:
        r["data"] = notes.get(r["config"])
    done = [r for r in records if r.get("status") == "completed" and r.get("steps")]
    peaks = [r["peak_gpu_mb"] for r in done if r.get("peak_gpu_mb") is not None]
    return {"status": "timeout" if any(r.get("status") == "not run" for r in records) else "ok",
            "figures": {"runs": records, "skipped": skipped, "steps": steps, "sets": common_sets(c),
                        "peak_gpu_mb_range": [min(peaks), max(peaks)] if peaks else None},
            "targets": {"every staged config trains": target(f"{len(done)}/{len(runs)}", bool(runs) and len(done) == len(runs),
                                                             f"every config with staged data completes its steps "
                                                             f"({steps}; {SUBSET_STEPS} on a subset) on {c.device}"),
                        "peak GPU memory recorded": target(len(peaks), (len(peaks) == len(done) and bool(done))
                                                           if c.device == "cuda" else None,
                                                           "summary.json has peak_gpu_mb for each run")}}


def run_in_turn(c: Check, runs: list[dict[str, Any]], budget: float) -> list[dict[str, Any]]:
    """The runs one after another in a worker process; a run that kills its process is recorded as
    crashed and a new worker goes on with the rest, until the budget is spent."""
    progress, log = c.path("parts", "configs.jsonl"), c.path("logs", "configs.log")
    progress.unlink(missing_ok=True)
    deadline = time.monotonic() + budget
    remaining = list(runs)
    while remaining:
        wall_deadline = time.time() + (deadline - time.monotonic()) - 5  # the worker's clock
        rc = work("configs", {"runs": remaining, "deadline": wall_deadline, "progress": str(progress)}, c,
                  log=log, timeout=deadline - time.monotonic())
        lines = read_jsonl(progress)
        done = {r["config"] for r in lines if r["event"] == "done"}
        lost = [r["config"] for r in lines if r["event"] == "start" and r["config"] not in done]
        for name in lost:  # started, never finished: the worker died or was stopped in it
            why = "stopped at the part's time limit" if rc is None else f"the worker exited with status {rc} in it"
            append_line(progress, {"config": name, "event": "done", "status": "crashed" if rc else "not run",
                                        "reason": why})
        remaining = [r for r in remaining if r["config"] not in done and r["config"] not in lost]
        if rc is None:
            for r in remaining:
                append_line(progress, {"config": r["config"], "event": "done", "status": "not run",
                                            "reason": "out of time"})
            break
    final = {r["config"]: r for r in read_jsonl(progress) if r["event"] == "done"}
    return [{k: v for k, v in final[r["config"]].items() if k != "event"} for r in runs if r["config"] in final]


# ---- part 3: bench.py ------------------------------------------------------------------------------

def bench_cases(c: Check) -> list[dict[str, Any]]:
    """cdcgan 28x28 on Quick, Draw!; convdcgan 64x64 on CelebA when staged whole, else CIFAR-10 resized
    to 64 (the same tensor sizes: a 600-face subset would end an epoch every 4 steps)."""
    ds = c.datasets
    whole = {n: d for n, d in ds.items() if d["whole"]}
    cd = ["--data", ds["quickdraw"]["path"]] if "quickdraw" in ds else ["--shapes"]
    if "celeba" in whole:
        cv, cv_data = ["--data", whole["celeba"]["path"]], "celeba64"
    elif "cifar10" in ds:
        cv, cv_data = ["--data", ds["cifar10"]["path"], "--resolution", "64"], "cifar10 resized to 64"
    else:
        cv, cv_data = ["--shapes", "--resolution", "64"], "shapes at 64"
    return [{"model": "cdcgan", "resolution": 28, "args": ["--model", "cdcgan", *cd],
             "data": "quickdraw10" if "quickdraw" in ds else "shapes"},
            {"model": "convdcgan", "resolution": 64, "args": ["--model", "convdcgan", *cv], "data": cv_data}]


def bench_args(c: Check) -> list[str]:
    if c.smoke:
        return ["--device", "cpu", "--wait", "0", "--width", "4", "--batch-size", "8", "--steps", "2", "--reps", "1",
                "--workers", "0", "--batches", "8", "16", "--sweep-images", "16", "--ks", "1", "2",
                "--class-steps", "1", "--speed-steps", "1", "--speed-reps", "1", "--threads", "1"]
    return ["--device", "cuda", "--wait", "0", "--width", "64", "--batch-size", "128", "--reps", "3",
            "--batches", "128", "512", "2048", "--ks", "1", "2", "5", "10", "--speed-steps", "30", "--speed-reps", "2"]


def part_bench(c: Check, budget: float) -> dict[str, Any]:
    """Per model: bench.py's loops, sweeps and switches table, then (a call of its own, as compiling can
    take minutes) the compile rows; bench.py saves its JSON after each part, so a time-out keeps the rest."""
    deadline = time.monotonic() + budget
    cases, rcs = bench_cases(c), []
    # (case, parts, weight): the loops and sweeps first, each model's about a third of the time; time a call
    # leaves unused goes to the next ones
    calls = [(case, parts, w) for parts, w in ((["compare", "batch", "classes", "speed"], 0.32), (["compile"], 0.18))
             for case in cases]
    for i, (case, parts, w) in enumerate(calls):
        share = (deadline - time.monotonic()) * w / sum(x[2] for x in calls[i:])
        out = c.folder("bench", f"{case['model']}-{parts[0]}")
        # smoke: torch.compile off (TORCH_COMPILE_DISABLE), the rows run eagerly; compiling on a CPU takes minutes
        rc = call([sys.executable, str(HERE / "bench.py"), *bench_args(c), *case["args"], "--parts", *parts,
                   "--out", str(out)], log=c.path("logs", f"bench-{case['model']}.log"), timeout=share,
                  extra_env={"TORCH_COMPILE_DISABLE": "1"} if c.smoke else None)
        rcs.append(rc)
    figures, targets = {}, {}
    for case in cases:
        main = latest_json(c.out / "bench" / f"{case['model']}-compare")
        comp = latest_json(c.out / "bench" / f"{case['model']}-compile")
        f = bench_figures(main, comp)
        f["data"] = case["data"]
        figures[f"{case['model']} {case['resolution']}x{case['resolution']}"] = f
        targets.update(bench_targets(case, f))
    status = "timeout" if None in rcs else ("ok" if all(rc == 0 for rc in rcs) else "failed")
    return {"status": status, "rc": rcs, "figures": figures, "targets": targets}


def latest_json(folder: Path) -> Optional[dict[str, Any]]:
    files = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
    return json.loads(files[-1].read_text()) if files else None


def bench_figures(main: Optional[dict[str, Any]], comp: Optional[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if main and "compare" in main:
        cmp = main["compare"]
        out["median_img_per_sec"] = cmp["median_img_per_sec"]
        out["trainer_to_reference"] = cmp["ratio_trainer_to_reference"]
        out["trainer_to_bare"] = 1.0 - cmp["overhead_vs_bare"]
        out["plain_to_reference"] = cmp.get("ratio_plain_to_reference")
    if main:
        out["batch_sweep"] = [{k: r[k] for k in ("batch_size", "img_per_sec", "sec_per_step")}
                              for r in main.get("batch_sweep", [])]
        out["class_sweep"] = [{k: r[k] for k in ("K", "sec_per_step", "vs_one_pair", "vs_sequential")}
                              for r in main.get("class_sweep", [])]
        out["switches"] = [{k: r[k] for k in ("speed", "img_per_sec", "vs_none")} for r in main.get("speed", [])]
        out["peak_gpu_mb"] = main.get("peak_gpu_mb")
    if comp:
        out["compile"] = [{k: r.get(k) for k in ("speed", "img_per_sec", "vs_all", "error")}
                          for r in comp.get("compile", [])]
    return out


def bench_targets(case: dict[str, Any], f: dict[str, Any]) -> dict[str, dict[str, Any]]:
    name = f"{case['model']} {case['resolution']}x{case['resolution']}"
    ratio, share = f.get("trainer_to_reference"), f.get("trainer_to_bare")
    out = {f"{name} trainer >= 10x reference": target(ratio, None if ratio is None else ratio >= 10,
                                                       "batch 128: trainer images/s at least 10x the reference loop's"),
           f"{name} trainer >= 80% of bare step": target(share, None if share is None else share >= 0.8,
                                                         "batch 128: trainer images/s at least 80 % of the bare step's")}
    if case["model"] == "cdcgan":  # the K sweep at the 28x28 classDCGAN configs' size
        k10 = [r["vs_one_pair"] for r in f.get("class_sweep", []) if r["K"] == 10]
        out["classdcgan 28x28 K=10 <= 3x one pair"] = target(k10[0] if k10 else None, k10[0] <= 3 if k10 else None,
                                                            "a step of 10 pairs at most 3x one pair's step")
    return out


# ---- part 4: sync_bn -------------------------------------------------------------------------------

def part_sync_bn(c: Check, budget: float) -> dict[str, Any]:
    out = c.path("parts", "sync_bn-result.json")
    out.unlink(missing_ok=True)
    spec = {"device": c.device, "width": 4 if c.smoke else 64, "nz": 8 if c.smoke else 100,
            "batch": 8 if c.smoke else 128, "steps": 3, "out": str(out)}
    rc = work("sync_bn", spec, c, log=c.path("logs", "sync_bn.log"), timeout=budget)
    r = json.loads(out.read_text()) if out.exists() else {}
    norms, diff = r.get("norm_layers"), r.get("max_abs_weight_diff")
    want = "SyncBatchNorm" if c.device == "cuda" else "GlobalBatchNorm"
    return {"status": status_of(rc), "rc": rc, "figures": r,
            "targets": {"torch's SyncBatchNorm taken": target(norms, (norms == ["SyncBatchNorm"]) if c.device == "cuda"
                                                             else None, "every BatchNorm layer becomes SyncBatchNorm on CUDA "
                                                             f"(here: {want})"),
                        "one-process step equals the plain step": target(diff, None if diff is None else diff <= 1e-4,
                                                                         "weights after 3 float32 steps within 1e-4")}}


# ---- part 5: time to quality -----------------------------------------------------------------------

def part_quality(c: Check, budget: float) -> dict[str, Any]:
    config = ROOT / "configs" / "quickdraw_cdcgan_tuned.yaml"
    sets, note, _ = runnable(c, config)
    if sets is None:
        return {"status": "skipped", "reason": note, "figures": {},
                "targets": {"time to quality": target(None, None, f"cond_acc >= {QUALITY} in < {QUALITY_SECONDS:.0f} s")}}
    # 60 s of training at most (past that it is a miss anyway), not the config's 30 epochs
    size = (["train.max_steps=12", "eval.samples=64"] if c.smoke
            else [f"train.max_minutes={QUALITY_SECONDS / 60:g}", "train.epochs=1000"])
    out = c.out / "quality"
    args = ["run", str(config.relative_to(ROOT)), "--out", str(out)]
    for s in common_sets(c) + sets + size + ["eval.every=1", "eval.metrics=[cond_acc]"]:
        args += ["--set", s]
    rc = call([sys.executable, "-m", "gan_bench", *args], log=c.path("logs", "quality.log"), timeout=budget)
    from gan_bench.run import RunFolder

    runs = RunFolder.find(out) if out.exists() else []
    run = runs[-1] if runs else None
    curve = [{"step": r["step"], "train_seconds": r.get("train_seconds"), "cond_acc": r["cond_acc"]}
             for r in (run.records("eval") if run else []) if r.get("metric") == "cond_acc"]
    reached = next((p for p in curve if p["cond_acc"] >= QUALITY), None)
    summary = run.read_summary() if run else {}
    seconds = reached["train_seconds"] if reached else None
    return {"status": status_of(rc), "rc": rc,
            "figures": {"seconds_to_quality": seconds, "step": reached["step"] if reached else None,
                        "best_cond_acc": max((p["cond_acc"] for p in curve), default=None), "curve": curve,
                        "img_per_sec": summary.get("img_per_sec"), "steps": summary.get("steps"),
                        "train_seconds": summary.get("train_seconds"), "data": note},
            "targets": {"time to quality": target(seconds, None if not curve else (seconds is not None and
                                                                                    seconds < QUALITY_SECONDS),
                                                  f"cond_acc >= {QUALITY} within {QUALITY_SECONDS:.0f} training seconds")}}


# ---- part 6: the paper suite -----------------------------------------------------------------------

def part_suite(c: Check, budget: float) -> dict[str, Any]:
    suite = yaml.safe_load((ROOT / "configs" / "suites" / "paper.yaml").read_text())
    runs, dropped = [], []
    for r in suite["runs"]:
        r = {"config": r} if isinstance(r, str) else dict(r)
        sets, note, _ = runnable(c, ROOT / r["config"])
        if sets is None:
            dropped.append({"config": Path(r["config"]).stem, "reason": note})
            continue
        runs.append({**r, "set": list(r.get("set", [])) + sets})
    fit = int(budget // (SUITE_RUN_OVERHEAD_S + SUITE_MIN_TRAIN_S)) if not c.smoke else len(runs)
    n = min(len(runs), fit, c.suite_runs or len(runs))
    dropped += [{"config": Path(r["config"]).stem, "reason": "no time left for it"} for r in runs[n:]]
    runs = runs[:n]
    if not runs:
        return {"status": "skipped", "figures": {"dropped": dropped},
                "reason": f"{budget:.0f} s left; a run needs {SUITE_RUN_OVERHEAD_S + SUITE_MIN_TRAIN_S:.0f} s "
                          f"(run this part alone: --parts suite --budget 540)",
                "targets": {"suite runs complete": target(None, None, "every run of the suite completes")}}
    minutes = max(0.05, (budget - n * SUITE_RUN_OVERHEAD_S) / n / 60)
    folder = c.out / "suite"
    derived = {**{k: v for k, v in suite.items() if k not in ("runs", "out")}, "name": "paper_gpu",
               "seeds": [0], "runs": runs,
               "set": list(suite.get("set", [])) + common_sets(c) + [f"train.max_minutes={minutes:.3f}"]}
    path = c.path("suite", "paper_gpu.yaml")
    path.write_text("# configs/suites/paper.yaml on the staged data, one seed, the time the GPU check had left\n"
                    + yaml.safe_dump(derived, sort_keys=False))
    rc = call([sys.executable, "-m", "gan_bench", "suite", str(path), "--out", str(folder / "paper")]
              + (["--quick"] if c.smoke else []), log=c.path("logs", "suite.log"), timeout=budget)
    from gan_bench.run import RunFolder

    records = []
    for run in RunFolder.find(folder):
        s = run.read_summary()
        last = {}
        for e in run.records("eval"):
            if e.get("step") == s.get("steps"):
                last[e["metric"]] = {k: v for k, v in e.items() if k in (e["metric"], "kid_mean", "precision", "recall")}
        records.append({"run": str(run.path.relative_to(folder)), **{k: s.get(k) for k in (
            "status", "steps", "train_seconds", "img_per_sec", "peak_gpu_mb")}, "eval": last})
    done = sum(1 for r in records if r["status"] == "completed")
    return {"status": status_of(rc), "rc": rc,
            "figures": {"max_minutes_per_run": minutes, "runs": records, "dropped": dropped, "suite_file": "suite/paper_gpu.yaml"},
            "targets": {"suite runs complete": target(f"{done}/{n}", done == n, "every run of the suite completes")}}


# ---- part 7: profile of what missed ----------------------------------------------------------------

PROFILE_CASES = {
    "cdcgan 28x28": {"model": "cdcgan", "resolution": 28, "channels": 1, "classes": 10},
    "convdcgan 64x64": {"model": "convdcgan", "resolution": 64, "channels": 3, "classes": 1},
    "classdcgan 28x28": {"model": "classdcgan", "resolution": 28, "channels": 1, "classes": 10},
}


def missed(c: Check) -> list[str]:
    """The speed and time-to-quality targets missed so far."""
    return [name for part in ("bench", "quality") for name, t in c.results.get(part, {}).get("targets", {}).items()
            if t["pass"] is False]


def part_profile(c: Check, budget: float) -> dict[str, Any]:
    misses = missed(c)
    if not misses and not c.smoke:
        return {"status": "skipped", "reason": "every speed and time-to-quality target was met", "figures": {},
                "targets": {}}
    names = sorted({n for n in PROFILE_CASES for m in misses if m.startswith(n)} |
                   ({"cdcgan 28x28"} if "time to quality" in misses or c.smoke else set()))
    size = {"width": 4, "batch": 8, "steps": 2} if c.smoke else {"width": 64, "batch": 128, "steps": 20}
    cases = [{"name": n, **PROFILE_CASES[n], **size} for n in names]
    trainer = None
    if any("of bare step" in m for m in misses) or c.smoke:
        qd = c.datasets.get("quickdraw")
        d = {"name": "npz", "path": qd["path"]} if qd else {"name": "shapes"}
        trainer = [{"data": d, "model": {"name": "cdcgan", "width": size["width"]},
                    "train": {"device": c.device, "max_steps": 2 if c.smoke else 175, "batch_size": size["batch"],
                              "progress": False}, "out": str(c.out / "profile_runs")}]
    out = c.path("profile", "profile.json")
    rc = work("profile", {"device": c.device, "cases": cases, "trainer": trainer, "out": str(out),
                          "out_dir": str(out.parent)}, c, log=c.path("logs", "profile.log"), timeout=budget)
    r = json.loads(out.read_text()) if out.exists() else {}
    return {"status": status_of(rc), "rc": rc, "reason": "forced in smoke mode" if c.smoke and not misses else None,
            "figures": {"misses": misses, **r}, "targets": {}}
