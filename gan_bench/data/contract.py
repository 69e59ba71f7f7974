"""A data set's contract (data/base.py), checked as load_data() receives a loader's result.

A loader is fn(cfg: DataConfig) -> Splits(name, train, test): two ImageData of uint8 (N, C, H, W)
images, labels (N,) int64 in 0..K-1 naming `classes` (distinct text; or None), the test split of the same size and
channels, labelled like the training split. What a loader that breaks it returned, against what was
expected, is one PluginError line naming its file and line.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from gan_bench.data.base import DatasetInfo, ImageData, Splits
from gan_bench.plugins import broken, describe

LOADER = "fn(cfg: DataConfig) -> Splits"


def check_dataset(splits: object, info: Optional[DatasetInfo] = None, *, name: str,
                  loader: Optional[Callable] = None, resolution: Optional[int] = None) -> Splits:
    """splits as a loader returned it, checked against the contract and the data set's DatasetInfo
    (its declared sizes, channels and labels; `resolution`: data.resolution, which a loader may apply
    itself); returns it."""
    what = f"data set {name!r}"
    if not isinstance(splits, Splits):
        raise broken(what, loader, describe(splits), "Splits(name, train, test) of two ImageData "
                                                     "(from gan_bench import Splits, ImageData)")
    for part in ("train", "test"):
        data = getattr(splits, part)
        if not isinstance(data, ImageData):
            raise broken(what, loader, f"Splits.{part} = {describe(data)}", "an ImageData(x, y, classes)")
        _check_labels(data, part, what, loader)
    train, test = splits.train, splits.test
    if test.x.shape[1:] != train.x.shape[1:]:
        raise broken(what, loader, f"test images of {_size(test)} beside training images of {_size(train)}",
                     "both splits of one size and number of channels")
    if train.labelled and not test.labelled:
        raise broken(what, loader, "an unlabelled test split beside a labelled training split",
                     "labels in both splits (class-aware metrics compare them)")
    if train.labelled and test.classes != train.classes:
        raise broken(what, loader, f"test classes {test.classes[:5]} beside training classes {train.classes[:5]}",
                     "the same class names, in the same order, in both splits")
    if info is not None:
        if info.resolutions and train.resolution not in (*info.resolutions, resolution):
            raise broken(what, loader, f"{train.resolution}x{train.resolution} px images",
                         f"{' or '.join(map(str, info.resolutions))} px, as register_dataset(resolutions=...) said")
        if info.channels is not None and train.channels != info.channels:
            raise broken(what, loader, f"{train.channels}-channel images",
                         f"{info.channels} channel(s), as register_dataset(channels=...) said")
        if info.labelled is not None and train.labelled != info.labelled:
            raise broken(what, loader, "labelled images" if train.labelled else "unlabelled images",
                         f"{'labelled' if info.labelled else 'unlabelled'} ones, as register_dataset(labelled=...) said")
    return splits


def _size(data: ImageData) -> str:
    c, h, w = data.x.shape[1:]
    return f"{h}x{w} px with {c} channel{'s' if c != 1 else ''}"


def _check_labels(data: ImageData, part: str, what: str, loader: Optional[Callable]) -> None:
    if data.channels not in (1, 3) or data.x.shape[-1] != data.x.shape[-2]:
        raise broken(what, loader, f"{'training' if part == 'train' else part} images of shape {tuple(data.x.shape)}",
                     "square images (N, C, H, W) with C 1 or 3")
    if data.y is None:
        return
    y = data.y
    split = "training" if part == "train" else part
    names = data.classes
    if not isinstance(names, (list, tuple)) or not all(isinstance(c, str) and c for c in names):
        shown = repr(list(names)[:5]) if isinstance(names, (list, tuple)) else describe(names)
        raise broken(what, loader, f"{split} class names {shown}",
                     "a list of text class names, one per label (sample grids, --label and tables show them)")
    if len(set(names)) < len(names):
        twice = next(c for c in names if list(names).count(c) > 1)
        raise broken(what, loader, f"{split} class names with {twice!r} twice", "distinct class names (--label picks "
                                                                                    "a class by its name)")
    if y.dtype != torch.int64 or y.dim() != 1:
        raise broken(what, loader, f"{split} labels as {describe(y)}", f"an int64 tensor of shape ({len(data)},)")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= data.num_classes):
        raise broken(what, loader, f"{split} labels in {int(y.min())}..{int(y.max())} with {data.num_classes} class "
                     f"names", f"labels in 0..{data.num_classes - 1}, one per name in classes")
