"""`gan-bench sweep`: a thin wrapper over the sweep package (a gan_bench.cli plug-in)."""
from __future__ import annotations

import argparse
import signal
import sys

from gan_bench import args
from gan_bench.errors import GanBenchError, Interrupted
from gan_bench.plugins import Plugin


def register(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("sweep", help="tune every config of a sweep file with the same search (Optuna), then "
                                     "its report")
    s.add_argument("sweep", type=args.path, help="sweep YAML, e.g. configs/sweeps/quickdraw_mnist_28.yaml")
    s.add_argument("--jobs", type=int, default=1, help="workers on this machine sharing the studies (default 1)")
    s.add_argument("--executor", default="local", metavar="NAME",
                   help="where the workers run: local (this machine, --jobs) or slurm (a SLURM job array through "
                        "submitit, --workers; the suite's executor)")
    s.add_argument("--workers", type=int, metavar="N", help="--executor slurm: the array's tasks, one worker each "
                                                            "(default 1)")
    s.add_argument("--slurm", metavar="KEY=VALUE,...", help="--executor slurm's options, as for `gan-bench suite` "
                                                            "(e.g. partition=cpu,cpus_per_task=4,timeout_min=240)")
    s.add_argument("--wait", action="store_true", help="--executor slurm: wait for the workers, then the report")
    s.add_argument("--out", type=args.path, help="sweep folder (default: the file's `out`, or results/sweeps/<name>)")
    s.add_argument("--storage", metavar="URL",
                   help="the studies' database: any URL Optuna takes (postgresql://...), or journal:PATH for a "
                        "journal file on a shared file system (default: the sweep folder's study.db or "
                        "journal.log; a new sweep's is SQLite, or the journal with --executor slurm)")
    s.add_argument("--report", action="store_true", help="write the report of the trials so far; train nothing")
    s.add_argument("--confirm", type=int, metavar="N", help="train each config's best trial with N fresh seeds, "
                                                            "then rank those runs")
    s.add_argument("--dashboard", action="store_true", help="serve optuna-dashboard on the sweep's studies "
                                                            "(pip install -e '.[dashboard]')")
    s.add_argument("--port", type=int, default=8080, help="--dashboard's port (default 8080)")
    s.set_defaults(func=cmd_sweep)


def cmd_sweep(a: argparse.Namespace) -> int:
    from gan_bench.sweep import SweepFolder, load_sweep, prepare, run_sweep
    from gan_bench.sweep.cluster import submit_workers
    from gan_bench.sweep.confirm import confirm
    from gan_bench.sweep.plan import DataCache, bases
    from gan_bench.sweep.records import has_records, rebuild
    from gan_bench.sweep.report import write_report

    acting = [f for f, on in (("--report", a.report), ("--confirm", a.confirm is not None),
                              ("--dashboard", a.dashboard)) if on]
    if len(acting) > 1:
        raise GanBenchError(f"{' and '.join(acting)} are different commands; give one of them")
    if a.jobs < 1:
        raise GanBenchError(f"--jobs must be at least 1, got {a.jobs}")
    if a.confirm is not None and a.confirm < 1:
        raise GanBenchError(f"--confirm must be at least 1 (fresh seeds per best config), got {a.confirm}")
    if a.workers is not None and a.workers < 1:
        raise GanBenchError(f"--workers must be at least 1 (the SLURM array's tasks), got {a.workers}")
    cluster = _check_executor(a, acting)
    sweep = load_sweep(a.sweep)
    sweep.plugins += [Plugin(p) for p in a.plugin]
    if a.out is not None:
        sweep.out = str(a.out)
    folder = SweepFolder(sweep.out_path)
    if a.dashboard:
        return _dashboard(a.storage, folder, a.port)
    from_records = (a.report or a.confirm is not None) and a.storage is None and folder.stored() is None
    if from_records and not has_records(sweep, folder):
        raise GanBenchError(f"sweep {sweep.name} has not run yet (no {folder.path / folder.STUDY_DB}, nor trials "
                            f"in {folder.path}); run `gan-bench sweep {a.sweep}` first")
    try:
        if a.report or a.confirm is not None:
            data = DataCache()  # loaded once for the checks and the confirming runs
            if from_records:  # a clone of a published sweep: its studies rebuilt from the trials' records
                built = bases(sweep)
                storage = rebuild(sweep, built, folder)
            else:
                built, storage = prepare(sweep, folder, a.storage, data=data)
            if a.confirm is not None:
                confirm(sweep, built, storage, folder, a.confirm, data=data)
            write_report(sweep, built, storage, folder)
            return 0
        if cluster:
            progress = submit_workers(sweep, folder, sweep_path=str(a.sweep), storage_url=a.storage,
                                      workers=a.workers or 1, options=a.slurm, plugins=list(a.plugin), wait=a.wait)
        else:
            progress = run_sweep(sweep, folder=folder, storage_url=a.storage, jobs=a.jobs)
    except (Interrupted, KeyboardInterrupt) as e:
        print("gan-bench: stopped waiting; the SLURM workers go on (`--report` once they are done)" if cluster else
              "gan-bench: sweep interrupted; the trials in flight saved a checkpoint and are queued again. Rerun the "
              "same command to continue.", file=sys.stderr)
        return 128 + getattr(e, "signum", signal.SIGINT)
    print("sweep: " + "; ".join(f"{n}: " + ", ".join(f"{v} {k}" for k, v in p.items() if v)
                                for n, p in progress.items()))
    return 0


def _check_executor(a: argparse.Namespace, acting: list[str]) -> bool:
    """The flags of --executor and their combinations; True for a SLURM array of workers."""
    from gan_bench.suite import EXECUTORS

    EXECUTORS.entry(a.executor)  # an unknown name lists the valid ones
    if a.executor not in ("local", "slurm"):
        raise GanBenchError(f"--executor {a.executor} runs a suite's runs, not a sweep's workers; a sweep's run here "
                            f"(local, --jobs N) or as a SLURM job array (slurm, --workers N)")
    if a.slurm is not None and a.executor != "slurm":
        raise GanBenchError("--slurm sets options of --executor slurm; add --executor slurm")
    if a.executor == "local":
        given = [f for f, on in (("--workers", a.workers is not None), ("--wait", a.wait)) if on]
        if given:
            raise GanBenchError(f"{' and '.join(given)} go with --executor slurm (the workers of a SLURM job array); "
                                f"on this machine use --jobs N")
        return False
    if a.jobs != 1:
        raise GanBenchError("--jobs shares out this machine; with --executor slurm each worker is a task of the "
                            "job array: give --workers N")
    if acting:
        raise GanBenchError(f"{acting[0]} runs on this machine, not as SLURM workers; drop --executor slurm")
    return True


def _dashboard(url, folder, port: int) -> int:
    """optuna-dashboard on the sweep's storage, in this process, until Ctrl-C."""
    from gan_bench.sweep.study import open_storage

    try:
        from optuna_dashboard import run_server
    except ImportError:
        raise GanBenchError("--dashboard needs optuna-dashboard: pip install -e \".[dashboard]\" (or run "
                            f"`optuna-dashboard {url or folder.storage_url}` where it is installed)") from None
    url = url if url is not None else folder.stored()
    if url is None:
        raise GanBenchError(f"no study in {folder.path} yet; start the sweep first (the dashboard follows it live)")
    storage = open_storage(url, folder)
    print(f"optuna-dashboard on http://127.0.0.1:{port}/ ({url}); Ctrl-C stops it")
    try:
        run_server(storage, host="127.0.0.1", port=port)
    except KeyboardInterrupt:
        return 0
    return 0
