"""`npz`: users' own data in the layout of the shared files: x uint8, y int labels, classes names."""
from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path
from typing import Optional

import numpy as np

from gan_bench.config import DataConfig
from gan_bench.data.base import DATASETS, ImageData, Splits, from_numpy, split
from gan_bench.errors import ConfigError, DataError


def read_npz(path: Path, *, key: str = "data.path", default_names: Optional[list[str]] = None) -> ImageData:
    """Read and check one .npz (the file that config key `key` names); every problem is a one-line
    DataError naming the file. default_names: the names of labels saved without `classes` (a test
    file takes its training file's), else "0".."K-1"."""
    if not path.exists():
        raise DataError(f"data file {str(path)!r} not found; check {key}")
    if path.is_dir():
        raise DataError(f"{key} {str(path)!r} is a folder; name a .npz file (x, and optionally y and classes)")
    try:
        f = np.load(path, allow_pickle=False)
        if not isinstance(f, np.lib.npyio.NpzFile):  # a .npy (one array) or text under a .npz name
            raise DataError(f"{path} is one array, not an .npz archive; save it with np.savez(path, x=images, "
                            f"y=labels, classes=names)")
        with f:
            keys = set(f.files)
            if "x" not in keys:
                raise DataError(f"{path}: no array 'x' (found {sorted(keys) or 'none'}); "
                                f"save images as x (N x H x W or N x H x W x 3 uint8)")
            for key in ("x", "y", "classes"):
                if key in keys:
                    _check_declared(f, key, path)  # before numpy allocates what the header claims
            x = f["x"]
            y = f["y"] if "y" in keys else None
            names = f["classes"] if "classes" in keys else None
            if names is not None and names.ndim != 1:
                raise DataError(f"{path}: classes is an array of shape {names.shape}; save it as a list of "
                                f"class names, one per label")
            classes = [str(c) for c in names] if names is not None else None
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
        raise DataError(f"{path} is truncated or corrupt ({type(e).__name__}); replace the file") from None
    return from_numpy(x, y, classes if classes is not None else default_names, source=str(path))


def _check_declared(f: np.lib.npyio.NpzFile, key: str, path: Path) -> None:
    """The size array `key`'s header declares, against the bytes the archive holds for it and the memory
    free here: numpy allocates the declared size before it reads a byte, so a 1 KB file claiming ten
    million images would ask for gigabytes."""
    if f"{key}.npy" not in f.zip.namelist():  # a member saved without .npy: np.load reads it as it can
        return
    info = f.zip.getinfo(f"{key}.npy")
    with f.zip.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
        else:  # 3.0 (UTF-8 field names): left to np.load
            return
        held = info.file_size - member.tell()
    need = math.prod(shape) * dtype.itemsize
    if need > held:
        raise DataError(f"{path}: {key} declares {_shape(shape)} {dtype} ({_bytes(need)}) but the file holds "
                        f"{_bytes(held)} of it; it is truncated or corrupt: replace the file")
    free = _free_memory()
    if free is not None and need > free:
        raise DataError(f"{path}: {key} is {_shape(shape)} {dtype}, {_bytes(need)}, more than the {_bytes(free)} of "
                        f"memory free here; save a smaller subset of the images in it")


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(f"{n:,}" for n in shape) or "a scalar"


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _free_memory() -> Optional[int]:
    """Bytes of memory a process can take now: Linux's MemAvailable (free plus what the page cache would
    give back), else the free pages; None where neither can be read."""
    try:
        with open("/proc/meminfo") as m:
            for line in m:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


@DATASETS.register("npz", resolutions=(), channels=None, labelled=None, named_by_file=True,
                   description="any .npz with x (uint8), optional y and classes")
def load_npz(cfg: DataConfig) -> Splits:
    if not cfg.path:
        raise ConfigError("data.path: the npz data set needs the path of a .npz file (set data.path)")
    train = read_npz(Path(cfg.path))
    if cfg.test_path:
        test = read_npz(Path(cfg.test_path), key="data.test_path",
                        default_names=train.classes if train.labelled else None)
        if test.x.shape[1:] != train.x.shape[1:]:
            raise DataError(f"{cfg.test_path}: images are {tuple(test.x.shape[1:])}, "
                            f"training images {tuple(train.x.shape[1:])}; they must match")
        test = _same_classes(test, train, cfg.test_path)
    else:
        train, test = split(train, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    return Splits(Path(cfg.path).stem, train, test)


def _same_classes(test: ImageData, train: ImageData, test_path: str) -> ImageData:
    """The test split, checked against the training split's classes: class-aware metrics compare label k
    of one with label k of the other. An unlabelled training file's test labels are dropped (unused)."""
    if not train.labelled:
        return ImageData(test.x, None, [])
    if not test.labelled:
        raise DataError(f"{test_path}: the test split has no labels, data.path has {train.num_classes} classes; "
                        f"save y (and classes) in it too")
    if test.classes != train.classes:
        i = next((i for i, (a, b) in enumerate(zip(test.classes, train.classes)) if a != b), None)
        why = (f"label {i} is {test.classes[i]!r} there and {train.classes[i]!r} in data.path" if i is not None
               else f"it has {test.num_classes} classes, data.path {train.num_classes}")
        raise DataError(f"{test_path}: the test split's classes differ from data.path's ({why}); save both with the "
                        f"same classes, in the same order")
    return test
