"""MNIST and Fashion-MNIST through torchvision (local files in data.root honoured, downloads allowed)."""
from __future__ import annotations

from pathlib import Path

from gan_bench.config import DataConfig
from gan_bench.data.base import DATASETS, ImageData, Splits
from gan_bench.data.download import folders_kept_only_if_used
from gan_bench.errors import DataError


def _load_mnist_like(cls_name: str, cfg: DataConfig) -> Splits:
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = Path(cfg.root)
    out = {}
    for part, train in (("train", True), ("test", False)):
        try:
            with folders_kept_only_if_used(root / cls_name / "raw"):  # torchvision makes them before it fetches
                ds = cls(str(root), train=train, download=cfg.download)
        except Exception as e:  # torchvision raises RuntimeError/URLError/OSError when offline or corrupt
            how = ("and could not be downloaded" if cfg.download else "(data.download is false)")
            raise DataError(f"{cls_name} not found in {root / cls_name} {how} ({type(e).__name__}); see "
                            f"datasets/README.md to place the files by hand") from None
        out[part] = ImageData(ds.data[:, None].contiguous(), ds.targets.long(),
                              [c.split(" - ")[0] for c in ds.classes])  # "0 - zero" -> "0"
    return Splits(cls_name.lower(), out["train"], out["test"])


@DATASETS.register("mnist", resolutions=(28,), channels=1, labelled=True,
                   description="MNIST digits (torchvision), 60k train / 10k test")
def load_mnist(cfg: DataConfig) -> Splits:
    return _load_mnist_like("MNIST", cfg)


@DATASETS.register("fashion_mnist", resolutions=(28,), channels=1, labelled=True,
                   description="Fashion-MNIST (torchvision), 60k train / 10k test")
def load_fashion_mnist(cfg: DataConfig) -> Splits:
    return _load_mnist_like("FashionMNIST", cfg)
