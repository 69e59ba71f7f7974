"""Building a registered model: its factory called through its contract (contract.py), then the DCGAN
recipe's initialisation (the built-ins', or a plugin's that asks for it: ModelInfo.dcgan_init) and
model.spectral_norm (refused on a D that already has a parametrized weight: it would be normalised twice)."""
from __future__ import annotations

from torch.nn.utils import parametrize

from gan_bench.config import ModelConfig
from gan_bench.data.base import DataSpec
from gan_bench.errors import ConfigError
from gan_bench.models.base import GAN, MODELS, init_weights
from gan_bench.models.contract import make_model
from gan_bench.models.spectral import spectral_norm_d


def build_model(cfg: ModelConfig, spec: DataSpec) -> GAN:
    """The model cfg names, sized for spec (the run plan checked that it fits: train/plan.py), initialised;
    model.spectral_norm applied to its D. The factory's result is checked to be a GAN as its ModelInfo
    describes it (a plugin's broken factory is one line naming its file and line)."""
    gan = make_model(cfg.name, spec, cfg)
    if MODELS.info(cfg.name).dcgan_init:
        init_weights(gan)
    if cfg.spectral_norm:  # after the init: SN's power iteration starts from the initialised weights
        if any(_has_spectral_norm(m) for m in gan.D.modules()):
            raise ConfigError(f"model.spectral_norm=true, but model {cfg.name!r}'s D has spectral norm of its own; "
                              f"set model.spectral_norm=false (a second one would normalise its weights twice)")
        spectral_norm_d(gan.D)
    return gan


def _has_spectral_norm(m) -> bool:
    """torch's spectral norm on m's weight: the parametrization, or the older hook (weight_orig)."""
    if parametrize.is_parametrized(m, "weight"):
        return any("SpectralNorm" in type(p).__name__ for p in m.parametrizations["weight"])
    return hasattr(m, "weight_orig") and hasattr(m, "weight_u")
