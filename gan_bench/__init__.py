"""gan-bench: train and compare GANs across data sets with one config-driven trainer."""

__version__ = "0.1.0"

# The data sets declare their own config keys (data.categories, data.crop, ...) as they register, so
# every config built anywhere in the package, or in a test or notebook, knows them.
import gan_bench.data  # noqa: E402,F401
