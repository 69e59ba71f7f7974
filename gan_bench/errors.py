"""What can go wrong, as exception types the CLI turns into exit statuses.

GanBenchError and its kinds: a problem the user can fix; one line on stderr, exit status 2.
TrainingFailed: a run stopped on its own (exit 1). Interrupted: a signal stopped a run after it wrote a
checkpoint (exit 128 + the signal number). They live here, at the bottom of the package, because the
trainer raises them and the CLI and suites, floors above it, catch them.
"""
from __future__ import annotations

from pathlib import Path


class GanBenchError(Exception):
    """A problem the user can fix (bad config, missing data, ...). Message says what and how."""


class ConfigError(GanBenchError):
    """The configuration is invalid."""


class DataError(GanBenchError):
    """A data set is missing, corrupt or cannot be downloaded."""


class PluginError(ConfigError):
    """A plugin cannot be found or imported, or broke its registry's contract (returned the wrong thing, raised)."""


class TrainingFailed(Exception):
    """The run stopped on its own (NaN/Inf loss, out of GPU memory); the reason is in summary.json."""


class Interrupted(Exception):
    """A signal stopped training after a checkpoint; run_dir is the run folder to resume."""

    def __init__(self, signum: int, run_dir: Path) -> None:
        super().__init__(signum)
        self.signum, self.run_dir = signum, run_dir
