"""Shared fixtures: tiny data in the real formats, and a tiny, fast config."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ROOT = Path(__file__).resolve().parents[1]


def write_npz(path: Path, *, n_per_class: int = 12, classes=("a", "b", "c"), size: int = 28, rgb: bool = False,
              seed: int = 0) -> Path:
    """A tiny labelled .npz in the shared-data layout: one bright blob at a class-specific place."""
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(len(classes)):
        x = rng.integers(0, 30, (n_per_class, size, size), dtype=np.uint8)
        r = 2 + 6 * k % (size - 8)
        x[:, r:r + 6, r:r + 6] = 255
        xs.append(x)
        ys.append(np.full(n_per_class, k))
    x = np.concatenate(xs)
    if rgb:
        x = np.repeat(x[..., None], 3, axis=-1)
    np.savez_compressed(path, x=x, y=np.concatenate(ys).astype(np.int64), classes=np.array(classes))
    return path


# ---- comparing runs: a resumed or longer run against an uninterrupted one ------------------------

RECORD = ("step", "loss_d", "loss_g", "d_x", "d_g_z")  # what a step computed (no timings)


def records(run: Path, keys: tuple = RECORD) -> list[tuple]:
    """metrics.jsonl's lines as tuples of `keys`: equal for two runs that computed the same steps."""
    from gan_bench.run.files import read_jsonl

    return [tuple(r[k] for k in keys) for r in read_jsonl(run / "metrics.jsonl")]


def records_without_timing(run: Path) -> list[dict]:
    """metrics.jsonl's lines without the timings (sec_per_step, img_per_sec), every other key kept."""
    from gan_bench.run.files import read_jsonl

    return [{k: v for k, v in r.items() if k not in ("sec_per_step", "img_per_sec")}
            for r in read_jsonl(run / "metrics.jsonl")]


def assert_same_samples(a: Path, b: Path, frames: int) -> None:
    """Two runs' sample grids: the same file names (`frames` of them), pixel for pixel."""
    from PIL import Image

    names = sorted(p.name for p in (a / "samples").glob("*.png"))
    assert names == sorted(p.name for p in (b / "samples").glob("*.png")) and len(names) == frames
    for name in names:
        assert np.array_equal(np.asarray(Image.open(a / "samples" / name)), np.asarray(Image.open(b / "samples" / name)))


def assert_same_weights(a: dict, b: dict, parts=("G", "D")) -> None:
    """Two checkpoints' tensors of `parts` bit for bit (the same keys, torch.equal)."""
    import torch

    for part in parts:
        assert a[part].keys() == b[part].keys(), f"{part}: other keys"
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part]), f"{part} differs"


def make_sweep_studies(folder: Path, sweep_file: str = "s.yaml") -> None:
    """The studies of folder/sweep_file made, as the sweep's first run makes them (its paths are relative to
    the folder it runs in)."""
    from gan_bench.sweep import SweepFolder, load_sweep, prepare

    here = os.getcwd()
    os.chdir(folder)
    try:
        sweep = load_sweep(Path(sweep_file))
        prepare(sweep, SweepFolder(sweep.out_path), None)
    finally:
        os.chdir(here)


def tiny_overrides(npz: Path, model: str = "cdcgan", **train) -> dict:
    t = {"epochs": 2, "batch_size": 8, "log_every": 2, "checkpoint_every": 3, "progress": False}
    t.update(train)
    return {"data": {"name": "npz", "path": str(npz)}, "model": {"name": model, "width": 4, "nz": 8},
            "train": t}


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a CPU-heavy test module: on a 2-core machine shared with other jobs,
    spinning worker threads slow such tests several times over. Use with
    `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def tiny_npz(tmp_path: Path) -> Path:
    return write_npz(tmp_path / "tiny.npz")


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def sigint_as_in_a_terminal() -> None:
    """Popen's preexec_fn for tests that press Ctrl-C: a shell starts background jobs (nohup ... &,
    some CI runners) with SIGINT ignored, an ignored signal stays ignored across exec, and Python then
    never raises KeyboardInterrupt; the child gets the default a terminal's process would have."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "gan_bench", *args]


@pytest.fixture
def isolated_registries(monkeypatch):
    """The registries (and with them the config keys their entries declare) and the plugins loaded, put back
    as they were after the test: names a test's plugin registers do not reach the next test."""
    from gan_bench import plugins, registry

    saved = registry.snapshot()
    monkeypatch.setattr(plugins, "_LOADED", dict(plugins._LOADED))
    monkeypatch.setattr(plugins, "_WARNED", set(plugins._WARNED))
    yield
    registry.restore(saved)


# Stand-ins for SLURM's commands, so the submission path (submitit's sbatch script, job arrays, job ids,
# sacct's states) runs for real on a machine without a cluster: sbatch keeps each script it is given in
# <bin>/submitted/ and answers with job ids from 4242 on; sacct prints <bin>/sacct.txt (lines of
# JobID|State|NodeList) under its header. fail: sbatch refuses with that message instead.
FAKE_SBATCH = """#!/bin/sh
here=$(dirname "$0")
if [ -n "{fail}" ]; then echo "{fail}" >&2; exit 1; fi
mkdir -p "$here/submitted"
n=$(ls "$here/submitted" | wc -l)
cp "$1" "$here/submitted/$n.sh"
echo "Submitted batch job $((4242 + n))"
"""
FAKE_SACCT = """#!/bin/sh
echo "JobID|State|NodeList"
cat "$(dirname "$0")/sacct.txt" 2>/dev/null
"""


def fake_slurm(folder: Path, *, fail: str = "") -> Path:
    """A folder of fake sbatch, srun, sacct and scontrol to put first on PATH; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {"sbatch": FAKE_SBATCH.format(fail=fail), "sacct": FAKE_SACCT,
                       "srun": "#!/bin/sh\nexit 0\n", "scontrol": "#!/bin/sh\nexit 0\n"}.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o755)
    return folder
