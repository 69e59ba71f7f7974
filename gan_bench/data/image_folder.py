"""`image_folder`: your own images, one sub-folder per class, read with PIL.

Layout: <data.path>/<class name>/**/<image>. Class k is the k-th sub-folder name in sorted order
(so `cat`, `dog` -> 0, 1 whatever the file system lists first). Any format PIL reads (png, jpg,
bmp, gif, webp, tiff, ppm/pgm); other files are skipped. Images become grayscale when every one
of them is grayscale, RGB otherwise (transparent pixels become black, 16-bit values are scaled
to 8 bits). Each is centre-cropped to a square and resized (bicubic, antialiased) to
data.resolution, which may be left unset only when all images already share one square size.

Also holds the threaded decoder the CelebA source uses.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional, TypeVar

import numpy as np
import torch
from PIL import Image

from gan_bench.config import DataConfig
from gan_bench.data.base import DATASETS, ImageData, Splits, split
from gan_bench.errors import ConfigError, DataError

T = TypeVar("T")
EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_CHUNK = 256  # images per thread-pool task: few futures even for 200k files


def parallel_map(work: Callable[[int], T], n: int, *, label: Callable[[int], str]) -> list[T]:
    """[work(0), ..., work(n-1)] on a thread pool (Pillow releases the GIL while it decodes and
    resamples). An image that cannot be read becomes a one-line DataError naming label(i)."""
    def run(start: int) -> list[T]:
        out = []
        for i in range(start, min(start + _CHUNK, n)):
            try:
                out.append(work(i))
            except DataError:
                raise
            except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as e:
                raise DataError(f"{label(i)}: cannot decode this image ({type(e).__name__}); "
                                f"replace or delete the file") from None
        return out

    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        return [r for chunk in pool.map(run, range(0, n, _CHUNK)) for r in chunk]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error, skip the chunks not yet started


def to_mode(img: Image.Image, mode: str) -> Image.Image:
    """Any PIL image as 'L' or 'RGB' 8-bit; alpha is composited onto black."""
    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N"):  # 16-bit grayscale (PNG, TIFF)
        a = np.asarray(img, dtype=np.float64) / 257.0
        img = Image.fromarray(np.clip(a.round(), 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img).round(), 0, 255).astype(np.uint8), "L")
    elif img.mode in ("P", "PA"):  # palettes may carry transparency: resolve it through RGBA
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        img = img.convert("RGBA")
        black = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(black, img)
    return img if img.mode == mode else img.convert(mode)


def to_array(img: Image.Image) -> np.ndarray:
    """(C, H, W) uint8 from an 'L' or 'RGB' image."""
    a = np.asarray(img, dtype=np.uint8)
    return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)


def centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def list_classes(root: Path) -> tuple[list[str], list[list[Path]]]:
    """Sorted class folder names and, for each, its image files (sorted, sub-folders included)."""
    if not root.is_dir():
        raise DataError(f"data.path {str(root)!r} is not a folder; point it at a folder with one sub-folder per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class sub-folders; put the images in {root}/<class name>/ "
                        f"(one sub-folder per class, even for a single class)")
    files = []
    for c in classes:
        found = sorted(p for p in (root / c).rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(root).parts))
        if not found:
            raise DataError(f"{root / c} holds no images ({', '.join(sorted(EXTENSIONS))}); "
                            f"add some or remove the folder")
        files.append(found)
    return classes, files


def _header(path: Path) -> tuple[str, tuple[int, int]]:
    with Image.open(path) as img:  # reads the header only
        return img.mode, img.size


def _decode(path: Path, mode: str, resolution: int) -> np.ndarray:
    with Image.open(path) as img:
        img = to_mode(img, mode)
        box = centre_square(*img.size)
        if img.size != (resolution, resolution):
            img = img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box)
        return to_array(img)


def _cap(files: list[Path], max_n: Optional[int], seed: int) -> list[Path]:
    if max_n is None or max_n >= len(files):
        return files
    keep = np.random.default_rng(seed).choice(len(files), max_n, replace=False)
    return [files[i] for i in sorted(keep)]


@DATASETS.register("image_folder", resolutions=(), channels=None, labelled=True,
                   description="your images in <data.path>/<class>/, classes = sorted sub-folder names")
def load_image_folder(cfg: DataConfig) -> Splits:
    """data.max_per_class caps each class before decoding (seeded), then the split is stratified."""
    if not cfg.path:
        raise ConfigError("data.path: image_folder needs the folder holding one sub-folder per class (set data.path)")
    root = Path(cfg.path)
    classes, per_class = list_classes(root)
    files, labels = [], []
    for k, found in enumerate(per_class):
        kept = _cap(found, cfg.max_per_class, cfg.split_seed + k)
        files += kept
        labels += [k] * len(kept)

    headers = parallel_map(lambda i: _header(files[i]), len(files), label=lambda i: str(files[i]))
    mode = "L" if all(m in GRAY_MODES for m, _ in headers) else "RGB"
    resolution = cfg.resolution
    if resolution is None:
        sizes = sorted({size for _, size in headers})
        if len(sizes) > 1 or sizes[0][0] != sizes[0][1]:
            shown = " and ".join(f"{w}x{h}" for w, h in sizes[:2])
            raise ConfigError(f"data.resolution: the images in {root} are not all one square size (found {shown}); "
                              f"set data.resolution (e.g. 64) to centre-crop and resize them")
        resolution = sizes[0][0]

    arrays = parallel_map(lambda i: _decode(files[i], mode, resolution), len(files), label=lambda i: str(files[i]))
    data = ImageData(torch.from_numpy(np.stack(arrays)), torch.tensor(labels, dtype=torch.int64), classes)
    train, test = split(data, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    return Splits(root.name, train, test)
