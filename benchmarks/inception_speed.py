"""Inception-v3 features per second on the CPU: the offline network (the `inception` extra) at 299 px,
float32 and, where the CPU has bf16 dot products (AMX or AVX512-BF16), bf16 autocast; optionally the
FID difference bf16 makes on real images.

    python benchmarks/inception_speed.py                         # 64 images, 3 repetitions each
    python benchmarks/inception_speed.py --fid-images 512 --data ../shared/data/cifar10_train.npz

Prints the CPU, torch threads, load average before and after, and the median images/s of each mode
(every repetition too). The images are 32x32 RGB (CIFAR-10's size; the resize to 299 is part of the
cost), random unless --data names an .npz. --fid-images N: FID of N images against N others of --data,
from float32 features and from bf16 features, and their difference (figures for benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gan_bench.metrics import inception_net as N  # noqa: E402
from gan_bench.metrics.inception import fid_of  # noqa: E402
from gan_bench.run.world import cpu_bf16, cpu_model  # noqa: E402


def images(n: int, data: Path | None, offset: int = 0) -> torch.Tensor:
    if data is None:
        g = torch.Generator().manual_seed(offset)
        return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    x = np.load(data)["x"][offset:offset + n]
    x = x[..., None].repeat(3, -1) if x.ndim == 3 else x
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=64, help="images per timed repetition")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--data", type=Path, help="an .npz of real images (x uint8) instead of random ones")
    p.add_argument("--fid-images", type=int, default=0, help="also the FID difference bf16 makes at this N")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    net = N.wheel_network()
    cpu = torch.device("cpu")
    fe = N.extractor(net, cpu)
    modes = ["float32"] + (["bf16"] if cpu_bf16() else [])
    print(f"CPU {cpu_model()}, {a.threads} torch threads, torch {torch.__version__}; "
          f"load average before {os.getloadavg()[0]:.2f}")
    x = images(a.images, a.data)
    N.features(net, x[:4], device=cpu, fe=fe, progress=False)  # warm-up (oneDNN picks its kernels)
    rates: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(a.repeats):
        for m in modes:  # alternating, so a change of load hits both modes alike
            t = time.perf_counter()
            N.features(net, x, device=cpu, fe=fe, bf16=m == "bf16", progress=False)
            rates[m].append(len(x) / (time.perf_counter() - t))
    for m in modes:
        print(f"{m:8s} {statistics.median(rates[m]):6.2f} images/s (median of {a.repeats}: "
              f"{', '.join(f'{r:.2f}' for r in rates[m])})")
    if a.fid_images and "bf16" in modes:
        one, two = images(a.fid_images, a.data), images(a.fid_images, a.data, offset=a.fid_images)
        fids = {}
        for m in modes:
            f1, f2 = (N.features(net, z, device=cpu, fe=fe, bf16=m == "bf16")["2048"] for z in (one, two))
            fids[m] = fid_of(f1, f2)
        print(f"FID of {a.fid_images} against {a.fid_images} images: float32 {fids['float32']:.4f}, bf16 "
              f"{fids['bf16']:.4f}, difference {fids['bf16'] - fids['float32']:+.4f} "
              f"({(fids['bf16'] / fids['float32'] - 1) * 100:+.3f} %)")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
