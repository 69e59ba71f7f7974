"""When the loop evaluates and when it stops: epochs and steps, and the training clock.

The clock counts training seconds only: the time evaluations take is paused out of it, so a model
evaluated often is not charged for it, and `train.max_minutes` and `eval.every_seconds` mean seconds of
training. A resumed run continues the clock from its checkpoint.

Under torchrun the ranks' clocks differ by a little; a decision taken on time (an evaluation, the end
of the budget) is rank 0's, broadcast, since every rank must evaluate and stop at the same step.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Iterator

from gan_bench.run.world import World
from gan_bench.train.plan import RunPlan


class Schedule:
    def __init__(self, plan: RunPlan, world: World, *, prior_seconds: float, steps_per_epoch: int) -> None:
        self.ev, self.world = plan.evaluation, world
        self.steps_per_epoch = steps_per_epoch
        self.budget = plan.budget.seconds
        self.prior, self.start, self.paused = prior_seconds, time.perf_counter(), 0.0
        every = self.ev.every_seconds
        self.next_eval_at = (math.floor(prior_seconds / every) + 1) * every if every else math.inf

    def seconds(self) -> float:
        """Training seconds so far, this run's and those before its resume, evaluations left out."""
        return self.prior + time.perf_counter() - self.start - self.paused

    @contextmanager
    def pause(self) -> Iterator[None]:
        """Time spent inside is not training time."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.paused += time.perf_counter() - t0

    def out_of_time(self) -> bool:
        """Whether the time budget is spent (the same answer on every rank)."""
        if self.budget is None:
            return False
        return self.world.broadcast(self.seconds() >= self.budget) if self.world.distributed \
            else self.seconds() >= self.budget

    def eval_due(self, step: int, *, last: bool) -> bool:
        """After `step` steps: whether to evaluate now (`last`: the run ends at this step)."""
        if not self.ev.on:
            return False
        due = last
        if self.ev.every and step % self.steps_per_epoch == 0 and (step // self.steps_per_epoch) % self.ev.every == 0:
            due = True
        if self.ev.every_steps and step % self.ev.every_steps == 0:
            due = True
        if self.ev.every_seconds:
            now = self.seconds()
            timed = self.world.broadcast(now >= self.next_eval_at) if self.world.distributed else now >= self.next_eval_at
            if timed:
                due = True
        if due and self.ev.every_seconds:
            # the next one a full interval after this one, however it was triggered
            self.next_eval_at = (math.floor(self.seconds() / self.ev.every_seconds) + 1) * self.ev.every_seconds
        return due
