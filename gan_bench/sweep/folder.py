"""SweepFolder: the one object that knows a sweep folder's files.

Layout of results/sweeps/<name>/:
  study.db                    the Optuna studies (SQLite; one study per config), unless --storage names another
  journal.log                 the same as Optuna's journal file instead (--executor slurm: the nodes share it)
  slurm/                      --executor slurm: the workers' jobs on record (jobs.jsonl) and submitit's files
  .lock                       held while a worker takes a trial, so N workers never start N + 1
  logs/worker-<k>.log         the console output of --jobs worker k
  <config>/trial-0003/        one trial (numbered by its first attempt: a retried trial keeps its number)
    trial.json                the trial's number, study, attempts, sampled values, state and objective
    seed0/ seed1/ ...         ordinary run folders (config.yaml holds the sampled values; name <config>-t0003)
  confirm/<config>/seed<k>/   --confirm N: the best trial's config with fresh seeds
  best/<config>.yaml          the best trial as a ready config
  report/                     README.md, best_of_k.png, objective.png, importance_<config>.png ...
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from gan_bench.errors import GanBenchError
from gan_bench.run import RunFolder
from gan_bench.run.files import atomic_write_text, write_json


class SweepFolder:
    STUDY_DB, JOURNAL, LOCK, LOGS, TRIAL, CONFIRM, BEST, REPORT = "study.db", "journal.log", ".lock", "logs", \
        "trial.json", "confirm", "best", "report"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def storage_url(self) -> str:
        """The default storage: SQLite beside the trials (absolute, so workers anywhere agree)."""
        return f"sqlite:///{(self.path / self.STUDY_DB).resolve()}"

    @property
    def journal_url(self) -> str:
        """Optuna's journal file beside the trials (--storage journal:PATH's form)."""
        return f"journal:{(self.path / self.JOURNAL).resolve()}"

    def stored(self) -> Optional[str]:
        """The storage a sweep in this folder already has, as --storage would name it: study.db, else
        journal.log, else None (none yet)."""
        if (self.path / self.STUDY_DB).exists():
            return self.storage_url
        if (self.path / self.JOURNAL).exists():
            return self.journal_url
        return None

    @property
    def lock_path(self) -> Path:
        return self.path / self.LOCK

    def log_path(self, worker: int) -> Path:
        return self.path / self.LOGS / f"worker-{worker}.log"

    def trial_dir(self, config: str, number: int) -> Path:
        return self.path / config / f"trial-{number:04d}"

    def trial_run(self, config: str, number: int, seed: int) -> RunFolder:
        return RunFolder(self.trial_dir(config, number) / f"seed{seed}")

    def write_trial(self, config: str, number: int, record: dict[str, Any]) -> None:
        path = self.trial_dir(config, number) / self.TRIAL
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, record)

    def trial_numbers(self, config: str) -> list[int]:
        """The numbers of the trials of `config` that have a trial.json, in order."""
        found = [p.parent.name for p in (self.path / config).glob(f"trial-*/{self.TRIAL}")]
        return sorted(int(n[len("trial-"):]) for n in found if n[len("trial-"):].isdigit())

    def read_trial(self, config: str, number: int) -> dict[str, Any]:
        path = self.trial_dir(config, number) / self.TRIAL
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            raise GanBenchError(f"{path} is unreadable; delete it (the study holds the same record)") from None

    def confirm_run(self, config: str, seed: int) -> RunFolder:
        return RunFolder(self.path / self.CONFIRM / config / f"seed{seed}")

    def best_config_path(self, config: str) -> Path:
        return self.path / self.BEST / f"{config}.yaml"

    def write_best_config(self, config: str, text: str) -> Path:
        path = self.best_config_path(config)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
        return path

    @property
    def report_dir(self) -> Path:
        return self.path / self.REPORT
