"""`gan-bench suite`: a thin wrapper over the suite package (a gan_bench.cli plug-in)."""
from __future__ import annotations

import argparse
import signal
import sys

from gan_bench import args
from gan_bench.errors import GanBenchError, Interrupted
from gan_bench.plugins import Plugin


def register(sub: argparse._SubParsersAction) -> None:
    from gan_bench.suite import EXECUTORS

    s = sub.add_parser("suite", help="run a suite of configs x seeds (resumable), then the tables and gallery")
    s.add_argument("suite", type=args.path, help="suite YAML, e.g. configs/suites/paper.yaml (run from the repo root)")
    s.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (default 1)")
    s.add_argument("--gpus", help="spread the runs over these GPUs, one run per GPU at a time, e.g. 0,1,2,3")
    s.add_argument("--executor", default="local", metavar="NAME",
                   help="where the runs train: " + "; ".join(f"{e.name}: {e.info.description}" for e in EXECUTORS))
    for e in EXECUTORS:  # each executor with options gets its own --NAME KEY=VALUE,... flag
        if e.info.options is not None:
            s.add_argument(f"--{e.name}", metavar="KEY=VALUE,...", dest=f"options_{e.name}",
                           help=f"options of --executor {e.name}, e.g. {e.info.example}")
    s.add_argument("--status", action="store_true", help="where each run stands (queued, running, done, failed); "
                                                         "nothing runs")
    s.add_argument("--wait", action="store_true", help="with a cluster executor: wait for the jobs, then the tables")
    s.add_argument("--retry-failed", action="store_true", help="run (or submit) the runs that failed again, afresh")
    s.add_argument("--quick", action="store_true",
                   help="smoke budgets (a few steps, little data) into <out>-quick, minutes on a CPU")
    s.add_argument("--out", type=args.path, help="results folder (default: the suite's `out`, or results/<name>)")
    s.add_argument("--metric", help="pivot column of the final table (default: the suite's first eval metric)")
    s.add_argument("--dry-run", action="store_true",
                   help="check every config, print the plan (and a cluster job's script) and exit")
    s.add_argument("--no-report", action="store_true", help="skip the tables and gallery at the end")
    s.set_defaults(func=cmd_suite)


def cmd_suite(a: argparse.Namespace) -> int:
    from gan_bench.suite import EXECUTORS, load_suite, parse_gpus, parse_options, run_suite, suite_out, suite_status

    EXECUTORS.entry(a.executor)  # an unknown name lists the valid ones
    given = {k[len("options_"):]: v for k, v in vars(a).items() if k.startswith("options_") and v is not None}
    for name, text in given.items():
        if name != a.executor:
            raise GanBenchError(f"--{name} sets options of --executor {name}; add --executor {name}")
        parse_options(name, text)  # a typo is an error with --status and --dry-run too
    gpus = parse_gpus(a.gpus) if a.gpus is not None else None
    suite = load_suite(a.suite)
    suite.plugins += [Plugin(p) for p in a.plugin]  # recorded in every run's config, like the suite file's own
    out = suite_out(suite, quick=a.quick, out=a.out)
    if a.status:
        # --status reads the run folders and changes nothing: a flag that would act must not pass silently
        acting = [f for f, on in (("--dry-run", a.dry_run), ("--retry-failed", a.retry_failed), ("--wait", a.wait),
                                  ("--no-report", a.no_report), ("--metric", a.metric)) if on]
        if acting:
            raise GanBenchError(f"--status only reports where each run stands, so {', '.join(acting)} would do "
                                f"nothing; drop {'it' if len(acting) == 1 else 'them'} or --status")
        suite_status(suite, out=out, quick=a.quick)
        return 0
    try:
        counts = run_suite(suite, out=out, quick=a.quick, jobs=a.jobs, report=not a.no_report, metric=a.metric,
                           gpus=gpus, executor=a.executor, options=given.get(a.executor), wait=a.wait,
                           retry_failed=a.retry_failed, dry_run=a.dry_run)
    except (Interrupted, KeyboardInterrupt) as e:
        print("gan-bench: suite interrupted; runs training here saved a checkpoint (submitted jobs go on). Rerun the "
              "same command to continue (finished runs are skipped).", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    if a.dry_run:
        return 0
    pending = counts.get("submitted", 0) + counts.get("waiting", 0)
    print(("suite: " if pending else "suite done: ") + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    return 1 if counts["failed"] else 0
