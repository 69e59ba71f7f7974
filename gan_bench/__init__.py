"""gan-bench: train and compare GANs across data sets with one config-driven trainer."""

__version__ = "0.1.0"

# The data sets declare their own config keys (data.categories, data.crop, ...) and the model registry its
# names as they register, so every config built anywhere (the package, a test, a notebook) checks them.
import gan_bench.data  # noqa: E402,F401
import gan_bench.models  # noqa: E402,F401
