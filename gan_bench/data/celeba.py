"""CelebA aligned faces (unlabelled): centre crop of the 178x218 aligned image, resized with PIL.

Sources, first found wins:
  1. <data.root>/celeba/img_align_celeba/*.jpg   (the unpacked official zip)
  2. <data.root>/celeba/img_align_celeba.zip     (read in place, not unpacked)
  3. torchvision.datasets.CelebA(split='all', download=True), which fetches the zip from Google
     Drive (needs the `gdown` package; Drive often refuses with a quota error), then 1.
Images are taken in file-name order (000001.jpg, ...); data.max_per_class keeps the first N, so
5,000 gives the same faces as the shared celeba64.npz. The train/test split is base.split with
data.test_fraction and data.split_seed (the official partition file is not needed).
"""
from __future__ import annotations

import io
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from PIL import Image

from gan_bench.config import DataConfig, option
from gan_bench.data.base import DATASETS, ImageData, Splits, split
from gan_bench.data.download import folders_kept_only_if_used
from gan_bench.data.image_folder import parallel_map, to_array
from gan_bench.errors import DataError

ALIGNED_WIDTH = 178  # data.crop is measured in pixels of the 178x218 aligned image
SUFFIXES = (".jpg", ".jpeg", ".png")
DEFAULT_RESOLUTION = 64


def crop_box(width: int, height: int, crop: int) -> tuple[float, float, float, float]:
    """The centred crop x crop square of a 178x218 image, scaled for other sizes (89x109 -> 70x70)."""
    side = min(crop * width / ALIGNED_WIDTH, width, height)
    cx, cy = width / 2, height / 2
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2


def preprocess(img: Image.Image, *, crop: int, resolution: int) -> np.ndarray:
    """(3, resolution, resolution) uint8: centre crop, then bicubic resize (PIL antialiases downscaling)."""
    img = img.convert("RGB")
    box = crop_box(*img.size, crop)
    return to_array(img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box))


class _Zip:
    """Members of one zip, each thread with its own handle (a shared ZipFile is not safe to read from threads)."""

    def __init__(self, path: Path) -> None:
        self.path, self._local, self._handles = path, threading.local(), []
        try:
            with zipfile.ZipFile(path) as z:
                self.names = sorted(n for n in z.namelist() if n.lower().endswith(SUFFIXES)
                                    and not n.startswith("__MACOSX/") and not Path(n).name.startswith("."))
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise DataError(f"{path} is truncated or corrupt ({type(e).__name__}); replace the file") from None

    def open(self, name: str) -> Image.Image:
        z = getattr(self._local, "zip", None)
        if z is None:
            z = self._local.zip = zipfile.ZipFile(self.path)
            self._handles.append(z)
        try:
            data = z.read(name)
        except (zipfile.BadZipFile, EOFError) as e:  # a bad CRC or a cut member: report it as this file's error
            raise OSError(str(e)) from None
        return Image.open(io.BytesIO(data))

    def close(self) -> None:
        for z in self._handles:
            z.close()


def decode_faces(names: list[str], opener: Callable[[str], Image.Image], *, where: str, crop: int,
                 resolution: int) -> np.ndarray:
    """(N, 3, resolution, resolution) uint8, decoded on a thread pool into one preallocated array."""
    out = np.empty((len(names), 3, resolution, resolution), np.uint8)

    def work(i: int) -> None:
        with opener(names[i]) as img:
            out[i] = preprocess(img, crop=crop, resolution=resolution)

    parallel_map(work, len(names), label=lambda i: f"{where}/{names[i]}")
    return out


def _download(root: Path) -> list[str]:
    """The image names after torchvision has fetched and unpacked CelebA into root/celeba/."""
    import torchvision.datasets as tvd

    try:
        with folders_kept_only_if_used(root / "celeba"):  # a failed download leaves no empty folder
            ds = tvd.CelebA(str(root), split="all", target_type=[], download=True)
    except Exception as e:  # offline: URLError/OSError; no gdown: ModuleNotFoundError; Drive quota: RuntimeError
        why = " ".join(str(e).split())[:120]
        raise DataError(f"CelebA not found in {root / 'celeba'} and torchvision could not download it "
                        f"({type(e).__name__}: {why}); put img_align_celeba.zip there by hand, "
                        f"see datasets/README.md") from None
    return list(ds.filename)


def read_faces(root: Path, *, download: bool, crop: int, resolution: int, max_n: Optional[int]) -> np.ndarray:
    """All (or the first max_n) aligned faces from the first source found, preprocessed."""
    folder, archive = root / "celeba" / "img_align_celeba", root / "celeba" / "img_align_celeba.zip"
    names = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in SUFFIXES
                   and not p.name.startswith(".")) if folder.is_dir() else []
    if not names and archive.is_file():
        z = _Zip(archive)
        try:
            if not z.names:
                raise DataError(f"{archive} holds no .jpg images; replace it with the official img_align_celeba.zip")
            return decode_faces(z.names[:max_n], z.open, where=str(archive), crop=crop, resolution=resolution)
        finally:
            z.close()
    if not names:
        if not download:
            raise DataError(f"no CelebA images in {folder} or {archive} and data.download is false; "
                            f"put the files there by hand, see datasets/README.md")
        names = _download(root)
    return decode_faces(names[:max_n], lambda n: Image.open(folder / n), where=str(folder), crop=crop,
                        resolution=resolution)


@dataclass
class CelebaOptions:
    # side of the centre crop, in pixels of the 178x218 aligned image, taken before resizing (140 is the
    # usual choice; 108 is the DCGAN-tensorflow one)
    crop: int = option(140, lo=16, hi=178)


@DATASETS.register("celeba", resolutions=(64, 128), channels=3, labelled=False, options=CelebaOptions,
                   description="CelebA aligned faces, 140x140 centre crop (data.crop), unlabelled")
def load_celeba(cfg: DataConfig) -> Splits:
    """Faces at data.resolution (64 by default); data.max_per_class caps the total (one group)."""
    x = read_faces(Path(cfg.root), download=cfg.download, crop=cfg.crop,
                   resolution=cfg.resolution or DEFAULT_RESOLUTION, max_n=cfg.max_per_class)
    train, test = split(ImageData(torch.from_numpy(x), None, []), test_fraction=cfg.test_fraction,
                        seed=cfg.split_seed)
    return Splits("celeba", train, test)
