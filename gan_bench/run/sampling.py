"""Images from a run's generator: the trainer's snapshots, gan-bench sample, and the metrics' samples.

generate() is the one way G is run for pictures (eval mode, so the running BatchNorm statistics are
used and sampling never disturbs training state); load_generator() rebuilds a trained run's model
from its folder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

from gan_bench.atomic import atomic_path
from gan_bench.config import Config
from gan_bench.data.base import DataSpec
from gan_bench.errors import GanBenchError
from gan_bench.models import GAN, build_model
from gan_bench.registry import unknown_name_message
from gan_bench.run import files
from gan_bench.run.checkpoint import EMA_G, load_weights
from gan_bench.run.folder import RunFolder

GENERATORS = ("ema", "raw")  # which G of a run load_generator gives: its weight average, or G itself


def fixed_inputs(gan: GAN, cfg: Config, device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """The latent grid rendered at every snapshot: one row per class, or 8 x 8 without labels."""
    g = torch.Generator().manual_seed(cfg.train.seed + 12345)
    if gan.draws_class:
        k, n = gan.num_classes, cfg.train.grid_per_class
        z = torch.randn(k * n, gan.nz, generator=g)
        # row-major grid (row = class); per-class models want class-fastest order, see generate()
        return z.to(device), torch.arange(k).repeat_interleave(n).to(device), n
    return torch.randn(64, gan.nz, generator=g).to(device), None, 8


@torch.no_grad()
def generate(gan: GAN, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """G(z, y) in eval mode (running BN statistics): (B, C, H, W) in [-1, 1]."""
    was = gan.G.training
    gan.G.eval()
    try:
        if gan.per_class:  # pairs take class-fastest batches: reorder row-major input, then restore
            k = gan.num_classes
            idx = torch.arange(len(y), device=y.device).view(k, -1).T.reshape(-1)
            return gan.G(z[idx], y[idx])[torch.argsort(idx)]
        return gan.G(z, y)
    finally:
        gan.G.train(was)


def load_generator(run: RunFolder, *, checkpoint: str = "last", device: str | torch.device = "cpu",
                   g: str = "ema") -> tuple[GAN, int]:
    """A run's model rebuilt from its config.yaml and checkpoint, in eval mode, and the checkpoint's step.
    g: "ema" loads the moving average of G's weights when the run kept one (train.ema; gan.averaged
    says so), "raw" the trained G itself."""
    if g not in GENERATORS:
        raise GanBenchError(f"g must be one of {', '.join(GENERATORS)}, got {g!r}")
    cfg = run.read_config()
    ckpt = run.load_checkpoint(cfg, checkpoint)
    gan = build_model(cfg.model, DataSpec(**ckpt["spec"]))
    load_weights(gan, ckpt, model=cfg.model.name)
    gan.averaged = g == "ema" and EMA_G in ckpt
    if gan.averaged:  # the G a run shows (train.ema); raw G and D stay as trained
        gan.G.load_state_dict(ckpt[EMA_G])
    return gan.to(device).eval(), ckpt["step"]


CHUNK = 500            # images per forward pass of G (bounds the activations' memory)
MAX_GRID_IMAGES = 10_000  # a PNG of more cells than this is unreadable (100 x 100 at most)


def check_sample_size(gan: GAN, *, n: int, label: Optional[str], png: bool) -> None:
    """Refuse, before generating, a request that cannot be a readable grid or does not fit in memory."""
    per_call = n * (gan.num_classes if gan.draws_class and label is None else 1)
    if png and per_call > MAX_GRID_IMAGES:
        raise GanBenchError(f"-n {n}: a grid of {per_call:,} images is too large to look at (at most "
                            f"{MAX_GRID_IMAGES:,}); lower -n, or write an .npz")
    spec = gan.spec
    need = per_call * spec.channels * spec.resolution ** 2 * 5  # float32 images + their uint8 copy
    free = _available_memory()
    if free is not None and need > free // 2:
        most = max(1, (free // 2) // (5 * spec.channels * spec.resolution ** 2) // max(1, per_call // n))
        raise GanBenchError(f"-n {n}: {per_call:,} images need {need / 2**30:.1f} GiB, more than half the "
                            f"{free / 2**30:.1f} GiB of memory free here; lower -n to at most {most:,}")


def _available_memory() -> Optional[int]:
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not on this OS: no limit known
        return None


def generate_chunked(gan: GAN, z: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """generate() in passes of about CHUNK images: the same images up to float rounding (G runs in eval
    mode, so an image does not depend on its batch; only a kernel's summation order may). Per-class
    models get whole class-fastest groups per pass."""
    if len(z) <= CHUNK:
        return generate(gan, z, y)
    if gan.per_class:  # row-major (K, n): pass j takes columns j .. j + m of every class
        k = gan.num_classes
        zk, yk = z.view(k, -1, z.shape[-1]), y.view(k, -1)
        m = max(1, CHUNK // k)
        parts = [generate(gan, zk[:, j:j + m].reshape(-1, z.shape[-1]), yk[:, j:j + m].reshape(-1))
                 .view(k, -1, *gan_shape(gan)) for j in range(0, zk.shape[1], m)]
        return torch.cat(parts, 1).reshape(-1, *gan_shape(gan))
    return torch.cat([generate(gan, zc, None if y is None else y[i:i + CHUNK])
                      for i, zc in zip(range(0, len(z), CHUNK), z.split(CHUNK))])


def gan_shape(gan: GAN) -> tuple[int, int, int]:
    return gan.spec.channels, gan.spec.resolution, gan.spec.resolution


def sample_images(gan: GAN, *, n: int, label: Optional[str] = None, seed: int = 0,
                  device: str = "cpu") -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """n images (of one class, or of every class for class-aware models): (M, C, H, W) in [-1, 1], labels."""
    g = torch.Generator().manual_seed(seed)
    classes = gan.spec.classes
    if label is not None and not gan.draws_class:
        raise GanBenchError(f"--label {label!r}: this run's model {type(gan).__name__} is unconditional; omit --label")
    if gan.draws_class:
        if label is not None and label not in classes:
            raise GanBenchError(unknown_name_message("class", label, classes))
        ks = [classes.index(label)] if label is not None else range(len(classes))
        y = torch.tensor([k for k in ks for _ in range(n)], device=device)
    else:
        y = None
    z = torch.randn(len(y) if y is not None else n, gan.nz, generator=g).to(device)
    if gan.per_class and label is not None:  # a pair-per-class model generates every class at once
        y_all = torch.arange(len(classes), device=device).repeat_interleave(n)
        z_all = torch.randn(len(y_all), gan.nz, generator=g).to(device)
        z_all[y_all == y[0]] = z
        x = generate_chunked(gan, z_all, y_all)[y_all == y[0]]
        return x, y
    return generate_chunked(gan, z, y), y


def write_samples(path: Path, x: torch.Tensor, y: Optional[torch.Tensor], classes: list[str], *, nrow: int,
                  row_labels: Optional[list[str]] = None) -> None:
    """.png: a grid (row_labels: one name per row, written at its left); .npz: the shared-data layout
    (x, y, classes)."""
    check_samples_path(path)
    path = Path(path)
    if path.suffix == ".png":
        array = files.grid(x, nrow, labels=row_labels)
        with atomic_path(path, suffix=".png") as tmp:
            Image.fromarray(array).save(tmp)
    else:
        yy = np.zeros(len(x), np.int64) if y is None else y.cpu().numpy().astype(np.int64)
        with atomic_path(path, suffix=".npz") as tmp:  # numpy adds .npz to a name without it
            np.savez_compressed(tmp, x=files.hwc(x), y=yy, classes=np.array(classes or [""]))


def check_samples_path(path: Path) -> None:
    """--out of `gan-bench sample`: a .png or .npz name in a folder that exists and is writable
    (checked before any image is generated)."""
    path = Path(path)
    if path.suffix not in (".png", ".npz"):
        raise GanBenchError(f"--out {str(path)!r}: expected a .png or .npz file name")
    folder = path.parent
    if not folder.exists() or not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise GanBenchError(f"--out {str(path)!r}: {str(folder)!r} {what}; give a file name in an existing folder")
    if path.is_dir():
        raise GanBenchError(f"--out {str(path)!r} is a folder; give a file name such as samples.png")
    if not os.access(folder, os.W_OK):
        raise GanBenchError(f"--out {str(path)!r}: folder {str(folder)!r} is not writable; choose another")

