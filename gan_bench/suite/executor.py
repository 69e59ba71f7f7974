"""Running a planned suite. run_suite plans, holds back the runs a cluster job has (submitted.py), hands
the rest to the executor chosen (executors.py) and writes the report. The `local` executor is here: in
this process one job after another, or N child processes at once (--jobs), or one per GPU (--gpus).
Every executor's job, a cluster job's included (cluster_job.py), trains, resumes or evaluates its run
folder through execute()."""
from __future__ import annotations

import contextlib
import json
import multiprocessing as mp
import os
import signal
import sys
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from gan_bench.atomic import cannot_write_under
from gan_bench.config import build_config
from gan_bench.data import load_data
from gan_bench.errors import GanBenchError, Interrupted, TrainingFailed
from gan_bench.metrics.evaluate import eval_run
from gan_bench.report.compare import check_metric_name
from gan_bench.report.suite import write_reports
from gan_bench.run import RunFolder
from gan_bench.suite.executors import EXECUTORS, Context, executor_for
from gan_bench.suite.file import Suite, SuiteEval
from gan_bench.suite.plan import Job, missing_evals, plan, quick_eval
from gan_bench.suite.submitted import hold_submitted
from gan_bench.train.loop import train
from gan_bench.train.plan import preflight

EXIT_STATUS = {0: "completed", 3: "interrupted", 4: "failed"}  # a --jobs child's exit status (others: failed)


def execute(job: Job, ev: Optional[SuiteEval], *, say: Callable[[str], None] = print) -> str:
    """Train (or resume) one job in this process, then evaluate it; returns its final status."""
    return execute_job(job, ev, say=say)[0]


def execute_job(job: Job, ev: Optional[SuiteEval], *, say: Callable[[str], None] = print) -> tuple[str, str]:
    """execute(), returning (status, why it failed or ""). Under torchrun every process calls it."""
    if job.action in ("run", "resume"):
        # under torchrun rank 0 alone clears the folder, before the ranks meet in train()
        if job.action == "run" and os.environ.get("RANK", "0") == "0":
            job.run.discard()  # a run that died before its first checkpoint
            job.run.prepare()
        try:
            train(job.cfg, run_dir=job.run_dir if job.action == "run" else None,
                  resume=job.run_dir if job.action == "resume" else None)
        except (TrainingFailed, GanBenchError) as e:  # one bad run does not stop the others
            if job.action == "run" and not job.run.is_run() and os.environ.get("RANK", "0") == "0":
                job.run.discard()  # it failed its checks before writing its config: no empty folder stays
            say(f"  failed: {e}")
            return "failed", str(e)
    if ev:
        missing = missing_evals(job.run, ev, job.run.read_summary())
        if missing:
            try:
                eval_run(job.run_dir, metrics=missing, samples=ev.samples)
            except GanBenchError as e:
                say(f"  evaluation failed: {e}")
    return "completed", ""


def _child(cfg: dict, job: tuple[str, str, str], ev: Optional[SuiteEval], threads: int) -> None:
    """Entry point of a --jobs child process (spawned); its output goes to the run's log beside it."""
    import torch

    torch.set_num_threads(threads)
    run = RunFolder(job[0])
    run.log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(run.log_path, "a", buffering=1)
    sys.stdout = sys.stderr = log
    try:
        status = execute(Job(build_config([cfg]), run, job[1], job[2]), ev)
    except Interrupted:
        status = "interrupted"
    sys.exit({v: k for k, v in EXIT_STATUS.items()}[status])


def run_suite(suite: Suite, *, out, quick: bool = False, jobs: int = 1, report: bool = True,
              metric: Optional[str] = None, gpus: Optional[list[str]] = None,
              say: Callable[[str], None] = print, executor: str = "local", options: Any = None,
              wait: bool = False, retry_failed: bool = False, dry_run: bool = False) -> dict[str, int]:
    """Run every job of the suite that needs work on `executor` (an EXECUTORS name; options: its
    options object or the text of its `--NAME` flag), then, once no run is left in a cluster job,
    write <out>/report/ (tables, plots) and <out>/report/gallery/index.html. Returns counts per outcome.

    local: jobs > 1 runs that many child processes at once; gpus, e.g. ["0", "1"], one child per GPU,
    each seeing only its GPU; a Ctrl-C / SIGTERM checkpoints the running jobs and raises Interrupted.
    A run whose cluster job is queued or running is left to it (whatever the executor), one whose
    job failed is skipped unless retry_failed. dry_run: print the plan (and what the executor would
    submit) and return."""
    ctx = Context(out=Path(out), name=suite.name, jobs=jobs, gpus=gpus, wait=wait, retry_failed=retry_failed,
                  dry_run=dry_run, say=say)
    ex = executor_for(executor, options, ctx)
    if wait and not EXECUTORS.info(executor).submits:
        raise GanBenchError(f"--wait waits for submitted jobs; --executor {executor} runs them here and always waits")
    jobs = plan(suite, out=out, quick=quick, retry_failed=retry_failed)
    _check_out(Path(out))  # before the ledger of submitted jobs in it is read
    plan_, _ = hold_submitted(jobs, Path(out), retry_failed=retry_failed)
    if metric is not None:
        check_metric_name(metric)  # once plan() has loaded the suite's plugins; not after every run has trained
    counts = {"completed": 0, "skipped": 0, "failed": 0, "interrupted": 0}
    ev = quick_eval(suite.eval, quick)
    todo = [job for job in plan_ if job.action not in ("skip", "wait")]
    if hasattr(ex, "check"):
        ex.check(todo)  # what the executor can tell about the jobs, before a line is printed
    for n, job in enumerate(plan_, 1):
        say(f"[{n}/{len(plan_)}] {job.action:6s} {job.run_dir}" + (f"  ({job.note})" if job.note else ""))
        if job.action in ("skip", "wait"):
            key = "skipped" if job.action == "skip" else "waiting"
            counts[key] = counts.get(key, 0) + 1
    if dry_run:
        for line in ex.dry_run(todo, ev) if hasattr(ex, "dry_run") else []:
            say(line)
        return counts
    for status in ex.run(todo, ev) if todo else []:
        counts[status] = counts.get(status, 0) + 1
    pending = counts.get("submitted", 0) + counts.get("waiting", 0)
    if report and pending:
        say(f"tables and gallery once every run is done ({pending} in cluster jobs): run the same command "
            f"again then (--status shows where they are)")
    elif report:
        write_reports(out, title=f"{suite.name}{' (quick)' if quick else ''}", metric=metric,
                      eval_metrics=suite.eval.metrics if suite.eval else [], targets=suite.targets, say=say)
    return counts


def _check_out(out: Path) -> None:
    """The suite's folder can be made and written, checked before the first run (else every run would
    fail on its own, one after the other)."""
    problem = cannot_write_under(out)
    if problem:
        raise GanBenchError(f"cannot create the output folder {str(out)!r} ({problem}); choose another `out` or --out")


@EXECUTORS.register("local", description="this machine: one run after another, or N at once (--jobs N, --gpus)")
class LocalExecutor:
    """The suite runner of one machine: in this process, or --jobs child processes, or one per --gpus GPU."""

    def __init__(self, options: None, ctx: Context) -> None:
        if ctx.jobs < 1:
            raise GanBenchError(f"--jobs must be at least 1, got {ctx.jobs}")
        self.jobs, self.gpus, self.say, self.planning_only = ctx.jobs, ctx.gpus, ctx.say, ctx.dry_run
        if self.gpus is not None:
            if self.jobs not in (1, len(self.gpus)):
                raise GanBenchError(f"--gpus runs one job per GPU ({len(self.gpus)} at once); drop --jobs {self.jobs}")
            self.gpus, self.jobs = (self.gpus if ctx.dry_run else visible_gpus(self.gpus)), len(self.gpus)

    def check(self, todo: list[Job]) -> None:
        """Each distinct config of the runs to start, checked as its run would check it (device, data
        read, model built), so bad data is one error before anything starts, not a failed run after
        others trained; each data set is read once. Not with --dry-run (it would download data), and
        only here: a cluster's data may live where its nodes alone can read it."""
        if self.planning_only:
            return
        by_data: dict[str, dict[str, Job]] = {}
        for job in (j for j in todo if j.action == "run"):
            d = job.cfg.to_dict()
            d["train"]["seed"] = 0  # seeds share every check
            by_data.setdefault(_key(d["data"]), {}).setdefault(_key(d), job)
        for jobs in by_data.values():
            data = None
            for job in jobs.values():
                try:
                    data = load_data(job.cfg.data) if data is None else data
                    preflight(job.cfg, data)
                except GanBenchError as e:
                    raise GanBenchError(f"{job.cfg.name} seed {job.cfg.train.seed}: {e}") from None

    def run(self, todo: list[Job], ev: Optional[SuiteEval]) -> list[str]:
        if self.jobs == 1 and self.gpus is None:
            statuses = []
            for job in todo:
                self.say(f"--> {job.cfg.name} seed {job.cfg.train.seed}: {job.action}")
                statuses.append(execute(job, ev, say=self.say))
            return statuses
        return _parallel(todo, ev, self.jobs, self.say, gpus=self.gpus)


def _key(d: dict) -> str:
    return json.dumps(d, sort_keys=True, default=str)


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
