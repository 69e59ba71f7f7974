"""The run layer: a run folder and everything read from or written to it (config, records, pictures,
checkpoints, samples), and the process group a run trains in. The trainer, the metrics, suites and
reports all stand on it; it stands on models, data and config only."""
from gan_bench.run.folder import RunFolder  # noqa: F401
