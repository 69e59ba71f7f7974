"""What one cluster job runs: the run of one (config, seed), in a child process the job watches over.

submitit pickles a ClusterJob, starts it on a node and calls it. The job decides afresh what the run
folder needs (plan.decide, so a requeued job resumes), then runs the suite's own execute() in a child,
`python -m gan_bench.suite.worker SPEC`, under torchrun when the job has several GPUs or nodes.
The child's output goes to the run's log beside its folder, as with --jobs.

The child trains, not the job's own process, so that submitit's checkpoint hook (called on the
scheduler's time-limit or preemption signal, USR2 by default) can stop the run the trainer's own way
and wait for it: SIGTERM, on which the trainer finishes the step, writes a checkpoint and exits.
submitit then requeues the same job, which resumes from that checkpoint. The child ignores USR2
itself: SLURM sends it to every process of the job, and by default it would kill the child mid-step.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from gan_bench.config import build_config
from gan_bench.run import RunFolder
from gan_bench.suite.executor import EXIT_STATUS
from gan_bench.suite.file import SuiteEval
from gan_bench.suite.plan import decide

STOPPED_BY = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGHUP)  # a stop from outside, not a failure
MASTER_PORT = 29500  # torchrun's across nodes, offset by the job id so two jobs on one node do not meet


class RunFailed(Exception):
    """The run of a cluster job failed; the message is the reason, as --status shows it."""


class ChildJob:
    """A submitit callable that runs its work in a child process: picklable without the child, and requeued
    as-is by checkpoint() after the child was stopped the trainer's way (it finishes the step and writes a
    checkpoint). The suite's ClusterJob and the sweep's workers are both one."""

    stop_timeout_s: float
    _child: Optional[subprocess.Popen] = None

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_child"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _child=None)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit's hook on the time-limit or preemption signal: stop the child (its run or trial writes a
        checkpoint), wait for that, and hand submitit this same job to requeue; when it starts again it
        resumes from that checkpoint."""
        from submitit.helpers import DelayedSubmission  # only ever called inside a submitit job

        stop_child(self._child, self.stop_timeout_s)
        return DelayedSubmission(self)


class ClusterJob(ChildJob):
    """The callable submitit runs for one (config, seed); picklable, and rebuilt as-is on requeue (submitit
    requeues any callable with a checkpoint method, as helpers.Checkpointable has)."""

    def __init__(self, *, config: dict[str, Any], run_dir: str, ev: Optional[dict[str, Any]], cwd: str,
                 folder: str, procs_per_node: int = 1, nodes: int = 1, retry_failed: bool = False,
                 stop_timeout_s: float = 60.0) -> None:
        """config: the run's config as a dict; run_dir: its folder (absolute); ev: the suite's evaluation
        (SuiteEval's fields) or None; cwd: the folder the configs' relative paths start from; folder:
        the suite's <out>/slurm; stop_timeout_s: how long a stopping run may take to checkpoint."""
        self.config, self.run_dir, self.ev, self.cwd, self.folder = config, run_dir, ev, cwd, folder
        self.procs_per_node, self.nodes, self.retry_failed = procs_per_node, nodes, retry_failed
        self.stop_timeout_s = stop_timeout_s
        self._child: Optional[subprocess.Popen] = None

    def __repr__(self) -> str:
        return f"ClusterJob({self.run_dir!r})"

    # ---- in the job ----------------------------------------------------------------------------------

    def __call__(self) -> str:
        """Train, resume or evaluate the run; returns "completed" or "interrupted", raises RunFailed."""
        os.chdir(self.cwd)  # the configs' relative paths are the submitter's
        run = RunFolder(self.run_dir)
        ev = SuiteEval(**self.ev) if self.ev else None
        job = decide(build_config([self.config]), run, ev, retry_failed=self.retry_failed)
        print(f"gan-bench: {run}: {job.action}" + (f" ({job.note})" if job.note else ""), flush=True)
        if job.action == "skip":
            summary = run.read_summary()
            if summary.get("status") == "failed":
                raise RunFailed(str(summary.get("reason")))
            return "completed"
        stages = [(job.action, ev)]
        if self.procs_per_node * self.nodes > 1 and ev and job.action != "eval":
            # evaluated by a second torchrun: rank 0 writes the summary the evaluation reads as the
            # training processes end, and the others may end first
            stages = [(job.action, None), ("eval", ev)]
        for action, stage_ev in stages:
            status, reason = self._stage(action, stage_ev)
            if status == "failed":
                raise RunFailed(reason)
            if status != "completed":
                return status
        return "completed"

    def _stage(self, action: str, ev: Optional[SuiteEval]) -> tuple[str, str]:
        run = RunFolder(self.run_dir)
        fd, outcome = tempfile.mkstemp(prefix=".outcome-", suffix=".json", dir=self.folder)
        os.close(fd)
        spec = {"config": self.config, "run": self.run_dir, "action": action, "outcome": outcome,
                "eval": {"metrics": ev.metrics, "samples": ev.samples} if ev else None}
        node = self._node()
        run.path.parent.mkdir(parents=True, exist_ok=True)
        log = open(run.log_path, "a", buffering=1) if node == 0 else None  # other nodes: the job's own log
        try:
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", str(max(1, job_cpus() // self.procs_per_node)))
            self._child = subprocess.Popen(self.command(json.dumps(spec), node=node), stdout=log,
                                           stderr=subprocess.STDOUT if log else None, env=env,
                                           preexec_fn=ignore_scheduler_signal)
            try:
                code = self._child.wait()
            except KeyboardInterrupt:  # the job is being cancelled: let the run write its checkpoint
                self._stop()
                raise
            finally:
                self._child = None
            return _outcome(Path(outcome), code, run)
        finally:
            if log:
                log.close()
            Path(outcome).unlink(missing_ok=True)

    def command(self, spec: str, *, node: int = 0) -> list[str]:
        """The child's command: worker.py, under torchrun for several processes or nodes."""
        worker = ["-m", "gan_bench.suite.worker", spec]
        if self.procs_per_node * self.nodes == 1:
            return [sys.executable, *worker]
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(self.procs_per_node)]
        if self.nodes == 1:
            return cmd + ["--standalone", *worker]
        from submitit import JobEnvironment  # several nodes: only in a SLURM job

        env = JobEnvironment()
        port = MASTER_PORT + int(re.sub(r"\D", "", env.job_id) or 0) % 1000
        # the node's rank fixes its processes' ranks: node 0 holds rank 0, which writes the run folder
        return cmd + ["--nnodes", str(self.nodes), "--node-rank", str(node), "--master-addr", env.hostnames[0],
                      "--master-port", str(port), *worker]

    def _node(self) -> int:
        if self.nodes == 1:
            return 0
        from submitit import JobEnvironment

        return JobEnvironment().node

    def _stop(self) -> None:
        stop_child(self._child, self.stop_timeout_s)


def stop_child(child: Optional[subprocess.Popen], timeout_s: float) -> None:
    """SIGTERM to a job's child, then wait for it to exit (the trainer writes a checkpoint first). Called
    from a signal handler that interrupted Popen.wait(), which holds the Popen's lock: so os.waitpid, not
    Popen's own methods. Also the sweep's workers' (sweep/cluster.py)."""
    if child is None or child.returncode is not None:
        return
    try:
        os.kill(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if os.waitpid(child.pid, os.WNOHANG)[0]:
                return
            time.sleep(0.2)
        os.kill(child.pid, signal.SIGKILL)  # the scheduler's kill is near: the last checkpoint stands
        os.waitpid(child.pid, 0)
    except (ProcessLookupError, ChildProcessError):  # it has ended and been reaped already
        pass


def job_cpus() -> int:
    """The CPUs this job may use (SLURM's cgroup shows in the affinity mask)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def ignore_scheduler_signal() -> None:
    """In the child, before exec: ignore submitit's checkpoint signal (ignoring survives exec)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    signal.signal(getattr(signal, f"SIG{name}", signal.SIGUSR2), signal.SIG_IGN)


def _outcome(path: Path, code: int, run: RunFolder) -> tuple[str, str]:
    """The child's (status, reason): what its rank 0 wrote, else what its exit status says."""
    try:
        d = json.loads(path.read_text())
        return str(d["status"]), str(d.get("reason") or "")
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if code in EXIT_STATUS:
        return EXIT_STATUS[code], "" if code != 4 else f"see {run.log_path}"
    if code < 0 and -code in STOPPED_BY:
        return "interrupted", ""
    what = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    return "failed", f"the run's process {what}; see {run.log_path}"
