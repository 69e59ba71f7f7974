"""Suites: many configs x seeds, run in turn or N at once, resumable, then the tables and the gallery.

file.py reads the suite file (typed like a config), plan.py decides what each (config, seed) needs,
executor.py runs the jobs; the report at the end is report/suite.py's.
"""
from gan_bench.suite.executor import execute, parse_gpus, run_suite, visible_gpus  # noqa: F401
from gan_bench.suite.file import Suite, SuiteEval, SuiteRun, load_suite, suite_out  # noqa: F401
from gan_bench.suite.plan import QUICK_PER_CLASS, QUICK_STEPS, Job, plan  # noqa: F401
