"""Typed configuration: defaults in dataclasses, YAML holds deltas, `--set a.b=v` overrides.

Every unknown key, wrong type or out-of-range value raises ConfigError naming the key, what was
expected and the valid keys. Nothing is silently ignored.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from gan_bench.errors import ConfigError
from gan_bench.registry import closest


def _f(default: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
       help: str = "") -> Any:
    """A field with a range check (lo_open: the lower bound is excluded)."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataConfig:
    name: str = "shapes"
    root: str = "datasets"                      # where downloaded data lives
    path: Optional[str] = None                  # npz: the training file
    test_path: Optional[str] = None             # npz: an optional separate test file
    categories: Optional[list[str]] = None      # quickdraw: class order = this order
    max_per_class: Optional[int] = _f(None, lo=1)
    test_fraction: float = _f(0.1, lo=0.0, hi=0.9)
    split_seed: int = _f(0, lo=0, hi=2**32 - 1)  # the train/test split does not follow train.seed
    resolution: Optional[int] = _f(None, lo=8, hi=512)   # resize once at load time
    download: bool = True
    per_class: int = _f(1000, lo=1)             # shapes: images generated per class
    # celeba: side of the centre crop, in pixels of the 178x218 aligned image, taken before resizing
    # (140 is the usual choice; 108 is the DCGAN-tensorflow one).
    crop: int = _f(140, lo=16, hi=178)


@dataclass
class ModelConfig:
    name: str = "cdcgan"
    nz: int = _f(100, lo=1, hi=4096)
    width: int = _f(64, lo=1, hi=1024, help="channel multiplier of G and D")


@dataclass
class TrainConfig:
    epochs: int = _f(5, lo=1)
    max_steps: Optional[int] = _f(None, lo=1)
    batch_size: int = _f(128, lo=1)
    lr_g: float = _f(2e-4, lo=0.0, lo_open=True)
    lr_d: float = _f(2e-4, lo=0.0, lo_open=True)
    betas: list[float] = _f([0.5, 0.999])
    loss: str = "bce"
    seed: int = _f(0, lo=0, hi=2**32 - 1)      # numpy's legacy seeding takes 0 .. 2**32 - 1
    device: str = "auto"                        # auto | cpu | cuda | cuda:N
    # Speed levers chosen per device (train/fast.py; the run's summary.json lists those used): on CUDA
    # bf16 autocast, channels_last, fused Adam, cudnn benchmark, asynchronous logging; on a CPU
    # channels_last, fused Adam, and bf16 autocast where the CPU has AMX. false: plain eager float32.
    # compile adds torch.compile of G and D (on a CPU it measured no faster, benchmarks/README.md).
    fast: bool = True
    compile: bool = False
    # Under torchrun (train/distributed.py): BatchNorm statistics over the global batch of all
    # processes rather than each process's shard; then the run computes what one process would.
    sync_bn: bool = False
    # The seeds' stabilisers.
    instance_noise: float = _f(0.0, lo=0.0)     # sigma of Gaussian noise added to D's inputs
    instance_noise_steps: int = _f(0, lo=0)     # linear decay of sigma to zero over this many steps
    real_label_range: list[float] = _f([1.0, 1.0])   # one-sided smoothing: real targets ~ U[a, b]
    label_flip: float = _f(0.0, lo=0.0, hi=1.0)  # probability of flipping each D target
    # Records.
    log_every: int = _f(50, lo=1)
    snapshot_every: int = _f(1, lo=1, help="epochs between sample grids")
    checkpoint_every: int = _f(500, lo=1, help="steps between checkpoints (also every epoch end)")
    grid_per_class: int = _f(8, lo=1, help="fixed-noise samples per class row")
    tensorboard: bool = False
    progress: bool = True


@dataclass
class EvalConfig:
    every: int = _f(0, lo=0, help="epochs between evaluations during training (0: off)")
    metrics: list[str] = _f(["fd", "kid", "precision", "recall"])
    samples: int = _f(5000, lo=1)
    primary: str = "fd"                          # lower is better; picks checkpoints/best.pt


@dataclass
class Config:
    name: str = "run"                           # run folders go to <out>/<name>/<id>/
    out: str = "results"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self) -> str:
        """Hash of what determines the result (the output folder does not)."""
        d = self.to_dict()
        d.pop("out")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ---- typed conversion -----------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args) + " or null"
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    return getattr(tp, "__name__", str(tp))


_SHOW = reprlib.Repr()
_SHOW.maxstring, _SHOW.maxother = 80, 80


def _show(value: Any) -> str:
    """A short repr for messages (a pasted blob or a 5000-digit int must not flood or break them)."""
    try:
        return _SHOW.repr(value)
    except ValueError:  # an int beyond Python's 4300-digit printing limit
        return "an integer too large to print"


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {_show(value)} ({type(value).__name__})")
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return _convert(value, inner, key)
    if origin is list:
        if not isinstance(value, list):
            raise bad
        return [_convert(v, typing.get_args(tp)[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, str):  # PyYAML reads 2e-4 (no dot) as a string: accept numeric text
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            raise bad from None
        if not math.isfinite(value):
            raise bad
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def _check_range(value: Any, f: dataclasses.Field, key: str) -> None:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if value is None or isinstance(value, (list, str)):
        return
    if lo is not None and (value < lo or (f.metadata.get("lo_open") and value == lo)):
        rel = ">" if f.metadata.get("lo_open") else ">="
        raise ConfigError(f"{key}: must be {rel} {lo}, got {_show(value)}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be <= {hi}, got {_show(value)}")


def _apply(obj: Any, delta: dict[str, Any], prefix: str) -> None:
    if not isinstance(delta, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {delta!r}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    for key, value in delta.items():
        full = f"{prefix}{key}"
        if not isinstance(key, str) or key not in fields:
            near = closest(str(key), list(fields))
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"unknown key {full!r}.{hint} Valid keys: {', '.join(fields)}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.")
        else:
            converted = _convert(value, hints[key], full)
            _check_range(converted, fields[key], full)
            setattr(obj, key, converted)


def _validate(cfg: Config) -> None:
    t = cfg.train
    if len(t.betas) != 2 or not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {t.betas}")
    a = t.real_label_range
    if len(a) != 2 or not 0.0 <= a[0] <= a[1] <= 1.0:
        raise ConfigError(f"train.real_label_range: expected [a, b] with 0 <= a <= b <= 1, got {a}")
    if t.loss != "bce":
        raise ConfigError(f"train.loss: only 'bce' is implemented, got {t.loss!r}")
    if not (t.device in ("auto", "cpu", "cuda") or t.device.startswith("cuda:")):
        raise ConfigError(f"train.device: expected auto, cpu, cuda or cuda:N, got {t.device!r}")
    if not cfg.name or "/" in cfg.name or cfg.name.startswith("."):
        raise ConfigError(f"name: expected a plain folder name, got {cfg.name!r}")
    for key, value in (("name", cfg.name), ("out", cfg.out), ("data.root", cfg.data.root),
                       ("data.path", cfg.data.path), ("data.test_path", cfg.data.test_path)):
        if value is not None and "\0" in value:  # no file system takes it; os calls raise ValueError
            raise ConfigError(f"{key}: a path cannot contain a NUL character, got {_show(value)}")


def parse_set(item: str) -> tuple[list[str], Any]:
    """Parse one `a.b=value` override; the value is read as YAML (so 5, 2e-4, [1, 2], true work)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, for example train.epochs=5")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"--set {item!r}: expected a dotted key such as train.epochs")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except Exception:  # noqa: BLE001  PyYAML also raises ValueError (2020-13-45), RecursionError, ...
        value = raw  # not YAML: take it as a plain string, the type check decides
    return parts, value


def nest(parts: list[str], value: Any) -> dict[str, Any]:
    out: Any = value
    for p in reversed(parts):
        out = {p: out}
    return out


def build_config(deltas: list[dict[str, Any]], *, name: Optional[str] = None) -> Config:
    """Apply the deltas in order on top of the defaults and validate the result."""
    cfg = Config()
    if name is not None:
        cfg.name = name
    for d in deltas:
        _apply(cfg, d, "")
    _validate(cfg)
    return cfg


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found; `gan-bench list` shows the shipped configs") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config {str(path)!r}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: malformed YAML{where}; fix the syntax there") from None
    except Exception as e:  # noqa: BLE001  a tag or date PyYAML cannot build (2020-13-45), deep nesting, ...
        raise ConfigError(f"{path}: malformed YAML ({type(e).__name__}: {_show(str(e))}); fix that value") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def load_config(path: Optional[Path], overrides: list[str] = ()) -> Config:
    """The config a run uses: defaults <- YAML file <- --set overrides (name = file stem by default)."""
    deltas = [read_yaml(path)] if path is not None else []
    deltas += [nest(*parse_set(s)) for s in overrides]
    return build_config(deltas, name=Path(path).stem if path is not None else None)
