"""Data sources register themselves on import; load_data() is the one entry point."""
from __future__ import annotations

from gan_bench.config import DataConfig
from gan_bench.errors import DataError
from gan_bench.plugins import plugin_call
from gan_bench.data import celeba, cifar10, image_folder, npz, quickdraw, shapes, torchvision_sets  # noqa: F401  (registration)
from gan_bench.data.contract import LOADER, check_dataset
from gan_bench.data.base import (DATASETS, DatasetInfo, DataSpec, ImageData, Splits, from_uint8, resize,  # noqa: F401
                                 subset_per_class, to_uint8)


def load_data(cfg: DataConfig) -> Splits:
    """Load a data set by registry name, then apply max_per_class (unless the loader does it itself)
    and the optional resize, so the model always sees data.resolution. A loader (a plugin's) that raises
    or returns what the contract does not allow is one line (data/contract.py)."""
    loader = DATASETS.get(cfg.name)
    with plugin_call(f"data set {cfg.name!r}", loader, expects=LOADER):
        splits = loader(cfg)
    check_dataset(splits, DATASETS.info(cfg.name), name=cfg.name, loader=loader, resolution=cfg.resolution)
    subsets_itself = DATASETS.info(cfg.name).subsets_itself
    train = splits.train if subsets_itself else subset_per_class(splits.train, cfg.max_per_class, cfg.split_seed)
    if len(train) == 0:
        where = f" ({cfg.path})" if cfg.path else ""
        raise DataError(f"data set {splits.name!r}{where} has no training images; give it images (a test split of "
                        f"data.test_fraction={cfg.test_fraction} leaves {len(splits.test)} for testing)")
    return Splits(splits.name, resize(train, cfg.resolution), resize(splits.test, cfg.resolution))
