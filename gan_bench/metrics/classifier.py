"""The domain evaluation network: a small CNN trained on a data set's real training split.

Its penultimate features (FEATURE_DIM wide) define the domain metrics (fd, kid, precision, recall,
intra_fd); its predictions define cond_acc and gan_test. Architecture, for 28/32/64 px and 1 or 3
channels: 3 blocks (4 at 64 px) of conv3x3 -> BN -> ReLU -> maxpool2, flatten, Linear -> BN1d
(the features, taken before the ReLU so no unit is dead and covariances keep full rank), then
ReLU -> dropout -> Linear to the logits.

FEATURE_DIM is 128 so a Frechet distance, which needs at least as many images as dimensions, fits
the shared test splits (2,000 CIFAR-10 images, 200 per class, enough for per-class distances too).

Unlabelled data (CelebA): the network is trained to predict which of 4 rotations (0/90/180/270
degrees) was applied, a label-free task (Gidaris et al. 2018) that needs the network to see face
structure; its "test accuracy" is the rotation accuracy, and features come from unrotated images.

Trained networks are cached as <cache_dir>/<data set>-<fingerprint>.pt; the fingerprint hashes the
training images, labels and class names and the training recipe, so any change retrains. The test
accuracy stored with it is recomputed when the test split differs from the one it was measured on.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gan_bench.atomic import atomic_path, cannot_write_under, fix_for
from gan_bench.data.base import ImageData, Splits, from_uint8
from gan_bench.errors import ConfigError, DataError
from gan_bench.run.checkpoint import torch_save

FEATURE_DIM = 128
ARCH_VERSION = 1  # bump when EvalNet or the recipe changes: old cache files are then never loaded
ROTATIONS = 4


EPOCHS = 2  # the evaluation network's training epochs, unless --classifier-epochs says otherwise


@dataclass(frozen=True)
class Recipe:
    """Everything besides the data that determines the trained network (part of the fingerprint)."""

    epochs: int = EPOCHS
    seed: int = 0
    width: int = 32
    batch_size: int = 128
    lr: float = 2e-3
    shift: int = 2            # random translation of up to +-shift pixels (28/32 px; doubled at 64)
    flip: bool = False        # random horizontal flips (natural RGB images only: not digits)
    task: str = "classes"     # classes | rotation (unlabelled data)
    min_steps: int = 60       # small data sets get more epochs: 2 epochs of 800 images learn nothing


class EvalNet(nn.Module):
    def __init__(self, *, channels: int, resolution: int, num_outputs: int, width: int) -> None:
        super().__init__()
        if resolution not in (28, 32, 64):
            raise ConfigError(f"the evaluation network supports 28, 32 and 64 px images, got {resolution} px; "
                              f"set data.resolution to one of them")
        n_blocks = 4 if resolution == 64 else 3
        chans = [channels] + [width * 2 ** min(i, 2) for i in range(n_blocks)]  # e.g. 1, 32, 64, 128
        layers: list[nn.Module] = []
        for a, b in zip(chans, chans[1:]):
            layers += [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True), nn.MaxPool2d(2)]
        self.body = nn.Sequential(*layers)
        side = resolution // 2 ** n_blocks  # 28 -> 3, 32 -> 4, 64 -> 4
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * side * side, FEATURE_DIM, bias=False),
                                   nn.BatchNorm1d(FEATURE_DIM))
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.2), nn.Linear(FEATURE_DIM, num_outputs))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) floats in [-1, 1] -> (B, FEATURE_DIM)."""
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@dataclass
class Classifier:
    """A trained evaluation network and what it was trained on."""

    net: EvalNet
    fingerprint: str
    info: dict[str, Any]   # test_acc, per_class_acc {name: acc}, task, classes, recipe, train_images
    device: torch.device
    path: Optional[Path] = None   # the cache file, if cached

    @property
    def test_acc(self) -> float:
        return self.info["test_acc"]


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 (B, C, H, W) -> float in [-1, 1] (the GAN's output range), channels-last (faster convs on CPU)."""
    return from_uint8(x).contiguous(memory_format=torch.channels_last)


@torch.no_grad()
def features(clf: Classifier, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Penultimate features (N, FEATURE_DIM) float32 on the CPU of uint8 images (N, C, H, W)."""
    clf.net.eval()
    out = [clf.net.features(to_float(b.to(clf.device))).float().cpu() for b in x.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, FEATURE_DIM)


@torch.no_grad()
def predict(clf: Classifier, x: torch.Tensor, *, batch_size: int = 500) -> torch.Tensor:
    """Predicted labels (N,) int64 on the CPU of uint8 images (N, C, H, W)."""
    clf.net.eval()
    out = [clf.net(to_float(b.to(clf.device))).argmax(1).cpu() for b in x.split(batch_size)]
    return torch.cat(out) if out else torch.empty(0, dtype=torch.int64)


def default_recipe(data: ImageData, *, epochs: int, seed: int) -> Recipe:
    return Recipe(epochs=epochs, seed=seed, flip=data.channels == 3,
                  shift=2 if data.resolution <= 32 else 4, task="classes" if data.labelled else "rotation")


def _hash_images(data: ImageData) -> "hashlib._Hash":
    h = hashlib.sha256(str(tuple(data.x.shape)).encode())
    h.update(data.x.contiguous().numpy().tobytes())
    if data.y is not None:
        h.update(data.y.contiguous().numpy().tobytes())
    return h


def fingerprint(splits: Splits, recipe: Recipe) -> str:
    """16 hex digits over the training images, labels and class names and the recipe."""
    h = _hash_images(splits.train)
    h.update(json.dumps({"arch": ARCH_VERSION, "recipe": asdict(recipe), "classes": splits.train.classes},
                        sort_keys=True).encode())
    return h.hexdigest()[:16]


def train_classifier(splits: Splits, *, epochs: int = EPOCHS, seed: int = 0, device: str | torch.device = "cpu",
                     cache_dir: Optional[Path] = None, log: Callable[[str], None] = print) -> Classifier:
    """The evaluation network of a data set: loaded from cache_dir when this data and recipe were
    trained before, else trained on splits.train (Adam, light augmentation), tested on splits.test
    and saved there. Does not touch the global RNG state of the caller."""
    device = torch.device(device)
    if len(splits.test) == 0:  # its accuracy would be "nan %", cached as if measured
        raise DataError(f"data set {splits.name!r} has no test images, so the evaluation network's accuracy cannot be "
                        f"measured (nor real images compared with generated ones); set data.test_fraction above 0 "
                        f"or give data.test_path")
    recipe = default_recipe(splits.train, epochs=epochs, seed=seed)
    fp = fingerprint(splits, recipe)
    path = Path(cache_dir) / f"{splits.name}-{fp}.pt" if cache_dir is not None else None
    if path is not None and path.exists():
        clf = _load(path, splits, recipe, fp, device, log)
        if clf is not None:
            if clf.info.get("test_split") != _hash_images(splits.test).hexdigest()[:16]:
                clf.info = _test(clf, splits, recipe)  # another test split: measure on this one
            return clf
    _check_trainable(splits.train, recipe)  # before the progress line and the cache folder
    if path is not None:  # before minutes of training, not after
        _can_write_under(path.parent)
    log(f"training the evaluation network for {splits.name!r} ({len(splits.train)} images, {epochs} epochs)")
    net = train_net(splits.train, recipe=recipe, device=device).eval()
    clf = Classifier(net, fp, {}, device, path)
    clf.info = _test(clf, splits, recipe)
    if path is not None:
        _save(path, net, clf.info)
    return clf


def _load(path: Path, splits: Splits, recipe: Recipe, fp: str, device: torch.device,
          log: Callable[[str], None]) -> Optional[Classifier]:
    with torch.random.fork_rng(devices=[]):  # building initialises weights from the global RNG
        net = _build(splits.train, recipe)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(saved["state_dict"])
        info = dict(saved["info"])
    except Exception as e:  # torch raises many types for a truncated or foreign file: train again
        log(f"evaluation network {path} is unreadable ({type(e).__name__}); training it again")
        return None
    return Classifier(net.to(device, memory_format=torch.channels_last).eval(), fp, info, device, path)


def _test(clf: Classifier, splits: Splits, recipe: Recipe) -> dict[str, Any]:
    return {"fingerprint": clf.fingerprint, "task": recipe.task, "recipe": asdict(recipe),
            "train_images": len(splits.train), "test_split": _hash_images(splits.test).hexdigest()[:16],
            **accuracy(clf, splits.test, task=recipe.task)}


def train_net(data: ImageData, *, recipe: Recipe, device: torch.device) -> EvalNet:
    """A freshly initialised (seeded) network fitted to data; the caller's RNG state is kept."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(recipe.seed)
        net = _build(data, recipe).to(device, memory_format=torch.channels_last)
        fit(net, data, recipe=recipe, device=device)
    return net


def _check_trainable(data: ImageData, recipe: Recipe) -> None:
    if recipe.task == "classes" and data.num_classes < 2:
        raise DataError(f"the evaluation network needs at least 2 classes, data has {data.num_classes}; "
                        f"give it labelled images of two or more classes")
    if len(data) < 2:
        raise DataError(f"cannot train the evaluation network on {len(data)} images; give it at least 2")


def _build(data: ImageData, recipe: Recipe) -> EvalNet:
    _check_trainable(data, recipe)
    k = data.num_classes if recipe.task == "classes" else ROTATIONS
    return EvalNet(channels=data.channels, resolution=data.resolution, num_outputs=k, width=recipe.width)


def fit(net: EvalNet, data: ImageData, *, recipe: Recipe, device: torch.device) -> None:
    """Adam with a linear decay of the learning rate to zero over max(epochs, min_steps worth of
    epochs); seeded batch order and augmentation. The data was checked when net was built (_build)."""
    g = torch.Generator().manual_seed(recipe.seed)
    steps_per_epoch = max(1, len(data) // recipe.batch_size)  # drop the ragged last batch (BatchNorm)
    epochs = max(recipe.epochs, -(-recipe.min_steps // steps_per_epoch))
    total = steps_per_epoch * epochs
    opt = torch.optim.Adam(net.parameters(), lr=recipe.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - s / total)
    net.train()
    # minutes on a CPU the first time a data set is evaluated: a bar where someone watches (a terminal)
    bar = tqdm(total=total, desc="evaluation network", unit="step", file=sys.stderr, leave=False,
               disable=not sys.stderr.isatty())
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=g)
        for i in range(steps_per_epoch):
            bar.update(1)
            idx = order[i * recipe.batch_size:(i + 1) * recipe.batch_size]
            x = augment(data.x[idx], recipe, g)
            if recipe.task == "rotation":
                x, y = rotate(x, torch.randint(0, ROTATIONS, (len(x),), generator=g))
            else:
                y = data.y[idx]
            loss = F.cross_entropy(net(to_float(x.to(device))), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    bar.close()
    net.eval()


def augment(x: torch.Tensor, recipe: Recipe, g: torch.Generator) -> torch.Tensor:
    """Random integer shifts of up to +-shift px per image (zero fill) and optional flips; uint8 in, out."""
    b, c, h, w = x.shape
    s = recipe.shift
    if s > 0:
        padded = F.pad(x, (s, s, s, s))  # (B, C, H+2s, W+2s)
        dy, dx = torch.randint(0, 2 * s + 1, (2, b), generator=g)
        rows = (dy[:, None] + torch.arange(h))[:, None, :, None]   # (B, 1, H, 1)
        cols = (dx[:, None] + torch.arange(w))[:, None, None, :]   # (B, 1, 1, W)
        x = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
    if recipe.flip:
        flip = torch.rand(b, generator=g) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


def rotate(x: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate image i by k[i] * 90 degrees; returns the images and k as the labels."""
    out = x.clone()
    for r in range(1, ROTATIONS):
        sel = k == r
        out[sel] = torch.rot90(x[sel], r, dims=(-2, -1))
    return out, k


def accuracy(clf: Classifier, data: ImageData, *, task: str) -> dict[str, Any]:
    """Test accuracy overall and per class (rotation task: per rotation, over all 4 of each image)."""
    if task == "rotation":
        k = torch.arange(ROTATIONS).repeat_interleave(len(data))
        x, y = rotate(data.x.repeat(ROTATIONS, 1, 1, 1), k)
        names = [f"rot{90 * r}" for r in range(ROTATIONS)]
    else:
        if data.y is None:
            raise DataError("the test split has no labels but the training split has; use labelled test data")
        x, y, names = data.x, data.y, list(data.classes)
    hit = predict(clf, x) == y
    per = {n: hit[y == i].float().mean().item() for i, n in enumerate(names) if (y == i).any()}
    return {"test_acc": hit.float().mean().item() if len(hit) else float("nan"), "per_class_acc": per,
            "test_images": len(data), "classes": names}


def _can_write_under(folder: Path) -> None:
    """Checked without making folder: a command that fails later (bad data, Ctrl-C) leaves no empty
    cache folder behind."""
    problem = cannot_write_under(folder)
    if problem:
        raise DataError(f"cannot write evaluation networks to {folder} ({problem}); choose a writable --cache-dir "
                        f"(or data.root)")


def _writable_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise DataError(f"cannot write evaluation networks to {folder} ({e.strerror or e}); choose a writable "
                        f"--cache-dir (or data.root)") from None


def _save(path: Path, net: EvalNet, info: dict[str, Any]) -> None:
    made = [p for p in (path.parent, *path.parent.parents) if not p.exists()]
    _writable_folder(path.parent)
    error = lambda e: DataError(f"cannot write the evaluation network to {path} ({e.strerror}); "  # noqa: E731
                                f"{fix_for(e)}, or choose another cache folder (--cache-dir)")
    try:
        with atomic_path(path, error=error) as tmp:
            torch_save({"state_dict": {k: v.cpu() for k, v in net.state_dict().items()}, "info": info}, tmp)
    except BaseException:
        if made:  # a full disk: no empty cache folder stays behind
            shutil.rmtree(made[-1], ignore_errors=True)
        raise
