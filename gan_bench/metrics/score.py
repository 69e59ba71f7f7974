"""`gan-bench score FAKE REAL`: the metrics of two image sets, as torch-fidelity's `fidelity --input1
--input2` and pytorch-fid do, for images made by other tools.

FAKE and REAL are image folders (every image file below them, sorted by path; all of one size) or
.npz files (x uint8, as `gan-bench sample` writes them). FAKE takes the place of generated images and
REAL of every metric's reference (EvalContext.images and .reference), through the same registry and
the same computations as `gan-bench eval`. Metrics that need a generator (classes drawn on request, or
images drawn by the metric itself) cannot be computed from images and are refused. Domain metrics
are computed in the evaluation network of a named data set (data= its DataConfig), the Inception ones
need none. There are no real-data floors: there are no held-out images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image

from gan_bench.config import DataConfig
from gan_bench.data import ImageData, Splits, load_data
from gan_bench.data.image_folder import EXTENSIONS, GRAY_MODES, parallel_map, to_array, to_mode
from gan_bench.data.npz import read_npz
from gan_bench.errors import ConfigError, DataError, GanBenchError
from gan_bench.metrics.classifier import EPOCHS
from gan_bench.metrics.context import EvalContext, stderr_line
from gan_bench.metrics.evaluate import compute
from gan_bench.metrics.registry import METRICS

INCEPTION_DEFAULT = ("inception_fid", "inception_kid")  # what pytorch-fid and `fidelity --fid --kid` print


def read_images(path: Path, *, what: str) -> ImageData:
    """(N, C, H, W) uint8 images of a folder (recursively; grayscale when every image is) or of an
    .npz's x. Every problem is one DataError naming `what` (FAKE or REAL) and the file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} {str(path)!r} not found; give an image folder or an .npz file")
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise DataError(f"{what} {str(path)!r} is neither a folder of images nor an .npz file; give one of "
                            f"those (`gan-bench sample --out x.npz` writes one)")
        return read_npz(path, key=what)
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise DataError(f"{what} folder {str(path)!r} holds no images ({', '.join(sorted(EXTENSIONS))})")

    def header(i: int) -> tuple[str, tuple[int, int]]:
        with Image.open(files[i]) as img:  # the header only
            return img.mode, img.size

    heads = parallel_map(header, len(files), label=lambda i: str(files[i]))
    other = next((i for i, (_, size) in enumerate(heads) if size != heads[0][1]), None)
    if other is not None:
        (w0, h0), (w1, h1) = heads[0][1], heads[other][1]
        raise DataError(f"{what}: images of different sizes ({files[0].name} is {w0}x{h0}, {files[other].name} "
                        f"{w1}x{h1}); resize them to one size first (resizing changes a metric's value, so "
                        f"score does not do it for you)")
    mode = "L" if all(m in GRAY_MODES for m, _ in heads) else "RGB"

    def decode(i: int) -> np.ndarray:
        with Image.open(files[i]) as img:
            return to_array(to_mode(img, mode))

    return ImageData(torch.from_numpy(np.stack(parallel_map(decode, len(files), label=lambda i: str(files[i])))),
                     None, [])


def check_names(names: Sequence[str], *, with_data: bool) -> None:
    """Before any work: every name is a metric that two image sets can give (in a data set's network
    only with one named)."""
    images = [e.name for e in METRICS if e.info.from_images and (with_data or e.info.kind == "inception")]
    for n in names:
        info = METRICS.info(n)  # unknown name: ConfigError listing the valid ones
        if not info.from_images:
            raise ConfigError(f"metric {n!r} needs a generator (it draws images of chosen classes or its own); "
                              f"score computes metrics of two image sets: {', '.join(images)}")
        if info.kind != "inception" and not with_data:
            raise ConfigError(f"metric {n!r} is computed in a data set's evaluation network; name the data set with "
                              f"--dataset NAME (its images' size), or choose Inception metrics: "
                              f"{', '.join(e.name for e in METRICS if e.info.kind == 'inception')}")


def _subset(x: ImageData, n: Optional[int], seed: int, what: str) -> ImageData:
    if n is None:
        return x
    if n > len(x):
        raise ConfigError(f"--samples {n} but {what} has {len(x)} images; lower --samples or give more images")
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return ImageData(x.x[pick], None, [])


def score(fake: Path, real: Path, *, metrics: Optional[Sequence[str]] = None, samples: Optional[int] = None,
          data: Optional[DataConfig] = None, seed: int = 0, device: str | torch.device = "cpu",
          cache_dir: Optional[Path] = None, inception_weights: Optional[Path] = None, classifier_epochs: int = EPOCHS,
          log: Callable[[str], None] = stderr_line,
          skipped: Optional[Callable[[str], None]] = None) -> dict[str, dict[str, Any]]:
    """{metric: its numbers} of FAKE against REAL. metrics None: inception_fid and inception_kid, or
    with a data set the default metrics of its network that images give. samples: that many images of
    each set (a seeded subset; default all). A metric skipped for want of its network is told to
    `skipped` (default log); GanBenchError when every metric asked for was skipped."""
    names = list(dict.fromkeys(metrics)) if metrics is not None else (
        [e.name for e in METRICS if e.info.default and e.info.from_images and e.info.kind != "inception"]
        if data is not None else list(INCEPTION_DEFAULT))
    check_names(names, with_data=data is not None)
    x_fake, x_real = read_images(fake, what="FAKE"), read_images(real, what="REAL")
    if x_fake.x.shape[1:] != x_real.x.shape[1:]:
        raise DataError(f"FAKE images are {_shape(x_fake)} and REAL images {_shape(x_real)}; give images of one size "
                        f"and colour mode")
    if data is not None:
        splits = load_data(data)
        if tuple(x_fake.x.shape[1:]) != tuple(splits.train.x.shape[1:]):
            raise DataError(f"the images are {_shape(x_fake)}, the evaluation network of {splits.name!r} reads "
                            f"{_shape(splits.train)}; name the data set they are of (--dataset, --set data.*)")
    else:
        splits = Splits(Path(real).stem or "REAL", x_real, x_real)  # Inception metrics read only its name
    x_fake, x_real = _subset(x_fake, samples, seed, "FAKE"), _subset(x_real, samples, seed, "REAL")
    ctx = EvalContext(None, splits, len(x_fake), seed=seed, device=torch.device(device), cache_dir=cache_dir,
                      inception_weights=inception_weights, classifier_epochs=classifier_epochs, log=log,
                      images=x_fake, reference=x_real)
    said: list[str] = []
    results = compute(ctx, names, explicit=True, skipped=said.append)
    if not results and said:  # every metric asked for was skipped: the command failed
        raise GanBenchError("; ".join(said))
    for line in said:
        (skipped or log)(line)
    return results


def _shape(x: ImageData) -> str:
    c, h, w = x.x.shape[1:]
    return f"{h}x{w} {'grayscale' if c == 1 else 'RGB'}"
