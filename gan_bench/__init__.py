"""gan-bench: train and compare GANs across data sets with one config-driven trainer.

What a plugin may use is the public API, gan_bench/api.py, re-exported here: `from gan_bench import
register_model, ModelInfo, GAN, DataSpec`.
"""

__version__ = "0.1.0"

# Before torch loads OpenMP: idle threads sleep rather than spin, so trainings side by side share the CPU
# (gan_bench/threads.py says why and what it measured).
from gan_bench.threads import passive_waiting  # noqa: E402

passive_waiting()

# The registries register their names and a data set its own config keys as they are imported, so every
# config built anywhere (the package, a test, a notebook) checks them; the API imports every registry.
from gan_bench.api import *  # noqa: E402,F401,F403
from gan_bench.api import __all__  # noqa: E402,F401
