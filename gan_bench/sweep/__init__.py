"""Sweeps: the same hyperparameter search for every model (Optuna), so models compare at an equal tuning
budget (Lucic et al. 2018).

file.py reads the sweep file (typed like a config) and space.py its search space; plan.py checks both
against the configs and builds each trial's config; study.py holds the Optuna studies (storage, the
trials counted once, workers that died, the seeded samplers); trial.py trains one trial; worker.py runs
the workers, cluster.py submits them as a SLURM job array (through the suite's executor); report.py and
figures.py write the report, records.py rebuilds its studies from the trials' records where the storage
is not there (a clone of a published sweep: for its report, or to go on), confirm.py reruns the best configs
with fresh seeds.
"""
from gan_bench.sweep.file import Sweep, SweepBudget, SweepConfig, SweepPruner, load_sweep  # noqa: F401
from gan_bench.sweep.folder import SweepFolder  # noqa: F401
from gan_bench.sweep.worker import prepare, run_sweep  # noqa: F401
