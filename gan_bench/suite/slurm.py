"""`--executor slurm`: every run of a suite as a SLURM job (or all of them as one job array), through
submitit.

submitit writes the sbatch script, pickles each job (a ClusterJob, cluster_job.py), brings its result
or exception back, and requeues a job stopped by its time limit or a preemption once its checkpoint
hook has had the trainer write a checkpoint; the requeued job resumes from it. The jobs write their run
folders under the suite's `out`, which must be on a file system the nodes share, and their logs beside
them; submitit's files and the suite's record of its jobs go to <out>/slurm/ (submitted.py).

`--slurm KEY=VALUE,...` sets SlurmOptions, checked like config keys. cluster=local and cluster=debug run
the same jobs through submitit's stand-ins on this machine (real processes, or this process), to try
a suite's cluster path without a cluster; the tests use both.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from gan_bench.config import option
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.suite.cluster_job import ClusterJob
from gan_bench.suite.executors import EXECUTORS, Context
from gan_bench.suite.file import SuiteEval
from gan_bench.suite.plan import Job
from gan_bench.suite.submitted import JobState, Ledger, Submission

NAME = "slurm"  # the executor's registry name, also on record beside its jobs
CLUSTERS = ("slurm", "local", "debug")  # submitit's kinds: the real one, and its stand-ins on this machine
# sacct's job states (the first word: "CANCELLED by 123"); any other state has ended
QUEUED = {"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "RESIZING", "PREEMPTED"}
RUNNING = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "SUSPENDED", "STOPPED"}
FAILED = {"FAILED": "failed", "OUT_OF_MEMORY": "ran out of memory (raise --slurm mem_gb)",
          "BOOT_FAIL": "could not start its node"}


@dataclass
class SlurmOptions:
    """What each job asks SLURM for (`--slurm KEY=VALUE,...`; sbatch's own words where it has one)."""

    partition: Optional[str] = None
    gpus_per_node: int = option(0, lo=0, hi=64, help="above 1 the run trains under torchrun, a process per GPU")
    nodes: int = option(1, lo=1, hi=1024, help="nodes per run; above 1 torchrun spans them")
    cpus_per_task: Optional[int] = option(None, lo=1)
    mem_gb: Optional[float] = option(None, lo=0.0, lo_open=True)
    timeout_min: int = option(60, lo=1, help="a job's time limit; a longer run is checkpointed and requeued")
    account: Optional[str] = None
    qos: Optional[str] = None
    constraint: Optional[str] = None
    exclude: Optional[str] = None
    job_name: Optional[str] = None              # default gan-bench-<suite name>
    array: bool = True                          # the runs submitted together as one job array
    array_parallelism: int = option(256, lo=1, help="tasks of the array running at once")
    signal_delay_s: int = option(120, lo=30, help="the checkpoint signal comes this long before the time limit")
    max_requeues: int = option(10, lo=0, help="time-limit requeues before a run counts as failed")
    setup: list[str] = option([])               # shell lines a job runs first, e.g. [module load cuda]
    python: Optional[str] = None                # the jobs' python (default: this one)
    cluster: str = "slurm"                      # slurm, or submitit's stand-ins here: local, debug

    def check(self) -> None:
        if self.cluster not in CLUSTERS:
            raise ConfigError(f"--slurm cluster: expected {', '.join(CLUSTERS)}, got {self.cluster!r}")
        if self.nodes > 1 and self.cluster != "slurm":
            raise ConfigError(f"--slurm nodes={self.nodes}: cluster={self.cluster} runs on this machine alone; "
                              f"use nodes=1")

    @property
    def procs_per_node(self) -> int:
        return max(1, self.gpus_per_node)


@EXECUTORS.register(NAME, description="one SLURM job per run (or one job array), through submitit",
                    options=SlurmOptions, example="partition=gpu,gpus_per_node=1,timeout_min=240",
                    extra="slurm", requires=("submitit",), submits=True)
class SlurmExecutor:
    """Submits the jobs and returns (or waits for them with --wait; cluster=debug always waits)."""

    POLL_S = {"slurm": 10.0, "local": 0.5, "debug": 0.0}  # between looks at the jobs while --wait waits

    def __init__(self, options: SlurmOptions, ctx: Context) -> None:
        if ctx.jobs != 1 or ctx.gpus is not None:
            raise GanBenchError("--jobs and --gpus share out this machine; with --executor slurm every run is a job "
                                "of its own (ask for GPUs with --slurm gpus_per_node=N)")
        self.o, self.ctx, self.ledger = options, ctx, Ledger(ctx.out)
        if options.cluster == "slurm" and not ctx.dry_run:
            missing = [c for c in ("sbatch", "srun") if shutil.which(c) is None]
            if missing:
                raise GanBenchError(f"--executor slurm: no SLURM on this machine (`{missing[0]}` is not on PATH); "
                                    f"submit from the cluster's login node, or run it here with --jobs N")

    # ---- submitting ----------------------------------------------------------------------------------

    def run(self, todo: list[Job], ev: Optional[SuiteEval]) -> list[str]:
        say = self.ctx.say
        jobs = self.submit([self.cluster_job(j, ev) for j in todo])
        subs = [Submission(run=self.ledger.relative(j), job=str(sj.job_id), executor=NAME, cluster=self.o.cluster)
                for j, sj in zip(todo, jobs)]
        self.ledger.add(subs)
        for j, s in zip(todo, subs):
            say(f"--> {j.cfg.name} seed {j.cfg.train.seed}: {j.action} in {s.cluster} job {s.job} "
                f"(log {j.run.log_path})")
        if not (self.ctx.wait or self.o.cluster == "debug"):
            say(f"submitted {len(subs)} job(s); their scheduler files are in {self.ledger.folder}/")
            return ["submitted"] * len(subs)
        return self._wait(todo, subs, jobs)

    def dry_run(self, todo: list[Job], ev: Optional[SuiteEval]) -> list[str]:
        """What run() would submit: the count, and the sbatch script of its job (array)."""
        if not todo:
            return ["nothing to submit"]
        n, array = len(todo), self.o.array and len(todo) > 1
        head = f"would submit {'a job array of ' if array else ''}{n} job{'s' if n > 1 else ''}"
        if self.o.cluster != "slurm":
            return [head + f" to submitit's {self.o.cluster} executor (no sbatch script)"]
        return [head + "; the sbatch script" + (" of the array:" if array else " of each:"),
                *self.sbatch_script(n if array else 1).rstrip("\n").splitlines()]

    def check(self, todo: list[Job]) -> None:
        """What a job would otherwise find out on its node: a GPU config without GPUs, and the config
        checks torchrun adds."""
        o, procs = self.o, self.o.procs_per_node * self.o.nodes
        for j in todo:
            where, device = f"{j.cfg.name} seed {j.cfg.train.seed}", j.cfg.train.device
            if device.startswith("cuda") and o.gpus_per_node == 0:
                raise ConfigError(f"{where}: train.device is {device} but the jobs ask for no GPU; add "
                                  f"--slurm gpus_per_node=1 (or set train.device=auto)")
            if procs > 1 and device.startswith("cuda:"):
                raise ConfigError(f"{where}: train.device is {device}, but under torchrun each process takes its own "
                                  f"GPU; set train.device to auto or cuda")
            if procs > 1 and j.cfg.train.batch_size % procs:
                raise ConfigError(f"{where}: train.batch_size is the global batch ({j.cfg.train.batch_size}) and must "
                                  f"split evenly among the job's {procs} processes; use a multiple of {procs}")

    def cluster_job(self, job: Job, ev: Optional[SuiteEval]) -> ClusterJob:
        o = self.o
        failed = job.run.has_summary() and job.run.read_summary().get("status") == "failed"
        return ClusterJob(config=job.cfg.to_dict(), run_dir=str(job.run_dir.resolve()),
                          ev=asdict(ev) if ev else None, cwd=os.getcwd(), folder=str(self.ledger.folder.resolve()),
                          procs_per_node=o.procs_per_node, nodes=o.nodes, retry_failed=self.ctx.retry_failed and failed,
                          stop_timeout_s=max(10, o.signal_delay_s - 20))  # submitit still has to requeue after

    def parameters(self) -> dict[str, Any]:
        """submitit.AutoExecutor's parameters: its shared names, and slurm_<sbatch option>."""
        o = self.o
        p = {"name": o.job_name or f"gan-bench-{self.ctx.name}", "timeout_min": o.timeout_min, "nodes": o.nodes,
             "tasks_per_node": 1, "cpus_per_task": o.cpus_per_task, "mem_gb": o.mem_gb,
             "gpus_per_node": o.gpus_per_node or None, "slurm_partition": o.partition, "slurm_account": o.account,
             "slurm_qos": o.qos, "slurm_constraint": o.constraint, "slurm_exclude": o.exclude,
             "slurm_array_parallelism": o.array_parallelism, "slurm_signal_delay_s": o.signal_delay_s,
             "slurm_setup": list(o.setup) or None}
        return {k: v for k, v in p.items() if v is not None}

    def executor(self) -> Any:
        submitit = _submitit()
        o = self.o
        kwargs = {} if o.cluster == "debug" else {f"{o.cluster}_max_num_timeout": o.max_requeues}
        if o.python and o.cluster != "debug":
            kwargs[f"{o.cluster}_python"] = o.python
        ex = submitit.AutoExecutor(folder=self.ledger.folder / "%j", cluster=o.cluster, **kwargs)
        ex.update_parameters(**self.parameters())
        return ex

    def sbatch_script(self, n: int) -> str:
        """The script sbatch gets for n jobs (n > 1: one array), made by submitit's own code for it."""
        from submitit.slurm import slurm

        class ScriptOnly(slurm.SlurmExecutor):
            @classmethod
            def affinity(cls) -> int:  # writing the script needs no srun here
                return 2

        ex = ScriptOnly(self.ledger.folder / "%j", max_num_timeout=self.o.max_requeues, python=self.o.python)
        params = self.parameters()  # as AutoExecutor passes them on: shared names converted, slurm_ stripped
        shared = {k: v for k, v in params.items() if not k.startswith("slurm_")}
        ex.update_parameters(**ex._convert_parameters(shared),
                             **{k[len("slurm_"):]: v for k, v in params.items() if k.startswith("slurm_")})
        if n > 1:
            ex.parameters["map_count"] = n
        return ex._make_submission_file_text(ex._submitit_command_str, "script")

    def submit(self, fns: list[Any]) -> list[Any]:
        """submitit's jobs of the callables fns (one job array when asked and there are several): a suite's
        ClusterJobs, or a sweep's workers (sweep/cluster.py). sbatch's refusal is one GanBenchError."""
        from submitit.core.utils import FailedSubmissionError, UncompletedJobError

        folder = self.ledger.folder
        before = set(folder.iterdir()) if folder.exists() else None
        top = self.ctx.out if not self.ctx.out.exists() else folder
        try:
            ex = self.executor()
            # submitit echoes sbatch's complaint to stderr; the message below says it once
            with contextlib.redirect_stderr(io.StringIO()):
                if self.o.array and len(fns) > 1:
                    return ex.submit_array(fns)
                return [ex.submit(fn) for fn in fns]
        except (UncompletedJobError, FailedSubmissionError, OSError) as e:
            # nothing was submitted: leave the disk as it was
            for p in [top] if before is None else sorted(set(folder.iterdir()) - before):
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
            first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
            raise GanBenchError(f"sbatch refused the jobs ({first}); fix the --slurm options it names") from None

    # ---- waiting, and asking about jobs --------------------------------------------------------------

    def _wait(self, todo: list[Job], subs: list[Submission], jobs: list[Any]) -> list[str]:
        statuses: dict[int, str] = {}
        try:
            while len(statuses) < len(jobs):
                for i, (j, s, sj) in enumerate(zip(todo, subs, jobs)):
                    if i in statuses or (self.o.cluster != "debug" and not sj.done()):
                        continue
                    outcome, reason = came_back(sj, debug=self.o.cluster == "debug")
                    self.ledger.settle(s.job, outcome, reason)
                    statuses[i] = outcome or "interrupted"
                    self.ctx.say(f"<-- {j.cfg.name} seed {j.cfg.train.seed}: " + (
                        f"{outcome}" + (f": {reason}" if reason else "") if outcome
                        else f"job {s.job} ended without a result (killed?); a rerun resumes it"))
                if len(statuses) < len(jobs):
                    time.sleep(self.POLL_S[self.o.cluster])
        except KeyboardInterrupt:
            self.ctx.say("stopped waiting; the submitted jobs go on (--status shows them)")
            raise
        return [statuses[i] for i in range(len(jobs))]

    @staticmethod
    def job_states(ledger: Ledger, subs: list[Submission]) -> dict[str, JobState]:
        """job id -> JobState: the scheduler's word first (a requeued job keeps its id and its old
        result), then the result the job handed back, then what its end says."""
        _submitit()
        from submitit.core.utils import JobPaths

        slurm_ids = [s.job for s in subs if s.cluster == "slurm" and not s.ended]
        sacct = _sacct(slurm_ids) if slurm_ids else {}
        states = {}
        for s in subs:
            result = JobPaths(ledger.folder / "%j", job_id=s.job, task_id=0).result_pickle
            if s.ended:
                states[s.job] = JobState("ended", "seen ending", s.outcome, s.reason)
            elif s.cluster == "slurm":
                states[s.job] = _slurm_state(s.job, sacct.get(s.job), result, ledger)
            elif s.cluster == "local" and s.job.isdigit() and _running(int(s.job)):
                states[s.job] = JobState("running")
            else:
                outcome, reason = _pickled(result) or (None, "")
                states[s.job] = JobState("ended", "", outcome, reason)
        return states


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:  # the optional extra; executor_for checks it first, a status check may not have
        raise GanBenchError("the slurm executor needs submitit: pip install -e \".[slurm]\"") from None
    return submitit


def _running(pid: int) -> bool:
    """Whether process pid (a local stand-in job's controller) is alive: not gone, not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def _sacct(ids: list[str]) -> dict[str, str]:
    """SLURM's state of each job, one sacct call for all (submitit's parser, arrays included); {} when
    there is no sacct here."""
    if shutil.which("sacct") is None:
        return {}
    from submitit.slurm.slurm import SlurmInfoWatcher

    watcher = SlurmInfoWatcher(delay_s=0)
    for i in ids:
        watcher.register_job(i)
    watcher.update()
    return {i: watcher.get_state(i, mode="cache") for i in ids}


def _slurm_state(job: str, state: Optional[str], result: Path, ledger: Ledger) -> JobState:
    if state is None:
        return JobState("unknown", "no sacct here to ask")
    word = state.split()[0].upper() if state.strip() else "UNKNOWN"
    if word in QUEUED or word in RUNNING or word == "UNKNOWN":
        return JobState("queued" if word in QUEUED else "running" if word in RUNNING else "unknown", word)
    pickled = _pickled(result)
    if pickled:
        return JobState("ended", word, *pickled)
    if word in FAILED:
        log = result.with_name(f"{job}_0_log.err")
        return JobState("ended", word, "failed", f"slurm job {job} {FAILED[word]} without a result; see {log}")
    return JobState("ended", word)  # cancelled, out of time, node lost: the run folder says what is left


def came_back(job: Any, *, debug: bool) -> tuple[Optional[str], str]:
    """(completed | interrupted | failed | None, reason) of a job that has ended; None: it handed
    nothing back (killed, cancelled, out of time)."""
    error = job.exception()  # the debug executor runs the job here, now
    if error is None:
        return str(job.result()), ""
    if debug:
        return "failed", _reason(f"{type(error).__module__}.{type(error).__name__}: {error}")
    return _pickled(job.paths.result_pickle) or (None, "")


def _pickled(path: Path) -> Optional[tuple[str, str]]:
    """What a job handed back through submitit's result file: ("completed" | "interrupted", "") or
    ("failed", reason); None without one."""
    if not path.exists():
        return None
    from submitit.core.utils import pickle_load

    kind, value = pickle_load(path)
    return (str(value), "") if kind == "success" else ("failed", _reason(str(value)))


def _reason(trace: str) -> str:
    """The last line of a traceback, as a reason: RunFailed's message bare, other errors with their
    class name (without the module path)."""
    last = next((line.strip() for line in reversed(trace.splitlines()) if line.strip()), "no reason given")
    m = re.match(r"^([\w.]+): (.*)$", last)
    if not m:
        return last
    kind = m.group(1).rsplit(".", 1)[-1]
    return m.group(2) if kind == "RunFailed" else f"{kind}: {m.group(2)}"
