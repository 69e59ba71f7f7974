"""`gan-bench suite FILE --status`: where each run of a suite stands, from its run folder and the
scheduler's word on its latest job. Reads only; nothing is submitted, trained or written.

  done          completed (and evaluated)
  queued        its job waits for a node
  running       its job runs (the step is the last one logged)
  unknown       its job cannot be asked about here (no sacct): left to it
  failed        its run or its job failed; the reason; a rerun leaves it unless --retry-failed
  stopped       a checkpoint and no job: a rerun resumes it (killed, cancelled, out of time)
  to evaluate   trained, some of the suite's metrics missing: a rerun evaluates it
  to run        nothing yet: a rerun starts it
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from gan_bench.suite.file import Suite
from gan_bench.suite.plan import Job, plan
from gan_bench.suite.submitted import JobState, Submission, hold_submitted

LABELS = ("done", "queued", "running", "unknown", "failed", "stopped", "to evaluate", "to run")


def suite_status(suite: Suite, *, out: Path, quick: bool, say: Callable[[str], None] = print) -> dict[str, int]:
    """One line per run (label, folder, detail) and a count per label; returns the counts."""
    jobs, seen = hold_submitted(plan(suite, out=out, quick=quick), Path(out))
    counts = dict.fromkeys(LABELS, 0)
    for n, job in enumerate(jobs, 1):
        label, detail = describe(job, *seen.get(job.run_dir, (None, None)))
        counts[label] += 1
        say(f"[{n}/{len(jobs)}] {label:11s} {job.run_dir}" + (f"  {detail}" if detail else ""))
    say(f"{len(jobs)} runs: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return counts


def describe(job: Job, sub: Submission | None, state: JobState | None) -> tuple[str, str]:
    """A run's label and what explains it."""
    where = f"{sub.cluster} job {sub.job}" if sub else ""
    if job.action == "wait" and state is not None:
        step = _last_step(job)
        return state.state, f"{where} {state.detail or state.state}" + (f", step {step}" if step else "")
    summary = job.run.read_summary() if job.run.has_summary() else {}
    if job.action == "skip":
        if summary.get("status") == "failed":
            return "failed", f"{summary.get('reason')} (--retry-failed starts it again)"
        if state is not None and state.outcome == "failed":
            return "failed", f"{where}: {state.reason} (--retry-failed submits it again)"
        return "done", ""
    ended = f" ({where} ended{', ' + state.detail if state and state.detail else ''})" if sub else ""
    if job.action == "resume":
        return "stopped", f"at step {_last_step(job) or '?'}; a rerun resumes it{ended}"
    if job.action == "eval":
        return "to evaluate", job.note
    return "to run", ("not submitted" if sub is None else f"no checkpoint yet; a rerun starts it{ended}")


def _last_step(job: Job) -> int | None:
    records = job.run.records("metrics") if job.run.path.exists() else []
    return records[-1].get("step") if records else None
