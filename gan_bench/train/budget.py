"""A run's budget: where it stops (epochs, steps, training minutes), raising it on resume, and what the
summary says about it. Every reader of train.epochs / max_steps / max_minutes goes through Budget.

What counts: a step bound and, optionally, a time bound. The step bound is train.max_steps when it is
set, else train.epochs whole epochs (max_steps replaces the epochs, it does not race them: a run asked
for 60 steps trains 60, whatever the default epochs would have allowed). train.max_minutes stops at the
first step after that many minutes of training (evaluations not counted; schedule.py's clock), with the
step bound still an upper bound. No schedule reads the total, so a run trained longer on resume equals
one started with the larger budget.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional

from gan_bench.config import BUDGET_KEYS, Config, build_config, nest, parse_set
from gan_bench.errors import ConfigError


@dataclass(frozen=True)
class Budget:
    epochs: int
    max_steps: Optional[int] = None
    max_minutes: Optional[float] = None

    @classmethod
    def of(cls, cfg: Config) -> "Budget":
        t = cfg.train
        return cls(epochs=t.epochs, max_steps=t.max_steps, max_minutes=t.max_minutes)

    @property
    def kind(self) -> str:
        """What bounds the run: "time" (max_minutes), "steps" (max_steps) or "epochs"."""
        return "time" if self.max_minutes else ("steps" if self.max_steps else "epochs")

    @property
    def seconds(self) -> Optional[float]:
        """The time bound in training seconds, or None."""
        return self.max_minutes * 60.0 if self.max_minutes else None

    def total_steps(self, steps_per_epoch: int) -> int:
        """The step the run ends at unless its time runs out first."""
        return self.max_steps if self.max_steps else steps_per_epoch * self.epochs

    def check_left(self, *, step: int, seconds: float, steps_per_epoch: int) -> None:
        """A raised budget must leave steps and minutes to train: a --set below what the run has trained
        would end it at once, rewriting its summary for nothing."""
        total = self.total_steps(steps_per_epoch)
        if step >= total:
            raise ConfigError(f"the new budget is {total} steps and the run has trained {step}: set "
                              + (f"train.max_steps above {step}" if self.max_steps else
                                 f"train.epochs ({steps_per_epoch} steps each) or train.max_steps above that"))
        if self.seconds and seconds >= self.seconds:
            raise ConfigError(f"the run has trained {seconds / 60:.1f} minutes and its budget is train.max_minutes="
                              f"{self.max_minutes:g}: to train longer, raise it above {seconds / 60:.1f}")

    def summary(self, *, out_of_time: bool, step: int, total: int) -> dict[str, Any]:
        """What summary.json says about the budget: its kind, the minutes, the step bound, the epochs the
        steps make (epoch budgets only) and budget_reached: the time ran out before the step bound (the
        machine the summary's device names decides how far that was)."""
        return {"budget": self.kind, "max_minutes": self.max_minutes, "total_steps": total,
                "epochs": step / max(1, total) * self.epochs if not self.max_steps else None,
                "budget_reached": out_of_time}

    def text(self) -> str:
        """"train.epochs=5, train.max_steps=null, ..." (events.jsonl's record of a raised budget)."""
        values = {"epochs": self.epochs, "max_steps": self.max_steps, "max_minutes": self.max_minutes}
        return ", ".join(f"train.{k}={json.dumps(v)}" for k, v in values.items())


def extend(cfg: Config, overrides: list[str]) -> Config:
    """A run's config with --set overrides of its budget only (`run --resume RUN --set train.epochs=N`);
    any other key is refused: the run's records and checkpoint belong to the config it was started with."""
    for item in overrides:
        key, _ = parse_set(item)
        if ".".join(key) not in BUDGET_KEYS:
            raise ConfigError(f"--set {item!r}: a resumed run keeps its config, only its budget may change "
                              f"({', '.join(BUDGET_KEYS)}); start a new run for other keys")
    return build_config([cfg.to_dict()] + [nest(*parse_set(s)) for s in overrides])  # as RunFolder.read_config
