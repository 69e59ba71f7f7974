"""An example plugin: a model the DCGAN paper does not have, and a data set read from a CSV of image paths.

    gan-bench run examples/shapes_resdcgan.yaml            # the config names this file in `plugins:`
    gan-bench run configs/demo.yaml --plugin examples/resnet_gan.py --set model.name=resdcgan
    gan-bench run configs/demo.yaml --plugin examples/resnet_gan.py --set model.name=resdcgan --set model.blocks=2
    gan-bench list --plugin examples/resnet_gan.py         # resdcgan and csv_images beside the built-ins

It imports nothing of gan-bench but its public API (gan_bench/api.py): copy it anywhere and change it.
"""
from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from gan_bench import (GAN, ConfigError, DataConfig, DataError, DataSpec, ImageData, ModelConfig, Splits, option,
                       register_dataset, register_model, split)

# ---- the data set: one image path and one class name per CSV row ---------------------------------------


@dataclass
class CsvOptions:
    """Its own config keys, data.image_column and data.label_column, typed and checked like all others."""

    image_column: str = option("path", help="the column of image paths (relative to the CSV's folder)")
    label_column: Optional[str] = option("label", help="the column of class names; null: unlabelled")


def read_csv(path: Path, cfg: DataConfig, *, classes: Optional[list[str]] = None,
             resolution: Optional[int] = None) -> ImageData:
    """The images a CSV lists, centre-cropped and resized to `resolution` (None: they must share one
    square size); grey when every image is, RGB otherwise. Class k is the k-th sorted class name, or
    that of `classes` (a test file takes the training file's)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # -sig: a BOM some spreadsheets write is dropped
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise DataError(f"data.path {str(path)!r}: cannot read it ({e.strerror}); give a CSV file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.object[e.start]:#04x} at position {e.start}); save the CSV "
                        f"as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{path} is not a readable CSV ({e}); fix the file") from None
    if not rows:
        raise DataError(f"{path} lists no images; give it a header and one row per image")
    for column in (cfg.image_column, cfg.label_column):
        if column is not None and column not in rows[0]:
            raise DataError(f"{path} has no column {column!r} (it has {', '.join(map(str, rows[0]))}); set "
                            f"data.image_column or data.label_column")
    for line, r in enumerate(rows, 2):  # line 1 is the header
        for column in (cfg.image_column, cfg.label_column):
            if column is not None and not (r.get(column) or "").strip():  # a short row's missing cells are None
                raise DataError(f"{path} line {line}: no value in column {column!r}; fill it in or remove the row")
    names = [r[cfg.label_column] for r in rows] if cfg.label_column else None
    classes = classes or (sorted(set(names)) if names else [])
    if names and not set(names) <= set(classes):
        raise DataError(f"{path}: class {sorted(set(names) - set(classes))[0]!r} is not one of the training file's")
    images = []
    for r in rows:
        file = path.parent / r[cfg.image_column]
        try:
            with warnings.catch_warnings():  # a huge image is refused, not decoded into gigabytes
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(file) as img:
                    img.load()  # decoded now: the file is closed, however many rows there are
                    images.append(img)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
            raise DataError(f"{path}: image {file} is too large to decode safely ({str(e).split(', could')[0]}); "
                            f"resize it") from None
        except (OSError, ValueError, SyntaxError) as e:  # Pillow's kinds for a truncated or foreign file
            raise DataError(f"{path}: cannot read image {file} ({type(e).__name__}); fix that row") from None
    sizes = sorted({img.size for img in images})
    if resolution is None and (len(sizes) > 1 or sizes[0][0] != sizes[0][1]):
        raise ConfigError(f"data.resolution: the images {path} lists are not all one square size (found "
                          f"{' and '.join(f'{w}x{h}' for w, h in sizes[:2])}); set data.resolution to resize them")
    mode = "L" if all(img.mode in ("1", "L", "LA") for img in images) else "RGB"
    x = np.stack([_square(img.convert(mode), resolution or sizes[0][0]) for img in images])
    x = x[:, None] if mode == "L" else x.transpose(0, 3, 1, 2)  # (N, C, H, W)
    y = torch.tensor([classes.index(n) for n in names]) if names else None
    return ImageData(torch.from_numpy(np.ascontiguousarray(x)), y, classes)


def _square(img: Image.Image, side: int) -> np.ndarray:
    """The centre square of an image, resized to side x side: (H, W) or (H, W, 3) uint8."""
    if img.size != (side, side):
        s = min(img.size)
        box = ((img.width - s) // 2, (img.height - s) // 2, (img.width + s) // 2, (img.height + s) // 2)
        img = img.resize((side, side), Image.Resampling.BICUBIC, box=box)
    return np.asarray(img, dtype=np.uint8)


@register_dataset("csv_images", options=CsvOptions, named_by_file=True,
                  description="images listed in a CSV (data.path): a path and a class name per row")
def csv_images(cfg: DataConfig) -> Splits:
    if not cfg.path:
        raise ConfigError("data.path: csv_images needs the CSV file listing the images (set data.path)")
    data = read_csv(Path(cfg.path), cfg, resolution=cfg.resolution)
    if cfg.test_path:
        train, test = data, read_csv(Path(cfg.test_path), cfg, classes=data.classes, resolution=data.resolution)
    else:
        train, test = split(data, test_fraction=cfg.test_fraction, seed=cfg.split_seed)
    return Splits(Path(cfg.path).stem, train, test)


# ---- the model: a ResNet generator and a spectral-norm ResNet discriminator (SNGAN-like) ----------------


def plan(resolution: int) -> tuple[int, int]:
    """(start size, doublings): 28 = 7 x 2 x 2, 32 = 4 x 2 x 2 x 2, 64 = 4 x 2**4."""
    start = 7 if resolution % 7 == 0 else 4
    return start, (resolution // start).bit_length() - 1


@dataclass
class ResOptions:
    """The model's own config key, model.blocks, typed and checked like all others; the factory reads it as
    cfg.blocks."""

    blocks: int = option(1, lo=1, hi=8, help="residual blocks at each image size of G and D (1: SNGAN's shape)")


class UpBlock(nn.Module):
    """BN, ReLU, 2x upsampling, 3x3 conv, BN, ReLU, 3x3 conv; plus the upsampled input (1x1 conv).
    up=False: a block that keeps the size (model.blocks > 1), its input added as it is."""

    def __init__(self, cin: int, cout: int, *, up: bool = True) -> None:
        super().__init__()
        self.main = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Upsample(scale_factor=2) if up else nn.Identity(),
                                  nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                                  nn.Conv2d(cout, cout, 3, 1, 1))
        self.skip = nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 1)) if up else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, s, s) -> (B, cout, 2s, 2s), or (B, cout, s, s)
        return self.main(x) + self.skip(x)


class DownBlock(nn.Module):
    """Spectral-norm 3x3 convs and 2x average pooling, no BatchNorm (Miyato et al. 2018); plus the pooled
    input through a spectral-norm 1x1 conv. The first block takes the image itself, not an activation.
    down=False: a block that keeps the size (model.blocks > 1), its input added as it is."""

    def __init__(self, cin: int, cout: int, *, first: bool, down: bool = True) -> None:
        super().__init__()
        self.main = nn.Sequential(*([] if first else [nn.LeakyReLU(0.2)]), spectral_norm(nn.Conv2d(cin, cout, 3, 1, 1)),
                                  nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(cout, cout, 3, 1, 1)),
                                  nn.AvgPool2d(2) if down else nn.Identity())
        self.skip = nn.Sequential(nn.AvgPool2d(2), spectral_norm(nn.Conv2d(cin, cout, 1))) if down else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, cin, s, s) -> (B, cout, s/2, s/2), or (B, cout, s, s)
        return self.main(x) + self.skip(x)


class ResG(nn.Module):
    def __init__(self, *, nz: int, width: int, channels: int, resolution: int, blocks: int = 1) -> None:
        super().__init__()
        self.start, n = plan(resolution)
        ch = [width * 2 ** (n - i) for i in range(n + 1)]  # width 64 at 28 px: 256, 128, 64
        self.project = nn.Linear(nz, ch[0] * self.start ** 2)
        # each size: one upsampling block, then blocks - 1 that keep it (one flat list: blocks=1 is SNGAN's layout)
        self.blocks = nn.Sequential(*(m for a, b in zip(ch, ch[1:])
                                      for m in [UpBlock(a, b), *(UpBlock(b, b, up=False) for _ in range(blocks - 1))]))
        self.out = nn.Sequential(nn.BatchNorm2d(ch[-1]), nn.ReLU(), nn.Conv2d(ch[-1], channels, 3, 1, 1), nn.Tanh())

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.project(z).view(len(z), -1, self.start, self.start)  # (B, ch0, start, start)
        return self.out(self.blocks(x))                                # (B, C, H, W) in [-1, 1]


class SND(nn.Module):
    def __init__(self, *, width: int, channels: int, resolution: int, blocks: int = 1) -> None:
        super().__init__()
        _, n = plan(resolution)
        ch = [channels] + [width * 2 ** i for i in range(n)]  # width 64 at 28 px: C, 64, 128
        self.blocks = nn.Sequential(*(m for i, (a, b) in enumerate(zip(ch, ch[1:])) for m in [
            DownBlock(a, b, first=i == 0), *(DownBlock(b, b, first=False, down=False) for _ in range(blocks - 1))]))
        self.head = spectral_norm(nn.Linear(ch[-1], 1))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.blocks(x), 0.2).sum(dim=(2, 3))  # global sum pooling: (B, ch)
        return self.head(h).flatten()                                       # (B,) logits


@register_model("resdcgan", resolutions=(28, 32, 64), options=ResOptions,
                description="ResNet-block G, spectral-norm ResNet D (SNGAN-like; an example plugin)")
def resdcgan(spec: DataSpec, cfg: ModelConfig) -> GAN:
    kw = dict(width=cfg.width, channels=spec.channels, resolution=spec.resolution, blocks=cfg.blocks)
    return GAN(ResG(nz=cfg.nz, **kw), SND(**kw), nz=cfg.nz, spec=spec, conditional=False)
