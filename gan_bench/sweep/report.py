"""A sweep's report, written into <sweep>/report/ from its studies (never from console output):

  README.md        per config: trials complete, pruned (which), failed (why); the best trial; the expected
                   best at 1, 4 and N trials; the keys' importance (Optuna's PED-ANOVA)
  best_of_k.png    Lucic et al.'s curve per config, against k and against training minutes (report/tuning.py)
  objective.png    the objective over the trials of each config (the sensitivity to the hyperparameters)
  slice_<config>.png   Optuna's slice plot of the config's two most important keys
and <sweep>/best/<config>.yaml, the best trial of each config as a ready config.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import optuna
import pandas as pd
import yaml
from optuna.trial import FrozenTrial, TrialState

from gan_bench.atomic import atomic_path
from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import METRICS
from gan_bench.report.format import to_markdown
from gan_bench.report.tuning import expected_best
from gan_bench.sweep import figures
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, sampled_deltas
from gan_bench.sweep.study import REASON, counted, open_study, slot

MARKS = (1, 4)  # the k the README quotes beside N (Lucic et al. read their curves there)


@dataclass
class StudyView:
    """What the report knows of one config's study."""

    base: Base
    study: optuna.Study
    trials: list[FrozenTrial]                       # the counted slots' latest attempts
    complete: list[FrozenTrial] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.complete = [t for t in self.trials if t.state == TrialState.COMPLETE and t.value is not None]

    def of(self, state: TrialState) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == state]


def views(sweep: Sweep, built: list[Base], storage: Any) -> list[StudyView]:
    out = []
    for b in built:
        study = open_study(sweep, b, storage, where="", create=False)
        if study is not None:
            out.append(StudyView(b, study, counted(study, sweep.trials)))
    return out


def best_trial(view: StudyView, lower: bool) -> Optional[FrozenTrial]:
    if not view.complete:
        return None
    return (min if lower else max)(view.complete, key=lambda t: (t.value, slot(t)))


def write_report(sweep: Sweep, built: list[Base], storage: Any, folder: SweepFolder, *,
                 say: Callable[[str], None] = print) -> Path:
    """The report of every study as it stands (a study in progress is reported with the trials it has)."""
    lower = METRICS.info(sweep.objective).lower_is_better
    vs = views(sweep, built, storage)
    if not any(v.complete for v in vs):
        raise GanBenchError(f"sweep {sweep.name}: no trial has completed yet, so there is nothing to report; run "
                            f"`gan-bench sweep {sweep.file}` first")
    out = folder.report_dir
    curves = {v.base.name: expected_best([t.value for t in v.complete], metric=sweep.objective,
                                         minutes=[_minutes(t) for t in v.complete]) for v in vs if v.complete}
    figures.best_of_k(curves, out / "best_of_k.png", objective=sweep.objective, lower=lower,
                      note=f"Budget per trial: {sweep.budget.text()}.")
    figures.distribution({v.base.name: [t.value for t in v.complete] for v in vs}, out / "objective.png",
                         objective=sweep.objective, lower=lower)
    sections = []
    for v in vs:
        importance = _importance(v)
        top = [k for k, _ in sorted(importance.items(), key=lambda kv: -kv[1])][:2]
        if top:
            figures.slice_plot(v.study, top, out / f"slice_{v.base.name}.png")
        best = best_trial(v, lower)
        if best is not None:
            folder.write_best_config(v.base.name, best_config(sweep, v.base, best, folder, lower=lower))
        sections.append(_section(sweep, v, curves.get(v.base.name), importance, best, top))
    readme = _readme(sweep, vs, sections, lower)
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(readme)
    say(f"sweep report: {out / 'README.md'}")
    return out / "README.md"


def _minutes(t: FrozenTrial) -> float:
    return float(t.user_attrs.get("train_seconds") or 0.0) / 60.0


def _importance(v: StudyView) -> dict[str, float]:
    """PED-ANOVA importances of the study's keys (no model fitted: it works from a dozen trials), or {}
    where too few trials completed for it."""
    if len(v.complete) < 3:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(
            v.study, evaluator=optuna.importance.PedAnovaImportanceEvaluator()))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return {}


def _section(sweep: Sweep, v: StudyView, curve: Optional[pd.DataFrame], importance: dict[str, float],
             best: Optional[FrozenTrial], top: list[str]) -> str:
    lines = [f"### {v.base.name}", ""]
    pruned, failed = v.of(TrialState.PRUNED), v.of(TrialState.FAIL)
    running = [t for t in v.trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    lines.append(f"{len(v.complete)} of {sweep.trials} trials complete, {len(pruned)} pruned"
                 f"{' (' + ', '.join(str(slot(t)) for t in pruned) + ')' if pruned else ''}, {len(failed)} failed, "
                 f"{len(running) + max(0, sweep.trials - len(v.trials))} still to run.")
    for t in failed:
        lines.append(f"- trial {slot(t)} failed: {t.user_attrs.get(REASON) or 'no reason recorded'}")
    if best is not None:
        values = ", ".join(f"{k}={_fmt(x)}" for k, x in best.params.items())
        lines += ["", f"Best: trial {slot(best)}, {sweep.objective} {best.value:.4g} ({values}); as a config: "
                      f"`best/{v.base.name}.yaml`."]
    if curve is not None:
        marks = [k for k in (*MARKS, len(curve)) if k <= len(curve)]
        cells = [{"k trials": str(k), f"expected best {sweep.objective}": f"{curve['exact'][k - 1]:.4g}",
                  "95 % band": f"{curve['low'][k - 1]:.4g} to {curve['high'][k - 1]:.4g}",
                  "training minutes": f"{curve['minutes'][k - 1]:.1f}"} for k in dict.fromkeys(marks)]
        lines += ["", to_markdown(pd.DataFrame(cells))]
    if importance:
        cells = [{"key": k, "importance (PED-ANOVA)": f"{x:.2f}"} for k, x in importance.items()]
        lines += ["", to_markdown(pd.DataFrame(cells)), "", f"![slice](slice_{v.base.name}.png)" if top else ""]
    return "\n".join(lines)


def _fmt(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)


def _readme(sweep: Sweep, vs: list[StudyView], sections: list[str], lower: bool) -> str:
    head = [f"# Sweep {sweep.name}", "",
            f"From `{sweep.file}`: {len(vs)} configs, {sweep.trials} {sweep.sampler}-sampler trials each "
            f"(seeds {sweep.seeds} per trial), objective {sweep.objective} ({'lower' if lower else 'higher'} is "
            f"better) at {sweep.budget.text()} per trial"
            + (f", {sweep.pruner.name} pruner on {sweep.pruner.evaluations} in-training evaluations" if sweep.pruner
               else "") + ".", "",
            "The expected best of k trials resamples each config's completed trials (report/tuning.py; Lucic et "
            "al. 2018): the comparison of models at an equal tuning budget. The best of N is optimistic; "
            "`gan-bench sweep FILE --confirm N` reruns each best config with fresh seeds and ranks those runs.", "",
            "![best of k](best_of_k.png)", "", "![objective](objective.png)", ""]
    return "\n".join(head + sections) + "\n"


def best_config(sweep: Sweep, base: Base, best: FrozenTrial, folder: SweepFolder, *, lower: bool) -> str:
    """The best trial as a YAML delta on its base config (the file's keys, the sweep's and the config's `set`,
    the trial's values and its budget), headed by a comment naming the sweep and the objective."""
    delta: dict[str, Any] = {}
    for d in base.deltas + sampled_deltas(base, best.params):
        _merge(delta, d)
    run = folder.trial_run(base.name, slot(best), sweep.seeds[0])
    trained = run.read_config_dict().get("train", {})
    # the trial's budget: its steps, or its minutes (with the epochs that let the clock stop it)
    budget = ({"max_steps": trained.get("max_steps")} if trained.get("max_steps") else
              {"max_minutes": trained.get("max_minutes"), "epochs": trained.get("epochs")})
    _merge(delta, {"train": budget})
    if sweep.plugins:  # the code the trials ran with, as a config names it
        delta["plugins"] = list(dict.fromkeys([*delta.get("plugins", []), *(p.source for p in sweep.plugins)]))
    head = (f"# The best of {sweep.trials} trials of sweep {sweep.name} ({sweep.file}) for {base.name}: "
            f"{sweep.objective} {best.value:.4g} ({'lower' if lower else 'higher'} is better), trial {slot(best)}, "
            f"seeds {sweep.seeds}, at {sweep.budget.text()}.\n# A delta on the base config: its keys, the sweep's "
            f"`set` and the trial's values ({', '.join(best.params)}).\n")
    return head + yaml.safe_dump(delta, sort_keys=False)


def _merge(into: dict[str, Any], d: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v)
