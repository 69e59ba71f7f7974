"""Images from a run's generator: the trainer's snapshots, gan-bench sample, and the metrics' samples.

generate() is the one way G is run for pictures (eval mode, so the running BatchNorm statistics are
used and sampling never disturbs training state); load_generator() rebuilds a trained run's model
from its folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gan_bench.atomic import atomic_path
from gan_bench.config import Config
from gan_bench.data.base import DataSpec
from gan_bench.errors import GanBenchError
from gan_bench.models import GAN, build_model
from gan_bench.registry import unknown_name_message
from gan_bench.run import files
from gan_bench.run.checkpoint import EMA_G
from gan_bench.run.folder import RunFolder

GENERATORS = ("ema", "raw")  # which G of a run load_generator gives: its weight average, or G itself


def draws_class(gan: GAN) -> bool:
    """Can this model be asked for an image of a given class?"""
    return bool(gan.conditional or gan.per_class)


def fixed_inputs(gan: GAN, cfg: Config, device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor], int]:
    """The latent grid rendered at every snapshot: one row per class, or 8 x 8 without labels."""
    g = torch.Generator().manual_seed(cfg.train.seed + 12345)
    if draws_class(gan):
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
    gan.averaged = g == "ema" and EMA_G in ckpt
    gan.G.load_state_dict(ckpt[EMA_G if gan.averaged else "G"]), gan.D.load_state_dict(ckpt["D"])
    return gan.to(device).eval(), ckpt["step"]


def sample_images(gan: GAN, *, n: int, label: Optional[str] = None, seed: int = 0,
                  device: str = "cpu") -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """n images (of one class, or of every class for class-aware models): (M, C, H, W) in [-1, 1], labels."""
    g = torch.Generator().manual_seed(seed)
    classes = gan.spec.classes
    if label is not None and not draws_class(gan):
        raise GanBenchError(f"--label {label!r}: this run's model {type(gan).__name__} is unconditional; omit --label")
    if draws_class(gan):
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
        x = generate(gan, z_all, y_all)[y_all == y[0]]
        return x, y
    return generate(gan, z, y), y


def write_samples(path: Path, x: torch.Tensor, y: Optional[torch.Tensor], classes: list[str], *, nrow: int) -> None:
    """.png: a grid (one row per class when labelled); .npz: the shared-data layout (x, y, classes)."""
    path = Path(path)
    if path.suffix not in (".png", ".npz"):
        raise GanBenchError(f"--out {str(path)!r}: expected a .png or .npz file name")
    if path.parent and not path.parent.exists():
        raise GanBenchError(f"--out {str(path)!r}: folder {str(path.parent)!r} does not exist; create it first")
    if path.suffix == ".png":
        files.save_png(path, files.grid(x, nrow))
    else:
        yy = np.zeros(len(x), np.int64) if y is None else y.cpu().numpy().astype(np.int64)
        with atomic_path(path, suffix=".npz") as tmp:  # numpy adds .npz to a name without it
            np.savez_compressed(tmp, x=files.hwc(x), y=yy, classes=np.array(classes or [""]))

