"""The public API: everything a plugin may import from gan-bench, and all it needs (README "Plugins").

    from gan_bench import register_model, ModelInfo, GAN, DataSpec

    @register_model("resdcgan", resolutions=(32,), description="...")   # the ModelInfo fields
    def build(spec: DataSpec, cfg: ModelConfig) -> GAN: ...

Each register_* is its registry's own `register`: the keyword arguments are the fields of the record
beside it (DatasetInfo, ModelInfo, MetricInfo, TrackerInfo), checked as the entry registers, and a
name already taken is refused. Everything else in gan_bench is internal and may change.
"""
from gan_bench.config import DataConfig, ModelConfig, option
from gan_bench.data.base import DATASETS, DatasetInfo, DataSpec, ImageData, Splits, from_uint8, split, to_uint8
from gan_bench.errors import ConfigError, DataError, GanBenchError
from gan_bench.metrics.context import EvalContext
from gan_bench.metrics.registry import METRICS, MetricInfo, NotApplicable
from gan_bench.models.base import GAN, MODELS, Layers, ModelInfo
from gan_bench.plugins import load as load_plugins
from gan_bench.run import RunFolder
from gan_bench.train.trackers import TRACKERS, Tracker, TrackerInfo

# Data sets: fn(cfg: DataConfig) -> Splits of uint8 images; DatasetInfo(options=...) declares its own
# config keys (a dataclass of option() fields), read as data.<key> and checked like every key.
register_dataset = DATASETS.register
# Models: fn(spec: DataSpec, cfg: ModelConfig) -> GAN; G(z, y) -> (B, C, H, W) in [-1, 1], D(x, y) -> (B,) logits.
register_model = MODELS.register
# Metrics: fn(ctx: EvalContext) -> {numbers}; MetricInfo says its headline key and which way is better.
register_metric = METRICS.register
# Trackers: a Tracker subclass; TrackerInfo names the module it needs and how to install it.
register_tracker = TRACKERS.register
# Losses: the loss registry (gan_bench/train/losses.py: LOSSES, Loss, LossInfo) is being added beside this
# module; when it is in the package, export it here like the others, and add its names to __all__:
#     from gan_bench.train.losses import LOSSES, Loss, LossInfo
#     register_loss = LOSSES.register

__all__ = [
    "register_dataset", "register_model", "register_metric", "register_tracker", "load_plugins",
    "DatasetInfo", "ModelInfo", "MetricInfo", "TrackerInfo",
    "DataSpec", "DataConfig", "ModelConfig", "ImageData", "Splits", "GAN", "Layers", "EvalContext", "Tracker",
    "RunFolder", "option", "split", "to_uint8", "from_uint8", "NotApplicable",
    "GanBenchError", "ConfigError", "DataError",
]
