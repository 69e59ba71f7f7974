"""The loop everyone writes, kept only to be compared against gan-bench's trainer.

It trains the way pytorch/examples' dcgan/main.py and the Quick, Draw! seeds do: a map-style
Dataset handing out PIL images through torchvision transforms (ToTensor, Normalize to [-1, 1]),
a DataLoader with shuffling and worker processes (num_workers=2, what a user sets on a 2-core
machine), eager float32, and the example's step: D on a real batch (backward), D on a fake batch
(backward), D's optimiser step, then G against D's "real" label; each step reads D(x), D(G(z)) and
the losses back with .item() for the progress line, as the example does (the lines are kept in a
list instead of printed). G and D are the very modules gan-bench builds (build_model), with the
trainer's Adam(2e-4, (0.5, 0.999)) and BCE on logits, so only the loop around them differs.
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from gan_bench.data.base import ImageData
from gan_bench.models import GAN


class ImageDataset(Dataset):
    """uint8 images as a map-style dataset: item i is (transform(PIL image), label)."""

    def __init__(self, data: ImageData, transform) -> None:
        x = data.x.permute(0, 2, 3, 1).numpy()  # (N, H, W, C), the layout PIL reads
        self.x = x[..., 0] if x.shape[-1] == 1 else x
        self.y = np.zeros(len(data), np.int64) if data.y is None else data.y.numpy()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(Image.fromarray(self.x[i])), int(self.y[i])


def make_loader(data: ImageData, *, batch_size: int = 128, num_workers: int = 2, seed: int = 0) -> DataLoader:
    """The example's DataLoader: shuffled, worker processes, the last partial batch dropped."""
    channels = data.channels
    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5,) * channels, (0.5,) * channels)])
    return DataLoader(ImageDataset(data, transform), batch_size=batch_size, shuffle=True,
                      num_workers=num_workers, drop_last=True,
                      generator=torch.Generator().manual_seed(seed))


class ReferenceTrainer:
    """The example's optimisers and criterion around gan-bench's G and D (not per-class models)."""

    def __init__(self, gan: GAN, *, device: torch.device, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999)) -> None:
        if gan.per_class:
            raise ValueError("the reference loop trains one G/D pair; per-class models have no reference")
        self.gan, self.device = gan, device
        self.opt_d = torch.optim.Adam(gan.D.parameters(), lr=lr, betas=betas)
        self.opt_g = torch.optim.Adam(gan.G.parameters(), lr=lr, betas=betas)
        self.criterion = nn.BCEWithLogitsLoss()
        self.lines: list[str] = []

    def step(self, real: torch.Tensor, y: Optional[torch.Tensor]) -> None:
        """pytorch/examples dcgan/main.py's step, with logits instead of a Sigmoid in D."""
        gan, device = self.gan, self.device
        real = real.to(device)
        y = y.to(device) if gan.conditional else None
        b = real.size(0)
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        gan.D.zero_grad()
        label = torch.full((b,), 1.0, dtype=real.dtype, device=device)
        output = gan.D(real, y)
        err_d_real = self.criterion(output, label)
        err_d_real.backward()
        d_x = torch.sigmoid(output).mean().item()
        noise = torch.randn(b, gan.nz, device=device)
        fake = gan.G(noise, y)
        label.fill_(0.0)
        output = gan.D(fake.detach(), y)
        err_d_fake = self.criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = torch.sigmoid(output).mean().item()
        err_d = err_d_real + err_d_fake
        self.opt_d.step()
        # (2) update G: maximize log(D(G(z)))
        gan.G.zero_grad()
        label.fill_(1.0)
        output = gan.D(fake, y)
        err_g = self.criterion(output, label)
        err_g.backward()
        d_g_z2 = torch.sigmoid(output).mean().item()
        self.opt_g.step()
        self.lines.append(f"Loss_D: {err_d.item():.4f} Loss_G: {err_g.item():.4f} "
                          f"D(x): {d_x:.4f} D(G(z)): {d_g_z1:.4f} / {d_g_z2:.4f}")

    def run(self, loader: DataLoader, *, steps: int) -> float:
        """Train `steps` batches (as many epochs as that takes); returns the seconds taken, counted
        from the first epoch's iterator (worker start-up included) to the end of the last step."""
        self.gan.train()
        done = 0
        t0 = time.perf_counter()
        while done < steps:
            for real, y in loader:  # a new epoch starts fresh worker processes, as in the example
                self.step(real, y)
                done += 1
                if done == steps:
                    break
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - t0
