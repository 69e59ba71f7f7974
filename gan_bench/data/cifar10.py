"""CIFAR-10: 32x32 RGB, 10 classes, the official 50k train / 10k test split.

Local python batches (<data.root>/cifar-10-batches-py/, the folder the official tarball unpacks to)
are read here directly, with format checks but no md5 check: torchvision would refuse any copy whose
md5s differ from the official ones (a re-pickled or cut-down copy), so it is used only as the
download path, where it fetches the tarball and verifies every md5.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from gan_bench.config import DataConfig
from gan_bench.data.base import DATASETS, ImageData, Splits
from gan_bench.data.download import folders_kept_only_if_used
from gan_bench.errors import DataError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
ALL_FILES = TRAIN_FILES + TEST_FILES + [META_FILE]


def _unpickle(path: Path) -> dict[str, object]:
    """A batch file as a dict with str keys (the official files are Python 2 pickles)."""
    try:
        with open(path, "rb") as f:
            entry = pickle.load(f, encoding="latin1")
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{path} is truncated or corrupt ({type(e).__name__}); replace it with the file "
                        f"from cifar-10-python.tar.gz (see datasets/README.md)") from None
    if not isinstance(entry, dict):
        raise DataError(f"{path}: expected a pickled dict (CIFAR-10 python format), got {type(entry).__name__}")
    return {k.decode("latin1") if isinstance(k, bytes) else str(k): v for k, v in entry.items()}


def read_batches(folder: Path, files: list[str], classes: list[str]) -> ImageData:
    """Read python batches: b'data' (n, 3072) uint8 rows (R, G, B planes of 32x32) and b'labels'."""
    xs, ys = [], []
    for name in files:
        entry = _unpickle(folder / name)
        data, labels = entry.get("data"), entry.get("labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
            got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
            raise DataError(f"{folder / name}: 'data' must be an N x 3072 uint8 array, got {got}")
        labels = np.asarray(labels if labels is not None else [], dtype=np.int64)
        if labels.shape != (len(data),) or (len(labels) and (labels.min() < 0 or labels.max() >= len(classes))):
            raise DataError(f"{folder / name}: 'labels' must be {len(data)} integers in 0..{len(classes) - 1}")
        xs.append(data.reshape(-1, 3, 32, 32))  # (n, C, H, W): rows are channel planes, row-major
        ys.append(labels)
    return ImageData(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)), classes)


def read_local(folder: Path) -> Splits:
    meta = _unpickle(folder / META_FILE)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(f"{folder / META_FILE}: no 'label_names' list; replace it with the official file")
    classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    return Splits("cifar10", read_batches(folder, TRAIN_FILES, classes), read_batches(folder, TEST_FILES, classes))


def download_with_torchvision(root: Path, download: bool, missing: list[str]) -> Splits:
    """torchvision fetches cifar-10-python.tar.gz into root and checks the md5 of every file."""
    import torchvision.datasets as tvd

    out = {}
    for part, train in (("train", True), ("test", False)):
        try:
            with folders_kept_only_if_used(root):  # a failed download leaves no empty folder
                ds = tvd.CIFAR10(str(root), train=train, download=download)
        except Exception as e:  # offline: URLError/OSError; bad md5 or absent files: RuntimeError
            why = "data.download is false" if not download else f"the download failed ({type(e).__name__})"
            absent = "not found" if len(missing) == len(ALL_FILES) else f"incomplete (no {', '.join(missing)})"
            raise DataError(f"CIFAR-10 python batches {absent} in {root / FOLDER} and {why}; "
                            f"put the files there by hand, see datasets/README.md") from None
        x = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))  # (N, 32, 32, 3) -> (N, 3, 32, 32)
        out[part] = ImageData(x, torch.tensor(ds.targets, dtype=torch.int64), list(ds.classes))
    return Splits("cifar10", out["train"], out["test"])


@DATASETS.register("cifar10", resolutions=(32, 64), channels=3, labelled=True,
                   description="CIFAR-10 (python batches; torchvision downloads), 50k train / 10k test")
def load_cifar10(cfg: DataConfig) -> Splits:
    """The official split; data.resolution 64 is applied by load_data (antialiased resize)."""
    root = Path(cfg.root)
    missing = [n for n in ALL_FILES if not (root / FOLDER / n).is_file()]
    if not missing:
        return read_local(root / FOLDER)
    return download_with_torchvision(root, cfg.download, missing)
