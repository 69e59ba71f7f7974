"""Suites: many configs x seeds, run in turn or N at once, or as cluster jobs, resumable, then the
tables and the gallery.

file.py reads the suite file (typed like a config), plan.py decides what each (config, seed) needs,
executors.py is the registry of where the jobs run: executor.py runs them on this machine (and holds
run_suite), slurm.py submits them to SLURM through submitit, each as a cluster_job.py, and
submitted.py records what was submitted; status.py says where each run stands. The report at the end
is report/suite.py's.
"""
from gan_bench.suite.executor import execute, parse_gpus, run_suite, visible_gpus  # noqa: F401
from gan_bench.suite.executors import EXECUTORS, Context, ExecutorInfo, executor_for, parse_options  # noqa: F401
from gan_bench.suite.file import Suite, SuiteEval, SuiteRun, load_suite, suite_out  # noqa: F401
from gan_bench.suite.plan import QUICK_PER_CLASS, QUICK_STEPS, Job, plan  # noqa: F401
from gan_bench.suite.slurm import SlurmOptions  # noqa: F401  (registers the slurm executor)
from gan_bench.suite.status import suite_status  # noqa: F401
