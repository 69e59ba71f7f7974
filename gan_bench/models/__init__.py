"""Model families register themselves on import."""
from gan_bench.models import dcgan  # noqa: F401
from gan_bench.models import lindcgan  # noqa: F401
from gan_bench.models import mlpgan  # noqa: F401
from gan_bench.models import classdcgan  # noqa: F401
from gan_bench.models.base import GAN, MODELS, Layers, ModelInfo, check_compatible, compatible_models  # noqa: F401
from gan_bench.models.build import build_model  # noqa: F401
