"""A sweep's studies rebuilt from its trials' records, for its report where its storage is not there.

A published sweep keeps in git what a suite keeps (results/sweeps/<name>/: each trial's trial.json beside
its runs' config.yaml, summary.json and records; the report's tables and the best configs), never study.db
or journal.log: a binary database that changes with every trial diffs and merges badly, and a cluster's
sweep has none. trial.json holds what the report reads of a trial (its number, sampled values, state,
objective, why it failed) and the runs' summaries its training seconds, so `gan-bench sweep FILE --report`
(and --confirm, which reads the best trials) rebuilds each study in memory from them and writes the same
tables. Trials still running or queued when the records were taken are left out: the report counts them
as still to run, as it would have.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from gan_bench.errors import GanBenchError
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, fingerprint
from gan_bench.sweep.study import FINGERPRINT, REASON, direction, study_name

FINISHED = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}


def has_records(sweep: Sweep, folder: SweepFolder) -> bool:
    return any(folder.trial_numbers(c.name) for c in sweep.configs)


def rebuild(sweep: Sweep, built: list[Base], folder: SweepFolder) -> optuna.storages.InMemoryStorage:
    """Each base's study, in memory, from the trial.json files under folder (and its runs' summaries). A
    record made for another objective or budget, or a value outside the file's space, is a GanBenchError:
    the file changed since the trials ran."""
    storage = optuna.storages.InMemoryStorage()
    for b in built:
        records = [folder.read_trial(b.name, n) for n in folder.trial_numbers(b.name)]
        finished = [r for r in records if r.get("state") in FINISHED]
        study = optuna.create_study(storage=storage, study_name=study_name(sweep, b), direction=direction(sweep))
        study.set_user_attr(FINGERPRINT, fingerprint(sweep, b))
        # in the order the study numbered their last attempts, so the trials come back in the same order
        for r in sorted(finished, key=lambda r: (r.get("attempts") or [r.get("trial", 0)])[-1]):
            study.add_trial(_trial(sweep, b, folder, r))
    return storage


def _trial(sweep: Sweep, b: Base, folder: SweepFolder, r: dict[str, Any]) -> optuna.trial.FrozenTrial:
    number = int(r["trial"])
    where = folder.trial_dir(b.name, number) / folder.TRIAL
    for key, now in (("objective", sweep.objective), ("budget", sweep.budget.as_dict())):
        if r.get(key) != now:
            raise GanBenchError(f"{where} was made with {key} {r.get(key)!r}, but {sweep.file} says {now!r}; put "
                                f"the file back as the trials ran to rebuild their report")
    state, params = FINISHED[r["state"]], r.get("params") or {}
    spaces = {p.key: p.distribution() for p in b.params}
    unknown = sorted(set(params) - set(spaces))
    if unknown:
        raise GanBenchError(f"{where} searched {unknown[0]}, which {sweep.file} no longer searches for config "
                            f"{b.name!r}; put the key back to rebuild the report")
    attrs: dict[str, Any] = {REASON: r.get(REASON)} if r.get(REASON) else {}
    if state == TrialState.COMPLETE:
        attrs["train_seconds"] = sum(_train_seconds(folder, b, number, seed) for seed in sweep.seeds)
    try:
        return optuna.trial.create_trial(state=state, value=r.get("value") if state == TrialState.COMPLETE else None,
                                         params=params, distributions={k: spaces[k] for k in params},
                                         user_attrs=attrs, system_attrs={"failed_trial": number})
    except ValueError as e:  # a value outside the range the file now gives
        raise GanBenchError(f"{where} does not fit {sweep.file}'s space ({e}); put the file back as the "
                            f"trials ran to rebuild their report") from None


def _train_seconds(folder: SweepFolder, b: Base, number: int, seed: int) -> float:
    run = folder.trial_run(b.name, number, seed)
    if not run.has_summary():
        raise GanBenchError(f"{run} has no summary.json, which the report reads the trial's training time from; "
                            f"restore it (git keeps it beside trial.json)")
    return float(run.read_summary().get("train_seconds") or 0.0)
