"""Google's Quick, Draw! bitmaps: one `full_numpy_bitmap` file per category (N x 784 uint8).

Files live in <data.root>/quickdraw/<category>.npy; missing ones are downloaded from Google's
public bucket. Class indices follow the config's category order, never the file system's.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import numpy as np
import torch

from gan_bench.config import DataConfig, option
from gan_bench.data.base import DATASETS, ImageData, Splits, split
from gan_bench.errors import ConfigError, DataError
from gan_bench.registry import closest

URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/{}.npy"
# The Quick, Draw! seed's ten categories.
SEED_CATEGORIES = ["cat", "envelope", "eyeglasses", "mushroom", "star", "baseball bat", "t-shirt",
                   "car", "fish", "snail"]


def all_categories() -> list[str]:
    text = resources.files("gan_bench.data").joinpath("quickdraw_categories.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def check_categories(categories: list[str]) -> None:
    valid = set(all_categories())
    for c in categories:
        if c not in valid:
            near = closest(c, sorted(valid))
            hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise ConfigError(f"data.categories: {c!r} is not a Quick, Draw! category.{hint} "
                              f"(all 345 names: gan_bench/data/quickdraw_categories.txt)")
    if len(set(categories)) != len(categories):
        raise ConfigError("data.categories: a category is listed twice; list each once")


def category_files(root: Path, categories: list[str], *, download: bool) -> list[Path]:
    """The category files, downloading the missing ones; every missing file is named in the error."""
    folder = root / "quickdraw"
    paths = [folder / f"{c}.npy" for c in categories]
    missing = [c for c, p in zip(categories, paths) if not p.exists()]
    if missing and not download:
        names = ", ".join(f"{c}.npy" for c in missing)
        raise DataError(f"{len(missing)} of {len(categories)} Quick, Draw! files not found in {folder} and "
                        f"data.download is false ({names}); place them there (see datasets/README.md)")
    if missing:
        from gan_bench.data import download as dl

        failed: list[tuple[str, str]] = []
        with dl.folders_kept_only_if_used(folder):
            for i, c in enumerate(missing):
                try:
                    dl.download(URL.format(quote(c)), folder / f"{c}.npy")
                except DataError as e:
                    failed.append((c, str(e)))
                    if dl.UNREACHABLE in str(e):  # the same host serves every file: no use trying the rest
                        failed += [(rest, str(e)) for rest in missing[i + 1:]]
                        break
            if failed:
                names = ", ".join(f"{c}.npy" for c, _ in failed)
                raise DataError(f"could not download {len(failed)} of {len(categories)} Quick, Draw! files "
                                f"({names}): {failed[0][1]}")
    return paths


def read_category(path: Path, max_n: int | None, seed: int) -> np.ndarray:
    """(n, 28, 28) uint8; a seeded subset of max_n rows, read through a memory map (files are ~100 MB)."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(f"{path} is truncated or corrupt ({e.__class__.__name__}); delete it so it is "
                        f"downloaded again") from None
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != 784:
        raise DataError(f"{path}: expected N x 784 uint8 (full_numpy_bitmap format), got {arr.dtype} {arr.shape}")
    idx = np.arange(len(arr))
    if max_n is not None and max_n < len(arr):
        idx = np.sort(np.random.default_rng(seed).choice(len(arr), max_n, replace=False))
    return np.asarray(arr[idx]).reshape(-1, 28, 28)


@dataclass
class QuickdrawOptions:
    categories: Optional[list[str]] = option(None, nonempty=True,
                                             help="list at least one category, or null for the seed's ten")


@DATASETS.register("quickdraw", resolutions=(28,), channels=1, labelled=True, options=QuickdrawOptions,
                   subsets_itself=True,
                   description="Quick, Draw! 28x28 bitmaps by category (downloaded per category)")
def load_quickdraw(cfg: DataConfig) -> Splits:
    cats = cfg.categories or SEED_CATEGORIES
    check_categories(cats)
    xs, ys = [], []
    paths = category_files(Path(cfg.root), cats, download=cfg.download)
    for k, (cat, path) in enumerate(zip(cats, paths)):  # class k = position in the config's list
        x = read_category(path, cfg.max_per_class, cfg.split_seed + k)
        xs.append(x)
        ys.append(np.full(len(x), k, np.int64))
    data = ImageData(torch.from_numpy(np.concatenate(xs))[:, None], torch.from_numpy(np.concatenate(ys)), list(cats))
    train, test = split(data, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    return Splits("quickdraw", train, test)
