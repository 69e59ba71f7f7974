"""The public API: everything a plugin may import from gan-bench, and all it needs (README "Plugins").

    from gan_bench import register_model, ModelInfo, GAN, DataSpec

    @register_model("resdcgan", resolutions=(32,), description="...")   # the ModelInfo fields
    def build(spec: DataSpec, cfg: ModelConfig) -> GAN: ...

Each register_* is its registry's own `register`: the keyword arguments are the fields of the record
beside it (DatasetInfo, ModelInfo, MetricInfo, TrackerInfo, LossInfo), checked as the entry registers, and a
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
from gan_bench.train.augment import AUGMENTS, Draws
from gan_bench.train.losses import LOSSES, Loss, LossInfo
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
# Losses: register_loss("name", **LossInfo fields)(Loss(d=fn(logits, targets), g=fn(logits))), as
# gan_bench/train/losses.py registers bce, hinge and lsgan; train.loss names one.
register_loss = LOSSES.register
# Augmentations before D (train.diffaug: "a,b"): fn(x, draws) -> x, as in gan_bench/train/augment.py
# (draws: the random numbers of the global batch, this rank's rows, so torchrun stays one computation).
register_augment = AUGMENTS.register

__all__ = [
    "register_dataset", "register_model", "register_metric", "register_tracker", "register_loss",
    "register_augment", "load_plugins",
    "DatasetInfo", "ModelInfo", "MetricInfo", "TrackerInfo", "LossInfo", "Loss", "Draws",
    "DataSpec", "DataConfig", "ModelConfig", "ImageData", "Splits", "GAN", "Layers", "EvalContext", "Tracker",
    "RunFolder", "option", "split", "to_uint8", "from_uint8", "NotApplicable",
    "GanBenchError", "ConfigError", "DataError",
]
