"""What every data source returns: uint8 image tensors in memory, with a self-description."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

from gan_bench.config import DataConfig, check_options, register_names, register_options
from gan_bench.errors import DataError
from gan_bench.registry import Entry, Registry


@dataclass
class ImageData:
    """Images held in memory: x (N, C, H, W) uint8, y (N,) int64 or None, class names."""

    x: torch.Tensor
    y: Optional[torch.Tensor]
    classes: list[str]

    def __post_init__(self) -> None:
        if not isinstance(self.x, torch.Tensor):  # a numpy array's uint8 would read as the right dtype below
            raise DataError(f"images must be a torch uint8 tensor (N, C, H, W), got {type(self.x).__module__}."
                            f"{type(self.x).__name__}; convert it with torch.from_numpy(x)")
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise DataError(f"images must be uint8 (N, C, H, W), got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"{len(self.x)} images but {len(self.y)} labels")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def channels(self) -> int:
        return self.x.shape[1]

    @property
    def resolution(self) -> int:
        return self.x.shape[-1]

    @property
    def labelled(self) -> bool:
        return self.y is not None

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class Splits:
    """A data set: train and test images and the description models are sized from."""

    name: str
    train: ImageData
    test: ImageData

    @property
    def spec(self) -> "DataSpec":
        t = self.train
        return DataSpec(self.name, t.resolution, t.channels, t.num_classes if t.labelled else 0,
                        list(t.classes) if t.labelled else [])


@dataclass
class DataSpec:
    """Self-description of a data set; models are built from this (num_classes 0 = unlabelled)."""

    name: str
    resolution: int
    channels: int
    num_classes: int
    classes: list[str]

    @property
    def labelled(self) -> bool:
        return self.num_classes > 0


@dataclass(frozen=True)
class DatasetInfo:
    """What the package may ask about a registered data set, without loading it.

    resolutions    native image sizes (empty: any, e.g. a user's own files)
    channels       1 or 3, or None when the files decide
    labelled       True, False, or None when the files decide
    options        a dataclass of the data set's own config keys (data.<key> in YAML), or None
    subsets_itself the loader applies data.max_per_class itself (quickdraw reads only that many
                   rows of each 100 MB file), so load_data does not subset again
    named_by_file  runs are displayed by data.path's file stem (a user's .npz), not by the name
    description    one line for `gan-bench list`
    """

    resolutions: tuple[int, ...] = ()
    channels: Optional[int] = None
    labelled: Optional[bool] = None
    options: Optional[type] = None
    subsets_itself: bool = False
    named_by_file: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        if self.channels not in (None, 1, 3):
            raise TypeError(f"DatasetInfo.channels must be 1, 3 or None, got {self.channels!r}")
        if not all(isinstance(r, int) and r > 0 for r in self.resolutions):
            raise TypeError(f"DatasetInfo.resolutions must be positive integers, got {self.resolutions!r}")


def _check_options(entry: Entry) -> None:
    check_options(DataConfig, entry.name, entry.info.options)  # refused as it registers, not when a config reads it


# A loader takes the resolved DataConfig and returns Splits.
DATASETS: Registry[Callable[..., Splits], DatasetInfo] = Registry("data set", DatasetInfo,
                                                                  on_register=_check_options)
register_names("data.name", "data set", DATASETS.names)
register_options("data", lambda: {e.name: e.info.options for e in DATASETS})  # data.<option> keys


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) in [-1, 1] (a generator's output) -> uint8 (B, C, H, W) on the CPU: the one
    quantisation every saved sample, grid and evaluated image gets."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1] (what G draws and D reads), on x's device."""
    return x.float().div_(127.5).sub_(1.0)


def from_numpy(x: np.ndarray, y: Optional[np.ndarray], classes: Optional[list[str]], *, source: str) -> ImageData:
    """Convert N x H x W or N x H x W x C uint8 arrays (the .npz layout) to an ImageData; classes None:
    labels saved without names are named "0".."K-1"."""
    if x.dtype != np.uint8:
        raise DataError(f"{source}: images must be uint8, got {x.dtype}; convert them to 0-255 uint8")
    if x.ndim >= 1 and x.shape[0] == 0:  # caught here, before a split or a subset meets an empty array
        raise DataError(f"{source} holds no images (x has shape {x.shape}); save the images in x")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    else:
        raise DataError(f"{source}: images must be N x H x W or N x H x W x 3, got shape {x.shape}")
    if x.shape[-1] != x.shape[-2]:
        raise DataError(f"{source}: images must be square, got {x.shape[-2]}x{x.shape[-1]}; crop or resize them")
    yt = None
    if y is not None:
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{source}: 'y' must be one integer label per image ({len(x)} integer labels), got "
                            f"{y.dtype} {y.shape}; save labels as integers 0..K-1 and their names as classes")
        if len(y) and y.min() < 0:
            raise DataError(f"{source}: labels must be integers 0..K-1, found {int(y.min())}; renumber them from 0")
        if classes is None:
            classes = [str(i) for i in range(int(y.max()) + 1)] if len(y) else []
        if len(y) and y.max() >= len(classes):
            raise DataError(f"{source}: labels must lie in 0..{len(classes) - 1} (one per class name)")
        yt = torch.from_numpy(y.astype(np.int64))
    return ImageData(torch.from_numpy(np.ascontiguousarray(x)), yt, list(classes or []))


def split(data: ImageData, *, test_fraction: float, seed: int) -> tuple[ImageData, ImageData]:
    """A seeded, stratified train/test split (each class split in the same proportion)."""
    g = torch.Generator().manual_seed(seed)
    groups = [torch.arange(len(data))] if data.y is None else [
        (data.y == c).nonzero().flatten() for c in range(data.num_classes)]
    train_idx, test_idx = [], []
    for idx in groups:
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_test = int(round(len(idx) * test_fraction))
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
    pick = lambda i: ImageData(data.x[i], None if data.y is None else data.y[i], data.classes)  # noqa: E731
    return pick(tr), pick(te)


def subset_per_class(data: ImageData, max_per_class: Optional[int], seed: int) -> ImageData:
    """Keep at most max_per_class images of each class (a seeded choice)."""
    if max_per_class is None or data.y is None:
        return data if max_per_class is None else ImageData(data.x[:max_per_class], None, data.classes)
    g = torch.Generator().manual_seed(seed)
    keep = []
    for c in range(data.num_classes):
        idx = (data.y == c).nonzero().flatten()
        keep.append(idx[torch.randperm(len(idx), generator=g)[:max_per_class]])
    k = torch.cat(keep).sort().values
    return ImageData(data.x[k], data.y[k], data.classes)


def resize(data: ImageData, resolution: Optional[int]) -> ImageData:
    """Resize all images once at load time (antialiased bilinear), e.g. CIFAR-10 32 -> 64."""
    if resolution is None or resolution == data.resolution:
        return data
    out = []
    for chunk in data.x.split(4096):
        f = F.interpolate(chunk.float(), size=(resolution, resolution), mode="bilinear",
                          antialias=True, align_corners=False)
        out.append(f.round().clamp(0, 255).to(torch.uint8))
    return ImageData(torch.cat(out), data.y, data.classes)
