"""`gan-bench sweep FILE --confirm N`: each config's best trial trained again with N fresh seeds, since the
best of N trials is optimistically biased (it is the luckiest draw); the table ranks these runs, with the
bootstrap statistics of report/ranking.py, not the trials.

Runs: <sweep>/confirm/<config>/seed<k>/ (ordinary run folders; a rerun skips the completed ones and
resumes the rest). Fresh seeds: the N integers after the largest seed the trials used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pandas as pd

from gan_bench.atomic import atomic_path
from gan_bench.errors import GanBenchError
from gan_bench.metrics.registry import METRICS
from gan_bench.report.ranking import ranking, ranking_markdown
from gan_bench.report.records import display_names
from gan_bench.sweep.file import Sweep
from gan_bench.sweep.folder import SweepFolder
from gan_bench.sweep.plan import Base, DataCache, budget_steps, trial_config
from gan_bench.sweep.report import best_trial, views
from gan_bench.sweep.study import slot
from gan_bench.sweep.trial import final_value, train_or_resume


def fresh_seeds(sweep: Sweep, n: int) -> list[int]:
    return [max(sweep.seeds) + 1 + i for i in range(n)]


def confirm(sweep: Sweep, built: list[Base], storage: Any, folder: SweepFolder, n: int, *,
            data: DataCache | None = None, say: Callable[[str], None] = print) -> Path:
    """Train each config's best trial with n fresh seeds, then write <sweep>/report/confirmed.md (the ranking of
    these runs per data set) and return its path."""
    if n < 1:
        raise GanBenchError(f"--confirm must be at least 1 (seeds per best config), got {n}")
    lower = METRICS.info(sweep.objective).lower_is_better
    data = data or DataCache()
    rows = []
    for v in views(sweep, built, storage):
        best = best_trial(v, lower)
        if best is None:
            say(f"{v.base.name}: no completed trial to confirm")
            continue
        for seed in fresh_seeds(sweep, n):
            probe = trial_config(sweep, v.base, best.params, seed=seed, steps=1)
            splits = data.get(probe)
            cfg = trial_config(sweep, v.base, best.params, seed=seed, steps=budget_steps(sweep, probe, splits),
                               name=f"{v.base.name}-best")
            run = folder.confirm_run(v.base.name, seed)
            say(f"--> {v.base.name}: trial {slot(best)}'s config, seed {seed}")
            train_or_resume(cfg, run, splits)
            value = final_value(run, sweep.objective, step=int(run.read_summary()["steps"]))
            dataset, _ = display_names(cfg.to_dict(), {})
            rows.append({"dataset": dataset, "model": v.base.name, "value": value, "seed": seed, "trial": slot(best)})
    if not rows:
        raise GanBenchError(f"sweep {sweep.name}: no config has a completed trial to confirm; run the sweep first")
    table = pd.DataFrame(rows)
    path = folder.report_dir / "confirmed.md"
    head = (f"# Sweep {sweep.name}: the best trial of each config, confirmed\n\nEach config's best of "
            f"{sweep.trials} trials ({sweep.objective} at {sweep.budget.text()}) trained again with {n} fresh "
            f"seeds ({', '.join(map(str, fresh_seeds(sweep, n)))}); the ranking is of these runs.\n\n")
    text = head + ranking_markdown(ranking(table[["dataset", "model", "value"]], lower=lower), sweep.objective,
                                   lower) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    with atomic_path(folder.report_dir / "confirmed.csv") as tmp:
        table.to_csv(tmp, index=False)
    say(f"confirmed: {path}")
    return path
