"""`gan-bench suite`: a thin wrapper over the suite package (a gan_bench.cli plug-in)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from gan_bench.errors import Interrupted
from gan_bench.plugins import Plugin


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("suite", help="run a suite of configs x seeds (resumable), then the tables and gallery")
    s.add_argument("suite", type=Path, help="suite YAML, e.g. configs/suites/paper.yaml (run from the repo root)")
    s.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (default 1)")
    s.add_argument("--gpus", help="spread the runs over these GPUs, one run per GPU at a time, e.g. 0,1,2,3")
    s.add_argument("--quick", action="store_true",
                   help="smoke budgets (a few steps, little data) into <out>-quick, minutes on a CPU")
    s.add_argument("--out", type=Path, help="results folder (default: the suite's `out`, or results/<name>)")
    s.add_argument("--metric", help="pivot column of the final table (default: the suite's first eval metric)")
    s.add_argument("--dry-run", action="store_true", help="check every config, print the plan and exit")
    s.add_argument("--no-report", action="store_true", help="skip the tables and gallery at the end")
    s.set_defaults(func=cmd_suite)


def cmd_suite(a: argparse.Namespace) -> int:
    from gan_bench.suite import load_suite, parse_gpus, plan, run_suite, suite_out

    gpus = parse_gpus(a.gpus) if a.gpus is not None else None
    suite = load_suite(a.suite)
    suite.plugins += [Plugin(p) for p in a.plugin]  # recorded in every run's config, like the suite file's own
    out = suite_out(suite, quick=a.quick, out=a.out)
    if a.dry_run:
        jobs = plan(suite, out=out, quick=a.quick)
        for n, job in enumerate(jobs, 1):
            print(f"[{n}/{len(jobs)}] {job.action:6s} {job.run_dir}" + (f"  ({job.note})" if job.note else ""))
        return 0
    try:
        counts = run_suite(suite, out=out, quick=a.quick, jobs=a.jobs, report=not a.no_report, metric=a.metric,
                           gpus=gpus)
    except (Interrupted, KeyboardInterrupt) as e:
        print("gan-bench: suite interrupted; running jobs saved checkpoints. Rerun the same command to resume "
              "(finished runs are skipped).", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    print("suite done: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return 1 if counts["failed"] else 0
