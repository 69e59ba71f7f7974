"""Suites: many configs x seeds, run in turn or N at once, resumable, then the tables and the gallery.

A suite file (YAML; config and data paths are relative to the folder you run from, the repo root):
    name: paper
    out: results/paper              # optional, default results/<name> (results/<name>-quick with --quick)
    seeds: [0, 1, 2]
    set: ["train.device=auto"]      # overrides for every run
    runs:
      - config: configs/quickdraw_cdcgan.yaml
        set: ["data.max_per_class=2000"]
        name: quickdraw_cdcgan_small   # optional: the folder name (default: the config's name)
        seeds: [0]                     # optional: this run's own seeds
    eval: {metrics: [fd, kid], samples: 5000}   # optional: evaluate each finished run

Run (config, seed) lives in <out>/<name>/seed<k>/. A folder whose summary.json says completed (or
failed) is skipped, one with a checkpoint is resumed, anything else starts afresh. Every config is
built and checked before the first run starts, so a typo in the last run fails at once.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from gan_bench.config import Config, build_config, load_config, read_yaml
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.run_folder import read_jsonl

# --quick: a smoke budget that still makes a few snapshots (so the GIFs move) on a CPU in seconds.
QUICK_STEPS, QUICK_PER_CLASS, QUICK_BATCH, QUICK_EVAL_SAMPLES = 30, 16, 16, 256
EXIT_STATUS = {0: "completed", 3: "interrupted", 4: "failed"}  # a --jobs child's exit status (others: failed)


@dataclass
class SuiteRun:
    config: Path
    set: list[str] = field(default_factory=list)
    name: Optional[str] = None
    seeds: Optional[list[int]] = None


@dataclass
class Suite:
    name: str
    out: Optional[Path]
    seeds: list[int]
    set: list[str]
    runs: list[SuiteRun]
    eval: Optional[dict[str, Any]] = None   # {"metrics": [...], "samples": N}


@dataclass
class Job:
    cfg: Config
    run_dir: Path
    action: str          # run | resume | skip | eval
    note: str = ""


def load_suite(path: Path) -> Suite:
    """Read and check a suite file; unknown keys and wrong types are one-line ConfigErrors."""
    d = read_yaml(Path(path))
    _keys(d, {"name", "out", "seeds", "set", "runs", "eval"}, str(path))
    runs = d.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ConfigError(f"{path}: 'runs' must be a non-empty list of {{config: FILE}} entries")
    parsed = []
    for i, r in enumerate(runs, 1):
        where = f"{path}: runs[{i}]"
        if isinstance(r, str):
            r = {"config": r}
        if not isinstance(r, dict) or not isinstance(r.get("config"), str):
            raise ConfigError(f"{where}: expected {{config: FILE, set: [...]}}, got {r!r}")
        _keys(r, {"config", "set", "name", "seeds"}, where)
        parsed.append(SuiteRun(Path(r["config"]), _strings(r.get("set", []), f"{where}.set"), r.get("name"),
                               None if r.get("seeds") is None else _ints(r["seeds"], f"{where}.seeds")))
    ev = d.get("eval")
    if ev is not None:
        _keys(ev if isinstance(ev, dict) else {"?": 0}, {"metrics", "samples"}, f"{path}: eval")
        ev = {"metrics": _strings(ev.get("metrics", ["fd"]), f"{path}: eval.metrics"),
              "samples": _ints([ev.get("samples", 5000)], f"{path}: eval.samples")[0]}
    return Suite(name=str(d.get("name") or Path(path).stem), out=Path(d["out"]) if d.get("out") else None,
                 seeds=_ints(d.get("seeds", [0]), f"{path}: seeds"), set=_strings(d.get("set", []), f"{path}: set"),
                 runs=parsed, eval=ev)


def suite_out(suite: Suite, *, quick: bool, out: Optional[Path] = None) -> Path:
    if out is not None:
        return Path(out)
    base = suite.out or Path("results") / suite.name
    return base.with_name(base.name + "-quick") if quick else base


def plan(suite: Suite, *, out: Path, quick: bool) -> list[Job]:
    """Build and check every (config, seed) and decide what each needs; raises before anything runs."""
    try:
        _check_metric_names(suite.eval)
    except GanBenchError as e:
        raise ConfigError(f"suite eval.metrics: {e}") from None
    jobs: list[Job] = []
    for i, r in enumerate(suite.runs, 1):
        for seed in r.seeds if r.seeds is not None else suite.seeds:
            where = f"suite run {i} ({r.config}, seed {seed})"
            try:
                sets = suite.set + r.set + [f"train.seed={seed}"] + ([f"name={r.name}"] if r.name else [])
                cfg = load_config(r.config, sets)
                cfg = _quick(cfg) if quick else cfg
                cfg.out = str(out)
                _preflight(cfg)
            except GanBenchError as e:
                raise type(e)(f"{where}: {e}") from None
            jobs.append(_decide(cfg, out / cfg.name / f"seed{seed}", suite.eval))
    seen: dict[Path, str] = {}
    for j in jobs:
        if j.run_dir in seen:
            raise ConfigError(f"two suite runs write to {j.run_dir}; give one of them a `name:`")
        seen[j.run_dir] = j.cfg.name
    return jobs


def _preflight(cfg: Config) -> None:
    """What can be checked without loading data: names, data files, and the model against the data
    set's registered labels and size (when the registry knows them: not for npz or image folders)."""
    from gan_bench.data import DATASETS, DataSpec
    from gan_bench.models import MODELS
    from gan_bench.models.base import check_compatible

    MODELS.entry(cfg.model.name)
    meta = DATASETS.entry(cfg.data.name).meta
    for p in (cfg.data.path, cfg.data.test_path):
        if p and not Path(p).exists():
            raise ConfigError(f"data file {p!r} not found (paths are relative to {os.getcwd()})")
    sizes = meta.get("resolutions", ())
    res = cfg.data.resolution or (sizes[0] if len(sizes) == 1 else None)
    if res is not None and meta.get("labelled") is not None:
        check_compatible(cfg.model.name, DataSpec(cfg.data.name, res, meta.get("channels") or 1,
                                                  1 if meta["labelled"] else 0, []))


def _quick(cfg: Config) -> Config:
    t = cfg.train
    return build_config([cfg.to_dict(), {
        "train": {"max_steps": min(t.max_steps or QUICK_STEPS, QUICK_STEPS), "batch_size": min(t.batch_size, QUICK_BATCH),
                  "log_every": 3, "checkpoint_every": 10, "snapshot_every": 1},
        "data": {"max_per_class": min(cfg.data.max_per_class or QUICK_PER_CLASS, QUICK_PER_CLASS)}}])


def _decide(cfg: Config, run: Path, ev: Optional[dict]) -> Job:
    summary = _summary(run) if (run / "summary.json").exists() else None
    if summary is not None and summary.get("config_hash") != cfg.hash():
        raise ConfigError(f"{run} holds a run of a different config (hash {summary.get('config_hash')}, "
                          f"now {cfg.hash()}); delete that folder or choose another --out")
    status = (summary or {}).get("status")
    if status == "failed":
        return Job(cfg, run, "skip", f"failed earlier: {summary.get('reason')}; delete the folder to retry")
    if status == "completed":
        missing = _missing_evals(run, ev, summary)
        return Job(cfg, run, "eval" if missing else "skip", "completed" + (f", evaluate {', '.join(missing)}" if missing else ""))
    if (run / "checkpoints" / "last.pt").exists():
        return Job(cfg, run, "resume", f"from step {summary.get('steps') if summary else '?'}")
    return Job(cfg, run, "run")


def _missing_evals(run: Path, ev: Optional[dict], summary: dict) -> list[str]:
    """The suite's metrics that apply to this finished run and have no line for its last step yet."""
    if not ev:
        return []
    done = {r.get("metric") for r in read_jsonl(run / "eval.jsonl")
            if r.get("checkpoint", "last") == "last" and r.get("step") == summary.get("steps")}
    return [m for m in _applicable(ev["metrics"], summary) if m not in done]


def _applicable(metrics: list[str], summary: dict) -> list[str]:
    """Drop metrics that cannot apply (cond_acc of an unconditional model, labels of CelebA), so a
    mixed suite can ask for them all; every name is kept while gan_bench.metrics is missing."""
    try:
        from gan_bench.metrics.registry import inapplicable_reason
    except ModuleNotFoundError:
        return metrics
    from gan_bench.models import MODELS

    meta = MODELS.entry(str(summary.get("model"))).meta
    labelled, class_model = bool(summary.get("num_classes")), bool(meta.get("conditional") or meta.get("per_class"))
    return [m for m in metrics if not inapplicable_reason(m, labelled=labelled, class_model=class_model)]


def _check_metric_names(ev: Optional[dict]) -> None:
    try:
        from gan_bench.metrics import METRICS
    except ModuleNotFoundError:
        return
    for m in (ev or {}).get("metrics", []):
        METRICS.entry(m)  # ConfigError listing the valid names


def execute(job: Job, ev: Optional[dict], *, say: Callable[[str], None] = print) -> str:
    """Train (or resume) one job in this process, then evaluate it; returns its final status."""
    from gan_bench.train.loop import TrainingFailed, train

    status = "completed"
    if job.action in ("run", "resume"):
        if job.action == "run":
            shutil.rmtree(job.run_dir, ignore_errors=True)  # a run that died before its first checkpoint
            for sub in ("samples", "gifs", "checkpoints"):
                (job.run_dir / sub).mkdir(parents=True)
        try:
            train(job.cfg, run_dir=job.run_dir if job.action == "run" else None,
                  resume=job.run_dir if job.action == "resume" else None)
        except (TrainingFailed, GanBenchError) as e:  # one bad run does not stop the others
            say(f"  failed: {e}")
            return "failed"
    if ev:
        missing = _missing_evals(job.run_dir, ev, _summary(job.run_dir))
        if missing:
            status = _evaluate(job.run_dir, missing, ev["samples"], say)
    return status


def _summary(run: Path) -> dict:
    try:
        return json.loads((run / "summary.json").read_text())
    except (OSError, ValueError):
        raise GanBenchError(f"{run / 'summary.json'} is unreadable; delete {run} to run it again") from None


_NOTED: list[bool] = []  # the missing-metrics note is said once per process


def _evaluate(run: Path, metrics: list[str], samples: int, say: Callable[[str], None]) -> str:
    try:
        from gan_bench.metrics.evaluate import eval_run
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith("gan_bench"):
            if not _NOTED:
                say("  evaluation skipped: gan_bench.metrics.evaluate is not available in this version")
                _NOTED.append(True)
            return "completed"
        raise
    try:
        eval_run(run, metrics=metrics, samples=samples)
    except GanBenchError as e:
        say(f"  evaluation failed: {e}")
    return "completed"


def _child(cfg: dict, job: tuple[str, str, str], ev: Optional[dict], threads: int) -> None:
    """Entry point of a --jobs child process (spawned); its output goes to <run folder>.log beside it."""
    import torch

    from gan_bench.train.loop import Interrupted

    torch.set_num_threads(threads)
    run_dir, action, note = Path(job[0]), job[1], job[2]
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir.parent / f"{run_dir.name}.log", "a", buffering=1)
    sys.stdout = sys.stderr = log
    try:
        status = execute(Job(build_config([cfg]), run_dir, action, note), ev)
    except Interrupted:
        status = "interrupted"
    sys.exit({v: k for k, v in EXIT_STATUS.items()}[status])


def run_suite(suite: Suite, *, out: Path, quick: bool = False, jobs: int = 1, report: bool = True,
              metric: Optional[str] = None, gpus: Optional[list[str]] = None,
              say: Callable[[str], None] = print) -> dict[str, int]:
    """Run every job of the suite (jobs > 1: that many child processes at once; gpus, e.g. ["0", "1"]:
    one child per GPU, each seeing only its GPU), then write <out>/report/ (tables, plots) and
    <out>/report/gallery/index.html. Returns counts per outcome.
    A Ctrl-C / SIGTERM checkpoints the running jobs and raises train.loop.Interrupted."""
    if jobs < 1:
        raise GanBenchError(f"--jobs must be at least 1, got {jobs}")
    if gpus is not None:
        if jobs not in (1, len(gpus)):
            raise GanBenchError(f"--gpus runs one job per GPU ({len(gpus)} at once); drop --jobs {jobs}")
        gpus, jobs = visible_gpus(gpus), len(gpus)
    plan_ = plan(suite, out=out, quick=quick)
    counts = {"completed": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    ev = dict(suite.eval, samples=min(suite.eval["samples"], QUICK_EVAL_SAMPLES)) if quick and suite.eval else suite.eval
    todo = []
    for n, job in enumerate(plan_, 1):
        say(f"[{n}/{len(plan_)}] {job.action:6s} {job.run_dir}" + (f"  ({job.note})" if job.note else ""))
        if job.action == "skip":
            counts["skipped"] += 1
        else:
            todo.append(job)
    if jobs == 1 and gpus is None:
        for job in todo:
            say(f"--> {job.cfg.name} seed {job.cfg.train.seed}: {job.action}")
            counts[execute(job, ev, say=say)] += 1
    else:
        for status in _parallel(todo, ev, jobs, say, gpus=gpus):
            counts[status] += 1
    if report:
        write_reports(out, title=f"{suite.name}{' (quick)' if quick else ''}", metric=metric,
                      eval_metrics=(suite.eval or {}).get("metrics", []), say=say)
    return counts


def parse_gpus(text: str) -> list[str]:
    """`--gpus 0,1,2,3` -> ["0", "1", "2", "3"] (distinct GPU indices)."""
    ids = [s.strip() for s in text.split(",")]
    if not all(s.isdigit() for s in ids) or len(set(ids)) != len(ids):
        raise GanBenchError(f"--gpus {text!r}: expected distinct GPU indices separated by commas, e.g. 0,1,2,3")
    return ids


def visible_gpus(gpus: list[str]) -> list[str]:
    """--gpus indices as the children's CUDA_VISIBLE_DEVICES, checked against the GPUs this process
    sees (and mapped through its own CUDA_VISIBLE_DEVICES, which numbers them from 0 too)."""
    import torch

    n = torch.cuda.device_count()
    if n == 0:
        raise GanBenchError("--gpus: no CUDA GPU is visible here; on a CPU run several runs at once with --jobs N")
    missing = [g for g in gpus if int(g) >= n]
    if missing:
        raise GanBenchError(f"--gpus: there is no GPU {missing[0]}; this machine shows {n} (0 to {n - 1})")
    mine = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [mine.split(",")[int(g)].strip() for g in gpus] if mine else list(gpus)


@contextlib.contextmanager
def _only_gpu(gpu: Optional[str]) -> Iterator[None]:
    """A spawned child starts with this environment: with gpu, it sees that one GPU (as cuda:0)."""
    if gpu is None:
        yield
        return
    old = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        if old is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old


def _parallel(todo: list[Job], ev: Optional[dict], jobs: int, say: Callable[[str], None], *,
              gpus: Optional[list[str]] = None, target: Callable[..., None] = _child) -> list[str]:
    from gan_bench.train.loop import Interrupted

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // jobs)
    free: list[Optional[str]] = list(gpus) if gpus else [None] * jobs  # one slot per job at once (a GPU each)
    running: dict[int, tuple[Any, Job, Optional[str]]] = {}  # process sentinel -> (process, job, its GPU)
    results: list[str] = []
    queue = list(todo)
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while queue or running:
            while queue and free:
                job, gpu = queue.pop(0), free.pop(0)
                p = ctx.Process(target=target, args=(job.cfg.to_dict(), (str(job.run_dir), job.action, job.note),
                                                     ev, threads))
                with _only_gpu(gpu):
                    p.start()
                running[p.sentinel] = (p, job, gpu)
                say(f"--> started {job.cfg.name} seed {job.cfg.train.seed} (pid {p.pid}"
                    + (f", GPU {gpu}" if gpu is not None else "") + f", log {job.run_dir}.log)")
            for sentinel in wait(list(running)):
                p, job, gpu = running.pop(sentinel)
                free.append(gpu)
                p.join()
                status = EXIT_STATUS.get(p.exitcode, "failed")
                say(f"<-- {job.cfg.name} seed {job.cfg.train.seed}: {status}"
                    + ("" if p.exitcode == 0 else f" (exit {p.exitcode}; see {job.run_dir}.log)"))
                results.append(status)
    except KeyboardInterrupt:
        for p, _, _ in running.values():   # train() checkpoints on SIGTERM, then the child exits
            p.terminate()
        for p, _, _ in running.values():
            p.join()
        raise Interrupted(signal.SIGINT, todo[0].run_dir) from None
    finally:
        signal.signal(signal.SIGTERM, old)
    return results


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def write_reports(out: Path, *, title: str, metric: Optional[str], eval_metrics: list[str],
                  say: Callable[[str], None] = print) -> None:
    """Tables and plots in <out>/report/, the gallery in <out>/report/gallery/."""
    from gan_bench.report.compare import compare, resolve_metric, runs_table
    from gan_bench.report.gallery import build_gallery
    from gan_bench.report.records import load_runs

    if metric is None:  # the first evaluated metric the runs have, else throughput
        table = runs_table(load_runs(out))
        metric = next((m for m in eval_metrics if _resolves(resolve_metric, table, m)), "img_per_sec")
    files = compare(results=out, out=out / "report", metric=metric)
    say(f"tables: {files[0].parent}/ ({len(files)} files; pivot of {metric})")
    say(f"gallery: {build_gallery(results=out, out=out / 'report' / 'gallery', title=title)}")


def _resolves(resolve: Callable, table: Any, metric: str) -> bool:
    try:
        resolve(table, metric)
        return True
    except GanBenchError:
        return False


def _keys(d: dict, valid: set[str], where: str) -> None:
    for k in d:
        if k not in valid:
            raise ConfigError(f"{where}: unknown key {k!r}; valid keys: {', '.join(sorted(valid))}")


def _strings(v: Any, where: str) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
        raise ConfigError(f"{where}: expected a list of strings like [\"train.epochs=5\"], got {v!r}")
    return v


def _ints(v: Any, where: str) -> list[int]:
    if not isinstance(v, list) or not v or not all(isinstance(s, int) and not isinstance(s, bool) for s in v):
        raise ConfigError(f"{where}: expected a non-empty list of integers, got {v!r}")
    return v
