"""gan-bench: train and compare GANs across data sets with one config-driven trainer."""

__version__ = "0.1.0"
