"""What a suite handed to a scheduler: <out>/slurm/jobs.jsonl, on the file system the jobs share.

One line per job submitted (which run, the job id, the executor and submitit kind that ran it), and one
per outcome the submitter saw come back. Reruns and --status read it to ask the scheduler about each
run's latest job, so a run whose job is queued or running is never submitted (or trained here) a
second time, and a run whose job failed is reported with its reason instead of being resubmitted.
It is the suite's file, not a run's: a run folder is cleared when its run starts afresh, and the job
that cleared it must still be on record. submitit's own files (the pickled job, its result, the
scheduler's logs) go to <out>/slurm/<job id>/ beside it.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

from gan_bench.errors import GanBenchError
from gan_bench.run.files import append_jsonl, read_jsonl
from gan_bench.suite.executors import EXECUTORS
from gan_bench.suite.plan import Job

FOLDER = "slurm"        # under the suite's out
LEDGER = "jobs.jsonl"
ACTIVE = ("queued", "running", "unknown")  # a job in these states may still write its run folder


@dataclass
class Submission:
    run: str                       # the run folder relative to the suite's out, e.g. "demo/seed0"
    job: str                       # the scheduler's job id, e.g. "4242_0" (a job array's task 0)
    executor: str                  # the suite executor that submitted it, e.g. "slurm"
    cluster: str                   # submitit's kind that ran it: slurm, local or debug
    time: float = 0.0
    ended: bool = False            # the submitter saw it end (--wait); then outcome is what came back:
    outcome: Optional[str] = None  # completed | interrupted | failed, or None (it ended without a result)
    reason: str = ""


@dataclass
class JobState:
    """What a scheduler says about one job: queued, running, ended, or unknown (it cannot be asked
    here); detail is its own word (PENDING, TIMEOUT, ...). outcome: what the job handed back when it
    ended (None: nothing, e.g. killed or out of time, and the run folder says where the run stands)."""

    state: str
    detail: str = ""
    outcome: Optional[str] = None
    reason: str = ""

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


class Ledger:
    """<out>/slurm/jobs.jsonl: the suite's submitted jobs (one submitter at a time)."""

    def __init__(self, out: Path | str) -> None:
        self.out = Path(out)
        self.folder = self.out / FOLDER
        self.path = self.folder / LEDGER

    def add(self, submissions: list[Submission]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for s in submissions:
            line = {k: v for k, v in asdict(s).items() if k in ("run", "job", "executor", "cluster")}
            append_jsonl(self.path, {"event": "submitted", **line, "time": s.time or time.time()})

    def settle(self, job: str, outcome: Optional[str], reason: str = "") -> None:
        """Record what job handed back (outcome None: it ended without a result)."""
        append_jsonl(self.path, {"event": "ended", "job": job, "outcome": outcome, "reason": reason})

    def latest(self) -> dict[str, Submission]:
        """Each run's latest job, with its outcome if it was recorded."""
        if not self.path.exists():
            return {}
        runs: dict[str, Submission] = {}
        ended: dict[str, dict] = {}
        for line in read_jsonl(self.path):
            if line.get("event") == "submitted":
                fields = {k: line[k] for k in ("run", "job", "executor", "cluster", "time") if k in line}
                try:
                    runs[line["run"]] = Submission(**fields)
                except (KeyError, TypeError):
                    raise GanBenchError(f"{self.path}: malformed line {line}; delete the line or the file") from None
            elif line.get("event") == "ended":
                ended[str(line.get("job"))] = line
        for s in runs.values():
            if s.job in ended:
                s.ended, s.outcome = True, ended[s.job].get("outcome")
                s.reason = str(ended[s.job].get("reason") or "")
        return runs

    def relative(self, job: Job) -> str:
        """The ledger's name for a job's run folder."""
        try:
            return job.run_dir.resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return job.run_dir.resolve().as_posix()


def job_states(ledger: Ledger, submissions: list[Submission]) -> dict[str, JobState]:
    """job id -> JobState, asking each submitting executor about its own jobs."""
    states: dict[str, JobState] = {}
    by_executor: dict[str, list[Submission]] = {}
    for s in submissions:
        by_executor.setdefault(s.executor, []).append(s)
    for name, subs in by_executor.items():
        if name not in EXECUTORS or not EXECUTORS.info(name).submits:
            states.update({s.job: JobState("unknown", f"no executor {name!r} here to ask") for s in subs})
            continue
        try:
            ask = EXECUTORS.get(name).job_states
            states.update(ask(ledger, subs))
        except GanBenchError as e:  # its extra is not installed here, say
            states.update({s.job: JobState("unknown", str(e)) for s in subs})
    return states


def hold_submitted(jobs: list[Job], out: Path, *, retry_failed: bool = False
                   ) -> tuple[list[Job], dict[Path, tuple[Submission, JobState]]]:
    """The plan with the runs that have a job on record held back: "wait" while that job may still be
    queued or running, "skip" if it failed (unless retry_failed). Also returns, per run folder with a
    job on record, that job and its state (for --status). Finished runs are not asked about."""
    ledger = Ledger(out)
    latest = ledger.latest()
    open_ = {j.run_dir: latest[ledger.relative(j)] for j in jobs
             if j.action != "skip" and ledger.relative(j) in latest}
    if not open_:
        return jobs, {}
    states = job_states(ledger, list(open_.values()))
    held, seen = [], {}
    for j in jobs:
        sub = open_.get(j.run_dir)
        if sub is None:
            held.append(j)
            continue
        st = states.get(sub.job, JobState("unknown", "not reported"))
        seen[j.run_dir] = (sub, st)
        where = f"{sub.cluster} job {sub.job}"
        if st.active:
            note = f"{where} {st.state}" + (f" ({st.detail})" if st.detail else "")
            held.append(replace(j, action="wait", note=note))
        elif st.outcome == "failed" and not retry_failed:
            note = f"failed in {where}: {st.reason}; --retry-failed submits it again"
            held.append(replace(j, action="skip", note=note))
        else:
            held.append(j)
    return held, seen
