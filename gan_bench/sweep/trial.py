"""One trial: values drawn by the study, a run folder per seed trained at the sweep's budget, the objective
read from the run's own evaluation records at its last step, told to the study.

A trial's run folders are ordinary runs (<sweep>/<config>/trial-0003/seed0/): config.yaml holds the
sampled values (the trial's number is in the run's name, <config>-t0003, and in trial.json beside the
seed folders, since no config key holds it). A retried trial (its worker died) resumes each folder from
its checkpoint; a folder that already completed is read, not trained again.
"""
from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
from optuna.trial import TrialState

from gan_bench.config import Config
from gan_bench.data import Splits
from gan_bench.errors import GanBenchError, Interrupted, TrainingFailed
from gan_bench.metrics.registry import METRICS
from gan_bench.run import RunFolder
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, DataCache, budget_steps, trial_config
from gan_bench.sweep.study import REASON, Heartbeat, requeue, slot, study_name
from gan_bench.train.loop import train

# on_eval(step) -> a reason to stop the run here (the pruner's), or None
OnEval = Callable[[int], Optional[str]]


def run_trial(sweep: Sweep, base: Base, study: optuna.Study, trial: optuna.Trial, folder: SweepFolder,
              data: DataCache, *, say: Callable[[str], None] = print) -> str:
    """Train and tell one trial taken from the study; returns its final state's name. A config that cannot
    train, or fails, is a failed trial with its reason in the study; a signal requeues the trial (its
    checkpoints kept) and raises Interrupted."""
    frozen = study._storage.get_trial(trial._trial_id)  # the retry's system attrs (no public getter on Trial)
    number, attempts = slot(frozen), [*frozen.system_attrs.get("retry_history", []), trial.number]
    record: dict[str, Any] = {"sweep": sweep.name, "file": sweep.file, "study": study_name(sweep, base),
                              "config": base.name, "trial": number, "attempts": attempts,
                              "objective": sweep.objective, "budget": sweep.budget.as_dict()}
    with Heartbeat(trial):
        try:
            values = {p.key: p.suggest(trial) for p in base.params}
            record["params"] = values
            folder.write_trial(base.name, number, {**record, "state": "RUNNING"})
            value, extra = _train_seeds(sweep, base, trial, folder, data, number, values)
        except optuna.TrialPruned as e:
            state, value, reason = TrialState.PRUNED, None, str(e)
        except (Interrupted, KeyboardInterrupt):
            requeue(study, trial, "interrupted")
            folder.write_trial(base.name, number, {**record, "state": "WAITING", REASON: "interrupted; rerun the "
                                                   "sweep to resume it"})
            raise
        except (GanBenchError, TrainingFailed) as e:
            state, value, reason = TrialState.FAIL, None, str(e)
        except Exception as e:  # noqa: BLE001  a sampled config that breaks the model (a shape, a dtype): this trial fails, not the sweep
            state, value, reason = TrialState.FAIL, None, f"{type(e).__name__}: {e}"
        else:
            state, reason = TrialState.COMPLETE, None
            for k, v in extra.items():
                trial.set_user_attr(k, v)
    if reason:
        trial.set_user_attr(REASON, reason)
    study.tell(trial, value, state=None if state == TrialState.COMPLETE else state)
    folder.write_trial(base.name, number, {**record, "state": state.name, "value": value, REASON: reason})
    shown = f"{sweep.objective} {value:.4g}" if value is not None else f"{state.name.lower()}: {reason}"
    say(f"{base.name} trial {number}: {shown}  ({', '.join(f'{k}={_short(v)}' for k, v in record.get('params', {}).items())})")
    return state.name


def _short(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _train_seeds(sweep: Sweep, base: Base, trial: optuna.Trial, folder: SweepFolder, data: DataCache,
                 number: int, values: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """Each seed's run trained (or resumed, or read), the objective's mean over the seeds and what the
    study keeps beside it (the recorded metrics' means, training seconds). The pruner reads the first seed."""
    scores: dict[str, list[float]] = {}
    seconds = 0.0
    for i, seed in enumerate(sweep.seeds):
        probe = trial_config(sweep, base, values, seed=seed, steps=1)
        splits = data.get(probe)
        cfg = trial_config(sweep, base, values, seed=seed, steps=budget_steps(sweep, probe, splits),
                           name=f"{base.name}-t{number:04d}")
        run = folder.trial_run(base.name, number, seed)
        hook = _pruning(sweep, trial, run) if i == 0 and sweep.pruner else None
        pruned = train_or_resume(cfg, run, splits, on_eval=hook)
        if pruned:
            raise optuna.TrialPruned(pruned)
        summary = run.read_summary()
        seconds += float(summary.get("train_seconds") or 0.0)
        for metric in dict.fromkeys([sweep.objective, *base.record]):
            scores.setdefault(metric, []).append(final_value(run, metric, step=int(summary["steps"])))
    extra = {"train_seconds": seconds, **{f"mean_{m}": statistics.fmean(v) for m, v in scores.items()}}
    return statistics.fmean(scores[sweep.objective]), extra


def train_or_resume(cfg: Config, run: RunFolder, data: Splits, *, on_eval: Optional[OnEval] = None) -> Optional[str]:
    """Bring one run folder to the end of its budget: nothing to do when it completed with this config,
    resumed from its checkpoint when it has one of this config, else trained afresh. Returns the reason it
    was stopped early by on_eval (pruned), or None."""
    same = run.is_run() and _hash(run) == cfg.hash()
    if same and run.has_summary() and run.read_summary().get("status") == "completed":
        return _pruned_reason(run.read_summary())
    if same and run.has_checkpoint():
        return train_run(cfg, run_dir=run.path, resume=True, data=data, on_eval=on_eval)
    run.discard()  # a first attempt killed before its first checkpoint, or of other values
    return train_run(cfg, run_dir=run.path, resume=False, data=data, on_eval=on_eval)


PRUNED = "pruned by the sweep's pruner"


def _pruned_reason(summary: dict[str, Any]) -> Optional[str]:
    reason = summary.get("reason") or ""
    return reason if reason.startswith(PRUNED) else None


def _hash(run: RunFolder) -> Optional[str]:
    try:
        return run.read_config().hash()
    except GanBenchError:
        return None


def train_run(cfg: Config, *, run_dir: Path, resume: bool, data: Splits,
              on_eval: Optional[OnEval] = None) -> Optional[str]:
    """train.loop.train() with the data loaded already (a worker loads each data set once), asking on_eval
    after each in-training evaluation; returns the reason on_eval stopped the run, or None. Raises
    TrainingFailed and Interrupted as train() does."""
    where = {"run_dir": None, "resume": run_dir} if resume else {"run_dir": run_dir, "resume": None}
    stopped: list[str] = []

    def asked(step: int) -> Optional[str]:
        reason = on_eval(step) if on_eval is not None else None
        if reason:
            stopped.append(reason)
        return reason

    train(cfg, data=data, on_eval=asked if on_eval is not None else None, **where)
    return stopped[-1] if stopped else None


def _pruning(sweep: Sweep, trial: optuna.Trial, run: RunFolder) -> OnEval:
    """Report each in-training evaluation of the objective to the study (as evaluation 1, 2, ...) and stop
    the run where the pruner says so."""
    def on_eval(step: int) -> Optional[str]:
        lines = objective_lines(run, sweep.objective)
        value = lines[-1][1] if lines and lines[-1][0] == step else None
        if value is None or not math.isfinite(value):
            return None
        trial.report(value, step=len(lines))
        if trial.should_prune():
            return (f"{PRUNED} ({sweep.pruner.name}) at evaluation {len(lines)} of {sweep.pruner.evaluations} "
                    f"(step {step}, {sweep.objective} {value:.4g})")
        return None
    return on_eval


def objective_lines(run: RunFolder, metric: str) -> list[tuple[int, float]]:
    """(step, headline value) of the in-training evaluations of metric, of the G a run shows (the average
    with train.ema)."""
    key = METRICS.info(metric).key
    return [(int(r["step"]), float(r[key])) for r in run.records("eval")
            if r.get("metric") == metric and r.get("checkpoint") == "training" and r.get("g") in (None, "ema")
            and isinstance(r.get(key), (int, float))]


def final_value(run: RunFolder, metric: str, *, step: int) -> float:
    """The metric at the run's last step (the sweep's budget), from its evaluation records."""
    at = [v for s, v in objective_lines(run, metric) if s == step]
    if not at:
        raise TrainingFailed(f"{run} has no {metric} evaluation at its last step ({step})")
    return at[-1]
