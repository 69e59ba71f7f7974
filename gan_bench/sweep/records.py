"""A sweep's studies rebuilt from its trials' records, where its storage is not there: for its report, and
to continue it (a clone of a published sweep, on another machine).

A published sweep keeps in git what a suite keeps (results/sweeps/<name>/: each trial's trial.json beside
its runs' config.yaml, summary.json and records; the report's tables and the best configs), never study.db
or journal.log: a binary database that changes with every trial diffs and merges badly, and a cluster's
sweep has none. trial.json holds what a study holds of a trial (its number and its attempts' numbers,
sampled values, state, objective, why it failed) and the runs' summaries its training seconds, so
`gan-bench sweep FILE --report` (and --confirm, which reads the best trials) rebuilds each study in memory
from them and writes the same tables, and `gan-bench sweep FILE` rebuilds it into the real storage and goes
on: the numbers come back as Optuna gave them (a new trial's number, its folder's name and its seeded draws
are those the sweep would have had), and a trial in flight when the records were taken (RUNNING or
WAITING; its checkpoints are not in git) is queued again with its values, as a trial whose worker died is,
and trained afresh.
"""
from __future__ import annotations

import math
from typing import Any, Optional

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from gan_bench.errors import GanBenchError
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base
from gan_bench.sweep.study import REASON, RESTORING, UNRECORDED, open_study, study_name
from gan_bench.sweep.trial import objective_lines

FINISHED = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED, "FAIL": TrialState.FAIL}
IN_FLIGHT = ("RUNNING", "WAITING")  # taken or queued again when the records were taken


def has_records(sweep: Sweep, folder: SweepFolder) -> bool:
    return any(folder.trial_numbers(c.name) for c in sweep.configs)


def rebuild(sweep: Sweep, built: list[Base], folder: SweepFolder) -> optuna.storages.InMemoryStorage:
    """Each base's study, in memory, from the trial.json files under folder (and its runs' summaries). A
    record made for another objective or budget, or a value outside the file's space, is a GanBenchError:
    the file changed since the trials ran."""
    storage = optuna.storages.InMemoryStorage()
    for b in built:
        restore(sweep, b, storage, planned(sweep, b, folder), where=str(folder))
    return storage


def restore(sweep: Sweep, b: Base, storage: optuna.storages.BaseStorage, trials: list[FrozenTrial], *,
            where: str) -> None:
    """Base b's study made in storage with `trials` (planned()), numbered 0, 1, ... in their order. A study
    left with some of them by a rebuild cut short (its RESTORING mark still set) is made again."""
    study = open_study(sweep, b, storage, where=where)
    if study.get_trials(deepcopy=False):
        optuna.delete_study(study_name=study.study_name, storage=storage)
        study = open_study(sweep, b, storage, where=where)
    study.set_user_attr(RESTORING, True)
    for t in trials:
        study.add_trial(t)
    study.set_user_attr(RESTORING, False)


def planned(sweep: Sweep, b: Base, folder: SweepFolder) -> list[FrozenTrial]:
    """Base b's trials as its records tell them, in the order of the numbers Optuna gave them: for each number
    k up to the largest attempt on record, the attempt that held it (a slot's last attempt as recorded,
    an earlier one as a failed retry of its slot), then the trials in flight queued again. Checks every
    record first and writes nothing: a GanBenchError names a record that does not fit the file."""
    held: dict[int, FrozenTrial] = {}
    queued: list[FrozenTrial] = []
    for n in folder.trial_numbers(b.name):
        r, where = folder.read_trial(b.name, n), folder.trial_dir(b.name, n) / folder.TRIAL
        last = _trial(sweep, b, folder, n, r)
        attempts = _attempts(where, n, r)
        for k in attempts:
            if k in held:
                raise GanBenchError(f"{where} names attempt {k}, which trial {held[k].system_attrs['failed_trial']}'s "
                                    f"record names too; restore the records as the sweep wrote them")

        def attempt(j: int) -> dict[str, Any]:  # attempt j's system attributes, as the retries' callback sets them
            return {"failed_trial": n, "retry_history": attempts[:j]} if j else {"failed_trial": n}

        for j, k in enumerate(attempts[:-1]):
            held[k] = _copy(last, state=TrialState.FAIL, user_attrs={REASON: "retried"}, system_attrs=attempt(j))
        if last.state == TrialState.WAITING:  # as RetryHeartbeatStaleTrialCallback queues a trial whose worker died
            held[attempts[-1]] = _copy(last, state=TrialState.FAIL, system_attrs=attempt(len(attempts) - 1),
                                       user_attrs={REASON: "retried: in flight when its records were taken"})
            queued.append(_copy(last, system_attrs=attempt(len(attempts))))
        else:
            held[attempts[-1]] = _copy(last, system_attrs=attempt(len(attempts) - 1))
    # A number no record names was an attempt whose record was never written (killed before it, or its retry
    # not yet taken) or lost. It keeps its place, so the numbers after it (folders, seeded draws) stay as
    # they were, as a failed trial marked UNRECORDED that no slot counts (study.slots): tying it to a slot
    # would claim an attempt of that trial nothing shows.
    gap = create_trial(state=TrialState.FAIL, user_attrs={REASON: "no record of this attempt was kept"},
                       system_attrs={UNRECORDED: True})
    return [held.get(k, gap) for k in range(max(held, default=-1) + 1)] + queued


def _attempts(where: Any, n: int, r: dict[str, Any]) -> list[int]:
    """The numbers of trial n's attempts (the first is n); records without them had one attempt."""
    attempts = r.get("attempts") or [n]
    if not (isinstance(attempts, list) and all(isinstance(k, int) for k in attempts) and attempts[0] == n
            and attempts == sorted(set(attempts))):
        raise GanBenchError(f"{where} has attempts {attempts!r}, not increasing trial numbers from its own ({n}); "
                            f"restore it as the sweep wrote it")
    return attempts


def _copy(t: FrozenTrial, *, state: Optional[TrialState] = None, user_attrs: Optional[dict[str, Any]] = None,
          system_attrs: dict[str, Any]) -> FrozenTrial:
    """t again with these system attributes (and state and user attributes): a failed copy reported nothing."""
    state = state or t.state
    return create_trial(state=state, value=t.value if state == TrialState.COMPLETE else None, params=t.params,
                        distributions=t.distributions, user_attrs=t.user_attrs if user_attrs is None else user_attrs,
                        system_attrs=system_attrs, intermediate_values=t.intermediate_values if state == t.state
                        else None)


def _trial(sweep: Sweep, b: Base, folder: SweepFolder, number: int, r: dict[str, Any]) -> FrozenTrial:
    """Trial `number`'s last attempt as its record tells it (a trial in flight: WAITING, to run again)."""
    where = folder.trial_dir(b.name, number) / folder.TRIAL
    if r.get("study") not in (None, study_name(sweep, b)):  # another study's trials: its draws, not this one's
        raise GanBenchError(f"{where} was made by the study {r['study']!r}, but {sweep.file} names its study "
                            f"{study_name(sweep, b)!r}; put `name:` back, or give the new study a new `out`")
    for key, now in (("objective", sweep.objective), ("budget", sweep.budget.as_dict())):
        if r.get(key) != now:
            raise GanBenchError(f"{where} was made with {key} {r.get(key)!r}, but {sweep.file} says {now!r}; put "
                                f"the file back as the trials ran to rebuild their study")
    if r.get("state") not in (*FINISHED, *IN_FLIGHT):
        raise GanBenchError(f"{where} has state {r.get('state')!r}, not one of {', '.join((*FINISHED, *IN_FLIGHT))}; "
                            f"restore it as the sweep wrote it")
    state, params = FINISHED.get(r["state"], TrialState.WAITING), r.get("params") or {}
    spaces = {p.key: p.distribution() for p in b.params}
    unknown = sorted(set(params) - set(spaces))
    if unknown:
        raise GanBenchError(f"{where} searched {unknown[0]}, which {sweep.file} no longer searches for config "
                            f"{b.name!r}; put the key back to rebuild the study")
    attrs: dict[str, Any] = {REASON: r.get(REASON)} if r.get(REASON) and state != TrialState.WAITING else {}
    if state == TrialState.COMPLETE:
        attrs["train_seconds"] = sum(_train_seconds(folder, b, number, seed) for seed in sweep.seeds)
    try:
        return create_trial(state=state, value=r.get("value") if state == TrialState.COMPLETE else None,
                            params=params, distributions={k: spaces[k] for k in params}, user_attrs=attrs,
                            system_attrs={"failed_trial": number},
                            intermediate_values=_reported(sweep, folder, b, number, state))
    except ValueError as e:  # a value outside the range the file now gives
        raise GanBenchError(f"{where} does not fit {sweep.file}'s space ({e}); put the file back as the "
                            f"trials ran to rebuild their study") from None


def _reported(sweep: Sweep, folder: SweepFolder, b: Base, number: int,
              state: TrialState) -> Optional[dict[int, float]]:
    """What the trial reported to the pruner (the first seed's in-training evaluations, numbered 1, 2, ... as
    trial.py's pruning hook numbers them), which the pruner compares later trials against."""
    if sweep.pruner is None or state not in (TrialState.COMPLETE, TrialState.PRUNED):
        return None
    lines = objective_lines(folder.trial_run(b.name, number, sweep.seeds[0]), sweep.objective)
    return {i: v for i, (_, v) in enumerate(lines, 1) if math.isfinite(v)} or None


def _train_seconds(folder: SweepFolder, b: Base, number: int, seed: int) -> float:
    run = folder.trial_run(b.name, number, seed)
    if not run.has_summary():
        raise GanBenchError(f"{run} has no summary.json, which the report reads the trial's training time from; "
                            f"restore it (git keeps it beside trial.json)")
    return float(run.read_summary().get("train_seconds") or 0.0)
