"""The suite planner: every (config, seed) built and checked, and what each needs (run, resume, evaluate,
skip), before anything runs, so a typo in the last run fails at once.

Run (config, seed) lives in <out>/<name>/seed<k>/. A folder whose summary says completed (or failed) is
skipped, one with a checkpoint is resumed, anything else starts afresh; with retry_failed a failed run
starts afresh too. A cluster job decides again when it starts (decide), so a requeued job resumes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gan_bench.config import Config, build_config, load_config
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.metrics.registry import METRICS, inapplicable_reason
from gan_bench.models import MODELS
from gan_bench.plugins import load as load_plugins
from gan_bench.report.timing import parse_targets
from gan_bench.run import RunFolder
from gan_bench.suite.file import Suite, SuiteEval
from gan_bench.train.plan import make_plan

# --quick: a smoke budget that still makes a few snapshots (so the GIFs move) on a CPU in seconds. Twice a
# batch of images per class (or in all, where data.max_per_class caps the total, as CelebA's does), so a
# test split of up to half still leaves a whole batch to train on (the plan refuses a batch the data lacks).
QUICK_STEPS, QUICK_BATCH, QUICK_EVAL_SAMPLES = 30, 16, 256
QUICK_PER_CLASS = 2 * QUICK_BATCH


@dataclass
class Job:
    cfg: Config
    run: RunFolder
    action: str          # run | resume | skip | eval | wait (a cluster job of it is queued or running)
    note: str = ""

    @property
    def run_dir(self) -> Path:
        return self.run.path


def plan(suite: Suite, *, out: Path, quick: bool, retry_failed: bool = False) -> list[Job]:
    """Build and check every (config, seed) and decide what each needs; raises before anything runs."""
    load_plugins(suite.plugins)  # first, so that a broken one is named as the suite's, not as a run's
    for m in (suite.eval.metrics if suite.eval else []):
        try:
            METRICS.entry(m)  # ConfigError listing the valid names
        except GanBenchError as e:
            raise ConfigError(f"suite eval.metrics: {e}") from None
    try:  # after the plugins, which may register the metric a target names
        parse_targets(suite.targets)
    except GanBenchError as e:
        raise ConfigError(f"suite targets: {e}".replace("--target ", "")) from None
    jobs: list[Job] = []
    for i, r in enumerate(suite.runs, 1):
        for seed in r.seeds if r.seeds is not None else suite.seeds:
            where = f"suite run {i} ({r.config}, seed {seed})"
            try:
                sets = suite.set + r.set + [f"train.seed={seed}"] + ([f"name={r.name}"] if r.name else [])
                cfg = load_config(Path(r.config), sets, plugins=suite.plugins)
                cfg = quick_config(cfg) if quick else cfg
                cfg.out = str(out)
                make_plan(cfg, device=False)  # the executor checks the device where the runs train
            except GanBenchError as e:
                raise type(e)(f"{where}: {e}") from None
            jobs.append(decide(cfg, RunFolder(out / cfg.name / f"seed{seed}"), suite.eval,
                               retry_failed=retry_failed))
    seen: dict[Path, str] = {}
    for j in jobs:
        if j.run_dir in seen:
            raise ConfigError(f"two suite runs write to {j.run_dir}; give one of them a `name:`")
        seen[j.run_dir] = j.cfg.name
    return jobs


def quick_eval(ev: Optional[SuiteEval], quick: bool) -> Optional[SuiteEval]:
    """The suite's evaluation, with --quick's smaller sample count."""
    if not (quick and ev):
        return ev
    return SuiteEval(metrics=list(ev.metrics), samples=min(ev.samples, QUICK_EVAL_SAMPLES))


def quick_config(cfg: Config) -> Config:
    t = cfg.train
    return build_config([cfg.to_dict(), {
        "train": {"max_steps": min(t.max_steps or QUICK_STEPS, QUICK_STEPS), "batch_size": min(t.batch_size, QUICK_BATCH),
                  "log_every": 3, "checkpoint_every": 10, "snapshot_every": 1},
        "data": {"max_per_class": min(cfg.data.max_per_class or QUICK_PER_CLASS, QUICK_PER_CLASS)}}])


def decide(cfg: Config, run: RunFolder, ev: Optional[SuiteEval], *, retry_failed: bool = False) -> Job:
    """What run folder `run` needs for cfg: run, resume, eval or skip (see the module docstring)."""
    summary = run.read_summary() if run.has_summary() else None
    if summary is not None and summary.get("config_hash") != cfg.hash():
        raise ConfigError(f"{run} holds a run of a different config (hash {summary.get('config_hash')}, "
                          f"now {cfg.hash()}); delete that folder or choose another --out")
    status = (summary or {}).get("status")
    if status == "failed":
        if retry_failed:
            return Job(cfg, run, "run", f"failed earlier ({summary.get('reason')}); starting again")
        return Job(cfg, run, "skip", f"failed earlier: {summary.get('reason')}; --retry-failed starts it again")
    if status == "completed":
        missing = missing_evals(run, ev, summary)
        return Job(cfg, run, "eval" if missing else "skip",
                   "completed" + (f", evaluate {', '.join(missing)}" if missing else ""))
    if run.has_checkpoint():
        return Job(cfg, run, "resume", f"from step {summary.get('steps') if summary else '?'}")
    return Job(cfg, run, "run")


def missing_evals(run: RunFolder, ev: Optional[SuiteEval], summary: dict) -> list[str]:
    """The suite's metrics that apply to this finished run and have no line for its last step yet."""
    if not ev:
        return []
    done = {r.get("metric") for r in run.records("eval")
            if r.get("checkpoint", "last") == "last" and r.get("step") == summary.get("steps")}
    return [m for m in _applicable(ev.metrics, summary) if m not in done]


def _applicable(metrics: list[str], summary: dict) -> list[str]:
    """Drop metrics that cannot apply (cond_acc of an unconditional model, labels of CelebA), so a
    mixed suite can ask for them all."""
    info = MODELS.info(str(summary.get("model")))
    labelled = bool(summary.get("num_classes"))
    return [m for m in metrics if not inapplicable_reason(m, labelled=labelled, draws_class=info.draws_class)]
