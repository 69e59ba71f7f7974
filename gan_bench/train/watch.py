"""Watch a run for the failures users keep reporting: D winning outright, G loss running away,
and sample diversity collapsing. Warnings go to events.jsonl in the run folder (and the console)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from gan_bench.run import RunFolder

D_LOSS_ZERO = 1e-3      # D loss this small: D separates real from fake perfectly, G gets no signal
G_LOSS_HIGH = 20.0      # non-saturating G loss this large means D(G(z)) ~ e^-20
WINDOW = 10             # consecutive logged records before a warning
DIVERSITY_DROP = 0.3    # diversity below this share of its best so far: likely mode collapse


def diversity(images: torch.Tensor) -> float:
    """Mean pairwise L2 distance between fixed-noise samples (7x7 average-pooled pixels as features)."""
    f = torch.nn.functional.adaptive_avg_pool2d(images.float(), 7).flatten(1)
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / max(1, n * (n - 1)))


@dataclass
class Watch:
    run: RunFolder
    d_zero: int = 0
    g_high: int = 0
    best_diversity: float = 0.0
    warned: set[str] = field(default_factory=set)

    def warn(self, step: int, kind: str, message: str, log) -> None:
        if kind in self.warned:  # once per run and kind: a warning repeated every step is noise
            return
        self.warned.add(kind)
        self.run.append("events", {"step": step, "event": "warning", "kind": kind, "message": message})
        log(f"warning at step {step}: {message}")

    def record(self, rec: dict[str, Any], log) -> None:
        self.d_zero = self.d_zero + 1 if rec["loss_d"] < D_LOSS_ZERO else 0
        self.g_high = self.g_high + 1 if rec["loss_g"] > G_LOSS_HIGH else 0
        if self.d_zero >= WINDOW:
            self.warn(rec["step"], "d_loss_zero", f"D loss < {D_LOSS_ZERO} for {WINDOW} logged steps: "
                       "D has won and G gets no gradient (try label smoothing or instance noise)", log)
        if self.g_high >= WINDOW:
            self.warn(rec["step"], "g_loss_diverging", f"G loss > {G_LOSS_HIGH} for {WINDOW} logged steps", log)

    def samples(self, step: int, images: torch.Tensor, log) -> Optional[float]:
        div = diversity(images)
        self.best_diversity = max(self.best_diversity, div)
        if div < DIVERSITY_DROP * self.best_diversity:
            self.warn(step, "diversity_collapse", f"sample diversity fell to {div:.3f} from {self.best_diversity:.3f}: "
                       "possible mode collapse", log)
        return div
