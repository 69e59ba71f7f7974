"""Sampling from a trained run: by class name, or n of every class; PNG grid or .npz."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from gan_bench import run_folder as rf
from gan_bench.atomic import atomic_path
from gan_bench.data.base import DataSpec
from gan_bench.errors import GanBenchError
from gan_bench.models import GAN, build_model
from gan_bench.registry import unknown_name_message
from gan_bench.train.checkpoint import load_checkpoint
from gan_bench.train.loop import generate, resume_config


def load_generator(run: Path, *, checkpoint: str = "last", device: str = "cpu") -> GAN:
    """Rebuild a run's model from its config.yaml and checkpoint."""
    cfg = resume_config(run)
    ckpt = load_checkpoint(Path(run) / "checkpoints" / f"{checkpoint}.pt", config_hash=cfg.hash())
    gan = build_model(cfg.model, DataSpec(**ckpt["spec"]))
    gan.G.load_state_dict(ckpt["G"]), gan.D.load_state_dict(ckpt["D"])
    return gan.to(device).eval()


def sample_images(gan: GAN, *, n: int, label: Optional[str] = None, seed: int = 0,
                  device: str = "cpu") -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """n images (of one class, or of every class for class-aware models): (M, C, H, W) in [-1, 1], labels."""
    g = torch.Generator().manual_seed(seed)
    classes = gan.spec.classes
    if label is not None and not (gan.conditional or gan.per_class):
        raise GanBenchError(f"--label {label!r}: this run's model {type(gan).__name__} is unconditional; omit --label")
    if gan.conditional or gan.per_class:
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
        rf.save_png(path, rf.grid(x, nrow))
    else:
        yy = np.zeros(len(x), np.int64) if y is None else y.cpu().numpy().astype(np.int64)
        with atomic_path(path, suffix=".npz") as tmp:  # numpy adds .npz to a name without it
            np.savez_compressed(tmp, x=rf.to_uint8(x), y=yy, classes=np.array(classes or [""]))
