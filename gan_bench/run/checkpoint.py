"""Checkpoint files: model, optimisers, position and every RNG state, written atomically.

The format only; which checkpoint of a run is where (last.pt, best.pt, the per-class exports) is
RunFolder's, which calls these.
"""
from __future__ import annotations

import errno
import random
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from gan_bench.atomic import atomic_path, fix_for, fsynced
from gan_bench.config import config_hash as config_hash_of
from gan_bench.errors import GanBenchError

EMA_G = "G_ema"  # a checkpoint's key for the moving average of G's weights (train.ema); "G" stays the raw G


def rng_state(device: Optional[torch.device] = None) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if device is not None and device.type == "cuda":  # the stream training drew from, whichever GPU it was
        state["cuda_train"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: Optional[torch.device] = None) -> None:
    """Restore rng_state(); the training stream goes to `device`, so rank 3 of a torchrun job (cuda:3)
    continues the stream rank 0 saved from cuda:0."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():  # from a node with more GPUs: restore those this one has
        for i, s in enumerate(state["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(s, i)
    if "cuda_train" in state and device is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_train"], device)


def save_checkpoint(path: Path, payload: dict[str, Any], *, then: str = "run the command again",
                    first: str = "run the command again") -> None:
    """Temporary file + fsync + rename: a crash or a full disk never leaves a half-written checkpoint;
    the previous one stays intact until the new one is complete. `then`: what to do after a failure,
    `first`: what to do when it was the first checkpoint (a run has nothing to resume from yet)."""
    had = path.exists()  # the first checkpoint leaves nothing to resume from: say so, not "intact"

    def error(e: OSError) -> GanBenchError:
        before = "the previous checkpoint is intact" if had else "no checkpoint was written before this one"
        return GanBenchError(f"could not write checkpoint {path} ({e.strerror}); {before}; {fix_for(e)} and "
                             f"{then if had else first}")
    with atomic_path(path, error=error) as tmp, open(tmp, "wb") as f:
        torch_save(payload, f)
        fsynced(f)


def torch_save(obj: Any, dest) -> None:
    """torch.save, with a failed write as the OSError it is: torch's zip writer reports a full disk as
    a RuntimeError ("unexpected pos ..."), which would otherwise escape atomic_path's one-line error."""
    try:
        torch.save(obj, dest)
    except RuntimeError as e:
        if not any(m in str(e) for m in ("unexpected pos", "file write failed", "PytorchStreamWriter")):
            raise  # not the writer: a bug, with its traceback
        raise OSError(errno.EIO, "the write stopped part-way, most likely a full disk") from e


def load_checkpoint(path: Path, *, config_hash: str, run_hash: Optional[str] = None) -> dict[str, Any]:
    """Load and check a checkpoint belongs to this config (or, given run_hash, to this config up to its
    budget: Config.hash(budget=False) of the checkpoint's own "config"); corrupt files give a clear error."""
    if not path.exists():
        raise GanBenchError(f"no checkpoint at {path}")
    try:
        # weights_only=False: the payload holds numpy/python RNG states; only our own files are loaded
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise GanBenchError(f"checkpoint {path} is corrupt or truncated ({type(e).__name__}); "
                            f"delete it to start over") from None
    if not isinstance(ckpt, dict) or "step" not in ckpt or "G" not in ckpt:
        raise GanBenchError(f"{path} is not a gan-bench checkpoint")
    same_run = (run_hash is not None and isinstance(ckpt.get("config"), dict)
                and config_hash_of(ckpt["config"], budget=False) == run_hash)
    if ckpt.get("config_hash") != config_hash and not same_run:
        raise GanBenchError(f"checkpoint {path} was written by another config (hash {ckpt.get('config_hash')} "
                            f"!= {config_hash}); resume with the run's own config.yaml unchanged")
    return ckpt


def load_weights(gan: torch.nn.Module, ckpt: dict[str, Any], *, model: str) -> None:
    """G's and D's weights from a checkpoint into the model as its code builds it now; a model whose code
    has changed since (a plugin edited) is one line, not a traceback of every tensor that differs."""
    try:
        gan.G.load_state_dict(ckpt["G"]), gan.D.load_state_dict(ckpt["D"])
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise GanBenchError(f"the checkpoint's weights do not fit model {model!r} as its code builds it now ({first}); "
                            f"the model's code changed since the run: restore the code the run was made with") from None
