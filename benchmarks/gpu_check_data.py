"""The data the GPU check trains on: the shared .npz files, copied into a folder the device call carries.

The device has no internet, so the shipped configs cannot download their data there; the check points
each one at a shared .npz instead (README "Real data"). A device call carries 64 MiB in all, the working
tree included, so stage() copies whole files in STAGE_ORDER while they fit, and of a file that does not
fit whole (CelebA, 56 MB) the first images that fit, written as <stem>_first<N>.npz. manifest.json says
what was staged, whole or as a subset, and what was left out and why.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEVICE_DATA = ROOT / ".device_data"
MANIFEST = "manifest.json"
CARRY_LIMIT = 64 * 2**20   # what one device call takes along: working tree plus carried folders
MARGIN = 2 * 2**20         # room for the tree to grow between staging and the call

# the data set each shipped config names -> its shared (train, test) files; the order is what is staged
# first: Quick, Draw! (time to quality needs it), then MNIST and CIFAR-10 whole, then CelebA as far as
# it fits (it has no test file)
SHARED_FILES: dict[str, tuple[str, Optional[str]]] = {
    "quickdraw": ("quickdraw10_train.npz", "quickdraw10_test.npz"),
    "mnist": ("mnist_train.npz", "mnist_test.npz"),
    "cifar10": ("cifar10_train.npz", "cifar10_test.npz"),
    "celeba": ("celeba64.npz", None),
}
STAGE_ORDER = [f for pair in SHARED_FILES.values() for f in pair if f]


class DataError(Exception):
    """A bad path or an unusable shared folder: one line for the user."""


def tree_bytes(root: Path = ROOT) -> int:
    """Bytes of what a device call sends besides carried folders: tracked and untracked, not ignored files."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                             capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0  # not a git checkout: nothing travels but the carried folder
    return sum((root / p).stat().st_size for p in out.decode().split("\0") if p and (root / p).is_file())


def subset(src: Path, dest_dir: Path, room: int) -> Optional[dict[str, Any]]:
    """The first images of src that fit in `room` bytes, as dest_dir/<stem>_first<N>.npz; None if not 100."""
    with np.load(src, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    total = len(arrays["x"])
    n = int(total * room / src.stat().st_size * 0.97)  # compressed size is about proportional
    while n >= 100:
        dest = dest_dir / f"{src.stem}_first{n}.npz"
        part = {k: (v[:n] if v.ndim and len(v) == total else v) for k, v in arrays.items()}
        np.savez_compressed(dest, **part)
        if dest.stat().st_size <= room:
            return {"staged_as": dest.name, "images": n, "of": total, "bytes": dest.stat().st_size}
        dest.unlink()
        n = int(n * 0.9)
    return None


def stage(dest: Path, *, shared: Path = SHARED, limit: int = CARRY_LIMIT) -> dict[str, Any]:
    """Copy the shared files that fit into dest (emptied first); writes and returns the manifest."""
    if not shared.is_dir():
        raise DataError(f"shared data folder {shared} not found; pass the folder of the shared .npz files with --shared")
    if not free_name(dest):  # emptied below: never a folder of someone's own files
        raise DataError(f"{dest} exists and is not a staged-data folder (no {MANIFEST}); choose a new or empty folder")
    try:
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
    except OSError as e:
        raise DataError(f"cannot make {dest} ({e.strerror}); choose a writable folder") from None
    room = limit - tree_bytes() - MARGIN
    files: dict[str, Any] = {}
    left_out: dict[str, str] = {}
    for name in STAGE_ORDER:
        src = shared / name
        if not src.exists():
            left_out[name] = f"not in {shared}"
            continue
        size = src.stat().st_size
        if size <= room:
            shutil.copyfile(src, dest / name)
            files[name] = {"staged_as": name, "bytes": size, "whole": True}
            room -= size
            continue
        part = subset(src, dest, room)
        if part is None:
            left_out[name] = f"{size / 2**20:.1f} MiB, {max(room, 0) / 2**20:.1f} MiB left under the 64 MiB a call carries"
            continue
        files[name] = {**part, "whole": False}
        room -= part["bytes"]
    manifest = {"files": files, "left_out": left_out, "bytes": sum(f["bytes"] for f in files.values()),
                "limit": limit}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise DataError(f"{path} not found; stage the data first: python benchmarks/gpu_check.py --stage-data {folder}")
    return json.loads(path.read_text())


def data_sets(folder: Path) -> dict[str, dict[str, Optional[str]]]:
    """{data set: {"path": staged train file, "whole": bool, "test_path": staged test file or None,
    "note": "" or which images of the file}} of those whose training file was staged."""
    files = read_manifest(folder)["files"]
    out = {}
    for name, (train, test) in SHARED_FILES.items():
        if train not in files:
            continue
        f = files[train]
        note = "" if f["whole"] else f"first {f['images']} of {f['of']} images"
        out[name] = {"path": str(folder / f["staged_as"]), "whole": f["whole"],
                     "test_path": str(folder / files[test]["staged_as"]) if test and test in files else None,
                     "note": note}
    return out


def describe(manifest: dict[str, Any]) -> str:
    """One line: what was staged, how, and what was left out."""
    parts = [n if f["whole"] else f"{n} as {f['staged_as']} ({f['images']} of {f['of']} images)"
             for n, f in manifest["files"].items()]
    text = f"{', '.join(parts) or 'nothing'} ({manifest['bytes'] / 2**20:.1f} MiB)"
    if manifest["left_out"]:
        text += "; left out: " + "; ".join(f"{n} ({why})" for n, why in manifest["left_out"].items())
    return text


# ---- tiny stand-ins for the smoke mode -----------------------------------------------------------

def smoke_data(dest: Path) -> dict[str, Any]:
    """Tiny files under the shared names (a bright square at a class-specific place on noise), so the
    smoke mode takes every path the real data takes; returns the manifest."""
    dest.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = {"quickdraw": (28, None), "mnist": (28, None), "cifar10": (32, 3), "celeba": (64, 3)}
    files = {}
    for name, (train, test) in SHARED_FILES.items():
        size, channels = shapes[name]
        for fname in (train, test):
            if fname is None:
                continue
            n, k = 48, 3
            x = rng.integers(0, 40, (n, size, size), dtype=np.uint8)
            y = np.arange(n) % k
            for i in range(n):
                r = 2 + 6 * y[i]
                x[i, r:r + 6, r:r + 6] = 255
            arrays: dict[str, Any] = {"x": np.repeat(x[..., None], channels, -1) if channels else x}
            if name != "celeba":  # CelebA is unlabelled, as the shared file
                arrays.update(y=y.astype(np.int64), classes=np.array(["a", "b", "c"]))
            np.savez_compressed(dest / fname, **arrays)
            files[fname] = {"staged_as": fname, "bytes": (dest / fname).stat().st_size, "whole": True}
    manifest = {"files": files, "left_out": {}, "bytes": sum(f["bytes"] for f in files.values()), "limit": None,
                "smoke": True}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def free_name(path: Path) -> bool:
    """Whether path may be written: missing, or a folder this module made (it holds a manifest)."""
    return not path.exists() or (path.is_dir() and ((path / MANIFEST).exists() or not any(path.iterdir())))

