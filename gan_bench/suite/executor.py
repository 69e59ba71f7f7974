"""Running a planned suite: in this process one job after another, or N child processes at once
(--jobs), or one per GPU (--gpus); each job trains, resumes or evaluates its run folder."""
from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from gan_bench.config import build_config
from gan_bench.errors import GanBenchError, Interrupted, TrainingFailed
from gan_bench.metrics.evaluate import eval_run
from gan_bench.report.suite import write_reports
from gan_bench.run import RunFolder
from gan_bench.suite.file import Suite, SuiteEval
from gan_bench.suite.plan import Job, missing_evals, plan, quick_eval
from gan_bench.train.loop import train

EXIT_STATUS = {0: "completed", 3: "interrupted", 4: "failed"}  # a --jobs child's exit status (others: failed)


def execute(job: Job, ev: Optional[SuiteEval], *, say: Callable[[str], None] = print) -> str:
    """Train (or resume) one job in this process, then evaluate it; returns its final status."""
    if job.action in ("run", "resume"):
        if job.action == "run":
            job.run.discard()  # a run that died before its first checkpoint
            job.run.prepare()
        try:
            train(job.cfg, run_dir=job.run_dir if job.action == "run" else None,
                  resume=job.run_dir if job.action == "resume" else None)
        except (TrainingFailed, GanBenchError) as e:  # one bad run does not stop the others
            say(f"  failed: {e}")
            return "failed"
    if ev:
        missing = missing_evals(job.run, ev, job.run.read_summary())
        if missing:
            try:
                eval_run(job.run_dir, metrics=missing, samples=ev.samples)
            except GanBenchError as e:
                say(f"  evaluation failed: {e}")
    return "completed"


def _child(cfg: dict, job: tuple[str, str, str], ev: Optional[SuiteEval], threads: int) -> None:
    """Entry point of a --jobs child process (spawned); its output goes to the run's log beside it."""
    import torch

    torch.set_num_threads(threads)
    run = RunFolder(job[0])
    run.path.mkdir(parents=True, exist_ok=True)
    log = open(run.log_path, "a", buffering=1)
    sys.stdout = sys.stderr = log
    try:
        status = execute(Job(build_config([cfg]), run, job[1], job[2]), ev)
    except Interrupted:
        status = "interrupted"
    sys.exit({v: k for k, v in EXIT_STATUS.items()}[status])


def run_suite(suite: Suite, *, out, quick: bool = False, jobs: int = 1, report: bool = True,
              metric: Optional[str] = None, gpus: Optional[list[str]] = None,
              say: Callable[[str], None] = print) -> dict[str, int]:
    """Run every job of the suite (jobs > 1: that many child processes at once; gpus, e.g. ["0", "1"]:
    one child per GPU, each seeing only its GPU), then write <out>/report/ (tables, plots) and
    <out>/report/gallery/index.html. Returns counts per outcome.
    A Ctrl-C / SIGTERM checkpoints the running jobs and raises Interrupted."""
    if jobs < 1:
        raise GanBenchError(f"--jobs must be at least 1, got {jobs}")
    if gpus is not None:
        if jobs not in (1, len(gpus)):
            raise GanBenchError(f"--gpus runs one job per GPU ({len(gpus)} at once); drop --jobs {jobs}")
        gpus, jobs = visible_gpus(gpus), len(gpus)
    plan_ = plan(suite, out=out, quick=quick)
    _check_out(Path(out))
    counts = {"completed": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    ev = quick_eval(suite.eval, quick)
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
                      eval_metrics=suite.eval.metrics if suite.eval else [], say=say)
    return counts


def _check_out(out: Path) -> None:
    """The suite's folder can be made and written, checked before the first run (else every run would
    fail on its own, one after the other)."""
    missing = next((p for p in (out, *out.parents) if p.exists()), None)
    if missing is not None and not missing.is_dir():
        raise GanBenchError(f"cannot create the output folder {str(out)!r} ({str(missing)!r} is a file); "
                            f"choose another `out` or --out")
    if missing is not None and not os.access(missing, os.W_OK):
        raise GanBenchError(f"cannot create the output folder {str(out)!r} ({str(missing)!r} is not writable); "
                            f"choose another `out` or --out")


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


def _parallel(todo: list[Job], ev: Optional[SuiteEval], jobs: int, say: Callable[[str], None], *,
              gpus: Optional[list[str]] = None, target: Callable[..., None] = _child) -> list[str]:
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
                    + (f", GPU {gpu}" if gpu is not None else "") + f", log {job.run.log_path})")
            for sentinel in wait(list(running)):
                p, job, gpu = running.pop(sentinel)
                free.append(gpu)
                p.join()
                status = EXIT_STATUS.get(p.exitcode, "failed")
                say(f"<-- {job.cfg.name} seed {job.cfg.train.seed}: {status}"
                    + ("" if p.exitcode == 0 else f" (exit {p.exitcode}; see {job.run.log_path})"))
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
