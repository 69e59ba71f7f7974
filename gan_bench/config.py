"""Typed configuration: defaults in dataclasses, YAML holds deltas, `--set a.b=v` overrides.

Every unknown key, wrong type or out-of-range value raises ConfigError naming the key, what was
expected and the valid keys. Nothing is silently ignored.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import re
import reprlib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable, Optional, Union

import yaml

from gan_bench import args
from gan_bench import plugins as plugin_loader
from gan_bench.errors import ConfigError
from gan_bench.plugins import Plugin
from gan_bench.registry import closest, unknown_name_message


def option(default: Any, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
           nonempty: bool = False, help: str = "") -> Any:
    """A config field with a range check (lo_open: the lower bound is excluded); data sets and models
    declare their own options with it too."""
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "nonempty": nonempty, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# An entry's own keys (a data set's: quickdraw's categories, celeba's crop; a model's: a plugin's number of
# blocks) are declared by the entry, in its own file, as an options dataclass in its registry record, and read
# and written as keys of its section (`data:`, `model:`). config.py never names them: each registry tells it
# the options of every name it holds (register_options), so adding a data set or a model never edits this
# file, and the keys of a plugin whose registrations are undone go with them.
OPTIONS: dict[str, Callable[[], dict[str, Optional[type]]]] = {}


@dataclass
class NoOptions:
    """The options of an entry that has none of its own."""


def register_options(section: str, options: Callable[[], dict[str, Optional[type]]]) -> None:
    """Section `section` ("data", "model") reads its entries' own keys from options(): {name: dataclass or None}."""
    OPTIONS[section] = options


def check_options(section: type["OptionSection"], name: str, options: Optional[type]) -> None:
    """As entry `name` registers: `options` is None or a dataclass whose keys are not the section's own."""
    if options is not None and not (dataclasses.is_dataclass(options) and isinstance(options, type)):
        raise TypeError(f"{section.KIND} {name!r}: options must be a dataclass, got {options!r}")
    clash = {f.name for f in dataclasses.fields(section)} & set(_option_names(options or NoOptions))
    if clash:
        raise TypeError(f"{section.KIND} {name!r}: option {sorted(clash)[0]!r} is already a key of every "
                        f"{section.KIND} ({section.SECTION}.{sorted(clash)[0]})")
    try:  # a config that does not name a key takes its default: every key needs one, in its own range
        defaults = (options or NoOptions)()
    except Exception as e:  # noqa: BLE001  a field without a default, a default_factory that raises, ...
        raise TypeError(f"{section.KIND} {name!r}: its options {options.__name__}() cannot be made from their "
                        f"defaults ({type(e).__name__}: {e}); give every field a default (option(...))") from None
    for f in dataclasses.fields(defaults):
        try:
            _check_range(getattr(defaults, f.name), f, f"{section.SECTION}.{f.name}")
        except ConfigError as e:
            raise TypeError(f"{section.KIND} {name!r}: the default of {e}") from None


def _table(section: str) -> dict[str, type]:
    """{registered name: its options dataclass} of a section ({} before its registry is imported)."""
    source = OPTIONS.get(section)
    return {n: o or NoOptions for n, o in source().items()} if source else {}


class OptionSection:
    """A config section: the keys every entry of a registry takes (a subclass's dataclass fields) and the
    own keys of the entry named (its options, see OPTIONS), which read and write as attributes of this
    object: cfg.data.categories, cfg.model.blocks. A subclass(name=..., key=...) takes both kinds of keys,
    checked like a config's. Subclasses are @dataclass(init=False, eq=False)."""

    SECTION: ClassVar[str] = ""   # its key in a config ("data")
    KIND: ClassVar[str] = ""      # what its `name` names, in messages ("data set")

    def __init__(self, **keys: Any) -> None:
        object.__setattr__(self, "_pending", {})    # option keys given, resolved by build_config
        object.__setattr__(self, "_options", None)  # (entry name, its options object)
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.default_factory() if f.default_factory is not dataclasses.MISSING
                               else f.default)
        if keys:
            _apply(self, keys, f"{self.SECTION}.")
            _resolve_options(self)

    @property
    def options(self) -> Any:
        """The options object of the entry named (its defaults until build_config sets them)."""
        if self._options is None or self._options[0] != self.name:
            object.__setattr__(self, "_options", (self.name, _table(self.SECTION).get(self.name, NoOptions)()))
        return self._options[1]

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and dataclasses.astuple(self) == dataclasses.astuple(other)
                and self.options == other.options)

    def __getattr__(self, key: str) -> Any:  # only for names that are not generic keys
        if key.startswith("_"):
            raise AttributeError(key)
        opts = self.options
        if key in _option_names(type(opts)):
            return getattr(opts, key)
        raise AttributeError(f"{self.KIND} {self.name!r} has no option {key!r}")

    def __setattr__(self, key: str, value: Any) -> None:
        if key in self.__dataclass_fields__ or key.startswith("_"):
            object.__setattr__(self, key, value)
        elif key in _option_names(type(self.options)):
            setattr(self.options, key, value)
        else:
            raise AttributeError(f"{self.KIND} {self.name!r} has no option {key!r}")


@dataclass(init=False, eq=False)
class DataConfig(OptionSection):
    """The keys every data set takes; a data set's own keys are its DatasetInfo.options (OptionSection)."""

    SECTION, KIND = "data", "data set"
    name: str = "shapes"
    root: str = "datasets"                      # where downloaded data lives
    path: Optional[str] = None                  # npz, image_folder: the training file or folder
    test_path: Optional[str] = None             # an optional separate test file or folder
    max_per_class: Optional[int] = option(None, lo=1, help="keep at most this many training images of each class "
                                           "(null: all); a fixed subset, drawn with data.split_seed")
    test_fraction: float = option(0.1, lo=0.0, hi=0.9, help="share of the images held out as the test split when "
                                  "the data set has none of its own (evaluation and real-data floors read it)")
    split_seed: int = option(0, lo=0, hi=args.SEED_MAX)  # the train/test split does not follow train.seed
    resolution: Optional[int] = option(None, lo=8, hi=512)   # resize once at load time
    download: bool = option(True, help="fetch the data set into data.root when it is not there (false: refuse "
                                       "and say where to put the files)")


def _option_names(options: type) -> list[str]:
    return [f.name for f in dataclasses.fields(options)]


def option_lines(section: str, options: Optional[type]) -> list[str]:
    """An entry's own keys as `gan-bench list` shows them: "model.blocks: int = 1, 1 .. 8 (help)"."""
    if options is None:
        return []
    hints, out = typing.get_type_hints(options), []
    for f in dataclasses.fields(options):
        lo, hi, m = f.metadata.get("lo"), f.metadata.get("hi"), f.metadata
        bound = (f"{'>' if m.get('lo_open') else '>='} {lo:g}" if lo is not None else "",
                 f"<= {hi:g}" if hi is not None else "")
        limits = ", ".join(b for b in bound if b) + (", not empty" if m.get("nonempty") else "")
        default = _default(options, f.name)
        shown = "null" if default is None else str(default).lower() if isinstance(default, bool) else _show(default)
        out.append(f"{section}.{f.name}: {_type_name(hints[f.name])} = {shown}"
                   + (f", {limits.lstrip(', ')}" if limits else "") + (f" ({m['help']})" if m.get("help") else ""))
    return out


# Keys whose value is a registered name (model.name, ...), or a list of them (train.trackers): the registry
# below config registers a way to list the valid names, so an empty or unknown name is refused with the list.
NAME_KEYS: dict[str, tuple[str, Callable[[], list[str]]]] = {}


def register_names(key: str, kind: str, names: Callable[[], list[str]]) -> None:
    """`key` (e.g. "model.name") holds the name of a registered `kind`; names() lists the valid ones."""
    NAME_KEYS[key] = (kind, names)


# The hash of a config covers the options of today's built-in data sets at their defaults, as it did
# when they were keys of DataConfig, so run folders made before keep their hash (and resume).
_HASHED_DATA_DEFAULTS = {"categories": None, "per_class": 1000, "crop": 140}
# Keys added after run folders existed are hashed only when they differ from these defaults, for the
# same reason: a run made before a key existed keeps its hash.
_UNHASHED_AT_DEFAULT = {"model": {"spectral_norm": False, "d_label": "planes"},
                        "train": {"ema": 0.0, "ema_rampup": 0.05, "diffaug": "", "max_minutes": None,
                                  "mismatch": 0.0},
                        "eval": {"every_steps": 0, "every_seconds": 0.0}}
# A model's own keys likewise (models had none when run folders were first made): hashed only when they
# differ from the defaults its options dataclass declares, so a model that gains an option keeps the hash
# of its runs made before (whose configs lack the key).
_OPTIONS_UNHASHED_AT_DEFAULT = ("model",)
D_LABELS = ("planes", "projection")  # model.d_label
# Keys that do not change what a run computes, left out of the hash (as `out` is): the code files it
# loaded names by path (the names it uses are hashed), and where else it is watched. A run folder made
# before they existed keeps its hash, and moving a plugin file does not make a run another experiment.
_NOT_HASHED = (("out",), ("plugins",), ("train", "trackers"))


@dataclass(init=False, eq=False)
class ModelConfig(OptionSection):
    """The keys every model takes; a model's own keys are its ModelInfo.options (OptionSection)."""

    SECTION, KIND = "model", "model"
    name: str = "cdcgan"
    nz: int = option(100, lo=1, hi=4096, help="length of G's latent vector z")
    width: int = option(64, lo=1, hi=1024, help="channel multiplier of G and D")
    # Spectral normalisation of every weight of D (Miyato et al. 2018); D's BatchNorm layers are
    # dropped with it (models/spectral.py says why).
    spectral_norm: bool = False
    # How a conditional D reads the label: planes (one-hot constant planes beside the image, the
    # seed's cDCGAN) or projection (Miyato & Koyama 2018: a class embedding's inner product with D's
    # last features, added to the logit).
    d_label: str = "planes"


@dataclass
class TrainConfig:
    epochs: int = option(5, lo=1, help="passes over the training images (the budget when max_steps is not set)")
    max_steps: Optional[int] = option(None, lo=1, help="training steps; when set it replaces epochs as the "
                                      "budget (a step is one D and one G update)")
    # A wall-clock budget: training stops at the first step after this many minutes of training
    # (evaluation not counted), so a suite can compare models at equal compute on one machine; the
    # epochs (or max_steps) stay an upper bound.
    max_minutes: Optional[float] = option(None, lo=0.0, lo_open=True)
    batch_size: int = option(128, lo=1, help="real images per step (a per-class model: this many of every class; "
                                        "under torchrun the global batch)")
    lr_g: float = option(2e-4, lo=0.0, lo_open=True, help="Adam's learning rate for G")
    lr_d: float = option(2e-4, lo=0.0, lo_open=True, help="Adam's learning rate for D (above lr_g: TTUR)")
    betas: list[float] = option([0.5, 0.999], help="Adam's (beta1, beta2) for G and D; 0.5 is DCGAN's beta1")
    loss: str = option("bce", help="the GAN loss, a name of the losses registry (gan-bench list)")
    seed: int = option(0, lo=0, hi=args.SEED_MAX)  # numpy's legacy seeding takes 0 .. 2**32 - 1
    device: str = "auto"                        # auto | cpu | cuda | cuda:N
    # Speed switches chosen per device (train/speed.py; the run's summary lists those used): on CUDA
    # bf16 autocast, channels_last, fused Adam, cudnn benchmark, asynchronous logging; on a CPU
    # channels_last, fused Adam, and bf16 autocast where the CPU has AMX or AVX512-BF16. false: plain
    # eager float32.
    fast: bool = True
    compile: bool = option(False, help="torch.compile G and D (on a CPU it measured no faster: "
                                        "benchmarks/README.md)")
    # Under torchrun (train/distributed.py): BatchNorm statistics over the global batch of all
    # processes rather than each process's shard; then the run computes what one process would.
    sync_bn: bool = False
    # The seeds' stabilisers: instance noise, one-sided label smoothing, label flips.

    instance_noise: float = option(0.0, lo=0.0)     # sigma of Gaussian noise added to D's inputs
    instance_noise_steps: int = option(0, lo=0)     # linear decay of sigma to zero over this many steps
    real_label_range: list[float] = option([1.0, 1.0])   # one-sided smoothing: real targets ~ U[a, b]
    label_flip: float = option(0.0, lo=0.0, hi=1.0)  # probability of flipping each D target
    # G weight averaging (train/ema.py): beta per step (0: off); snapshots, sampling and the best
    # checkpoint use the average. The average's half-life is at most ema_rampup of the steps so far
    # (StyleGAN2-ADA's ema_rampup; 0: no ramp), so early weights do not dominate a short run.
    ema: float = option(0.0, lo=0.0)
    ema_rampup: float = option(0.05, lo=0.0, help="the average's half-life is at most this share of the steps "
                                                  "so far (0: no ramp; see ema)")
    # Differentiable augmentation of D's real and fake inputs (train/augment.py; Zhao et al. 2020):
    # "" (off) or a comma-separated policy such as "color,translation,cutout".
    diffaug: str = ""
    # Matching-aware D (train/step.py; Reed et al. 2016): weight of D's loss on real images given a
    # wrong label, as fakes (conditional models; 0: off)
    mismatch: float = option(0.0, lo=0.0)
    # Records.

    log_every: int = option(50, lo=1, help="steps between lines of metrics.jsonl (losses, D's outputs, speed)")
    snapshot_every: int = option(1, lo=1, help="epochs between sample grids")
    checkpoint_every: int = option(500, lo=1, help="steps between checkpoints (also every epoch end)")
    grid_per_class: int = option(8, lo=1, hi=64, help="fixed-noise samples per class row")
    # Where else the run is watched (train/trackers.py): tensorboard, mlflow, wandb, or a plugin's tracker.
    # tensorboard: true is the older spelling of listing tensorboard (kept: run folders hold it).
    trackers: list[str] = option([])
    tensorboard: bool = option(False, help="the older spelling of trackers: [tensorboard] (kept: run folders hold it)")
    progress: bool = option(True, help="a progress bar on the terminal (false for logs and batch jobs)")


@dataclass
class EvalConfig:
    every: int = option(0, lo=0, help="epochs between evaluations during training (0: off)")
    # for short runs and curves against time: also every N steps, and every N training seconds (any
    # that is on triggers one; the last step is evaluated whenever one is on)
    every_steps: int = option(0, lo=0, help="also evaluate every this many steps (0: off)")
    every_seconds: float = option(0.0, lo=0.0, help="also evaluate every this many training seconds (0: off)")
    metrics: list[str] = option(["fd", "kid", "precision", "recall"], help="the metrics of each evaluation, names "
                                "of the metrics registry (gan-bench list)")
    samples: int = option(5000, lo=1, hi=args.MAX_SAMPLES, help="generated images per evaluation (and real ones "
                          "for its floor, as many as the test split has)")
    primary: str = option("fd", help="a lower-is-better metric of eval.metrics; its best value picks "
                          "checkpoints/best.pt")


@dataclass
class Config:
    name: str = "run"                           # run folders go to <out>/<name>/<id>/
    out: str = option("results", help="the folder under which run folders are made")
    plugins: list[Plugin] = option([])          # files or modules registering data sets, models, ... (plugins.py)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for section in (self.data, self.model):  # an entry's own keys are keys of its section
            d[section.SECTION].update(dataclasses.asdict(section.options))
        return d

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def hash(self, *, budget: bool = True) -> str:
        """Hash of what determines the result (the output folder does not); budget=False leaves the budget
        out too (BUDGET_KEYS): a run's identity, which `run --resume --set train.epochs=N` keeps."""
        return config_hash(self.to_dict(), budget=budget)


# Where a run stops, not what a step computes: the keys `run --resume` may raise (a longer run of the same
# config equals an uninterrupted one with the larger budget, since no schedule reads the total). Named here
# for the hash (budget=False); what they mean is train/budget.py's.
BUDGET_KEYS = ("train.epochs", "train.max_steps", "train.max_minutes")


def config_hash(d: dict[str, Any], *, budget: bool = True) -> str:
    """Config.hash of a config dict as Config.to_dict writes it (a checkpoint's "config")."""
    d = copy.deepcopy(d)
    for *section, key in _NOT_HASHED + (() if budget else tuple(tuple(k.split(".")) for k in BUDGET_KEYS)):
        (d.get(section[0], {}) if section else d).pop(key, None)
    d["data"] = {**_HASHED_DATA_DEFAULTS, **d.get("data", {})}
    for section, defaults in _UNHASHED_AT_DEFAULT.items():
        for key, default in defaults.items():
            if key in d.get(section, {}) and d[section][key] == default:
                del d[section][key]
    for section in _OPTIONS_UNHASHED_AT_DEFAULT:
        keys = d.get(section, {})
        name = keys.get("name") if isinstance(keys, dict) else None
        options = _table(section).get(name) if isinstance(name, str) else None
        for f in dataclasses.fields(options) if options else ():
            if f.name in keys and keys[f.name] == _default(options, f.name):
                del keys[f.name]
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr_g": 2e-4}} -> {"train.lr_g": 2e-4}: a config dict's dotted keys (trackers' parameter
    tables, the lever view's config differences)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# ---- typed conversion -----------------------------------------------------------------------

def _type_name(tp: Any) -> str:
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        parts = [a for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(_type_name(a) for a in parts) + " or null"
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
    if dataclasses.is_dataclass(tp):  # a nested section (suite files: runs[i], eval)
        shorthand = getattr(tp, "SHORTHAND", None)  # a bare string stands for {SHORTHAND: string}
        if shorthand and isinstance(value, str):
            value = {shorthand: value}
        if not isinstance(value, dict):
            also = f"a {shorthand} (text) or " if shorthand else ""
            raise ConfigError(f"{key}: expected {also}a mapping of keys ({', '.join(f.name for f in dataclasses.fields(tp))}), "
                              f"got {_show(value)}")
        obj = tp()
        _apply(obj, value, f"{key}.")
        return obj
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
            raise ConfigError(f"{key}: expected a finite number, got {_show(value)}; .nan and .inf are refused "
                              f"(write a number such as 2e-4)")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    raise bad


def _check_range(value: Any, f: dataclasses.Field, key: str) -> None:
    lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
    if f.metadata.get("nonempty") and value is not None and len(value) == 0:
        help_ = f.metadata.get("help")
        raise ConfigError(f"{key}: must not be empty" + (f" ({help_})" if help_ else ""))
    if value is None or isinstance(value, (list, str)):
        return
    if lo is not None and (value < lo or (f.metadata.get("lo_open") and value == lo)):
        rel = ">" if f.metadata.get("lo_open") else ">="
        raise ConfigError(f"{key}: must be {rel} {lo}, got {_show(value)}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: must be <= {hi}, got {_show(value)}")


def apply_delta(obj: Any, delta: dict[str, Any], prefix: str = "") -> None:
    """Set the keys of a YAML mapping on a dataclass instance with the config's type and range checks
    (every typed file of gan-bench, configs and suite files, reads through this)."""
    _apply(obj, delta, prefix)


def _apply(obj: Any, delta: dict[str, Any], prefix: str) -> None:
    if not isinstance(delta, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of keys, got {delta!r}")
    fields = {f.name: f for f in dataclasses.fields(obj)}
    hints = typing.get_type_hints(type(obj))
    for key, value in delta.items():
        full = f"{prefix}{key}"
        if isinstance(obj, OptionSection) and isinstance(key, str) and key not in fields and _owners(obj, key):
            obj._pending[key] = (value, full)  # checked against the entry named once all deltas are in
            continue
        if not isinstance(key, str) or key not in fields:
            if isinstance(obj, OptionSection):
                fields = {**fields, **{n: None for n in _option_names(type(obj.options))}}
            near = closest(str(key), list(fields))
            hint = f" Did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"unknown key {full!r}.{hint} Valid keys: {', '.join(fields)}")
        if full in NAME_KEYS and value in (None, ""):
            kind, names = NAME_KEYS[full]
            raise ConfigError(f"{full} is empty; give a {kind} name. Valid: {', '.join(sorted(names()))}.")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, f"{full}.")
        else:
            converted = _convert(value, hints[key], full)
            _check_range(converted, fields[key], full)
            setattr(obj, key, converted)


def _owners(section: OptionSection, key: str) -> list[str]:
    """The entries of the section's registry that declare option `key`."""
    return [n for n, cls in _table(section.SECTION).items() if key in _option_names(cls)]


def _resolve_options(d: OptionSection) -> None:
    """The option keys given for a section, converted and range-checked by the options dataclass of the
    entry named. A key of another entry is an error unless it is left at its default (a config switched
    to npz with `--set data.categories=null` keeps working)."""
    table = _table(d.SECTION)
    if table and d.name not in table:
        raise ConfigError(unknown_name_message(d.KIND, d.name, list(table)))
    cls = table.get(d.name, NoOptions)
    opts = cls()
    fields, hints = {f.name: f for f in dataclasses.fields(cls)}, typing.get_type_hints(cls)
    for key, (value, full) in d._pending.items():
        if key in fields:
            converted = _convert(value, hints[key], full)
            _check_range(converted, fields[key], full)
            setattr(opts, key, converted)
            continue
        owners = _owners(d, key)
        if all(value == _default(table[o], key) for o in owners):
            continue
        own = ", ".join(_option_names(cls)) or "none"
        raise ConfigError(f"{full} is an option of {d.KIND} {' and '.join(repr(o) for o in owners)}, not of "
                          f"{d.name!r}; remove it (options of {d.name!r}: {own})")
    object.__setattr__(d, "_options", (d.name, opts))
    object.__setattr__(d, "_pending", {})


def _default(cls: type, key: str) -> Any:
    f = next(f for f in dataclasses.fields(cls) if f.name == key)
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _validate(cfg: Config) -> None:
    _resolve_options(cfg.data)
    _resolve_options(cfg.model)
    for key, (kind, names) in NAME_KEYS.items():
        section, _, field_name = key.partition(".")
        value = getattr(getattr(cfg, section), field_name)
        for v in value if isinstance(value, list) else [value]:
            if v not in names():
                raise ConfigError(unknown_name_message(kind, v, names()))
    t = cfg.train
    if len(t.betas) != 2 or not all(0.0 <= b < 1.0 for b in t.betas):
        raise ConfigError(f"train.betas: expected two numbers in [0, 1), got {t.betas}")
    a = t.real_label_range
    if len(a) != 2 or not 0.0 <= a[0] <= a[1] <= 1.0:
        raise ConfigError(f"train.real_label_range: expected [a, b] with 0 <= a <= b <= 1, got {a}")
    # train.loss, train.diffaug and eval.metrics name registry entries: the run plan checks them (train/plan.py)
    if not t.ema < 1.0:
        raise ConfigError(f"train.ema: expected a beta in [0, 1) (0: off; 0.999 is usual), got {t.ema}")
    if cfg.model.d_label not in D_LABELS:
        raise ConfigError(f"model.d_label: expected {' or '.join(D_LABELS)}, got {cfg.model.d_label!r}")
    if not args.DEVICE.fullmatch(t.device):
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


def build_config(deltas: list[dict[str, Any]], *, name: Optional[str] = None,
                 plugins: Iterable[Plugin | str] = ()) -> Config:
    """Apply the deltas in order on top of the defaults and validate the result.

    Plugins are imported first, since the rest may name what they register (a data set's own keys
    among them): the deltas' `plugins` (the last one given wins, like any key), then `plugins` (--plugin,
    a suite file's), then those of installed packages. cfg.plugins records them all, resolved."""
    cfg = Config()
    if name is not None:
        cfg.name = name
    for d in deltas:
        if isinstance(d, dict) and "plugins" in d:
            _apply(cfg, {"plugins": d["plugins"]}, "")
    cfg.plugins = plugin_loader.load([*cfg.plugins, *plugins, *plugin_loader.installed()])
    for d in deltas:
        _apply(cfg, {k: v for k, v in d.items() if k != "plugins"} if isinstance(d, dict) else d, "")
    _validate(cfg)
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML says the keys of a mapping are unique; PyYAML lets the last one win. This loader refuses."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise _DuplicateKey(f"key {key!r} appears twice in one mapping (lines {seen[key]} and {line}); "
                                    f"keep one of them")
            if isinstance(key, (str, int, float, bool)):
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    pass


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r} not found; `gan-bench list` shows the shipped configs") from None
    except IsADirectoryError:
        raise ConfigError(f"{str(path)!r} is a folder; give a YAML config file such as configs/demo.yaml") from None
    except OSError as e:
        raise ConfigError(f"cannot read config {str(path)!r} ({e.strerror or e}); check the path and its "
                          f"permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a YAML text file (byte {raw[e.start]:#04x} at position {e.start} is not "
                          f"UTF-8 text); give a YAML config such as configs/demo.yaml") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506  a SafeLoader that refuses duplicate keys
    except _DuplicateKey as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.constructor.ConstructorError as e:
        raise ConfigError(_tag_message(path, e)) from None
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


def _tag_message(path: Path, e: yaml.constructor.ConstructorError) -> str:
    """A YAML tag the safe loader refuses: valid YAML, refused for safety (!!python/...) or unknown."""
    m = re.search(r"tag '([^']+)'", e.problem or "")
    if not m:
        return f"{path}: malformed YAML; fix the syntax there"
    tag, line = m.group(1).replace("tag:yaml.org,2002:", "!!"), e.problem_mark.line + 1 if e.problem_mark else "?"
    why = ("it would run Python code as the file is read, so gan-bench's safe YAML loader refuses it"
           if tag.startswith("!!python/") else "gan-bench reads no such tag")
    return (f"{path}: line {line}: the tag {tag} is valid YAML, but {why}; write a plain value "
            f"(code belongs in a plugin: `plugins: [my_plugin.py]`)")


def load_config(path: Optional[Path], overrides: list[str] = (), *, plugins: Iterable[Plugin | str] = ()) -> Config:
    """The config a run uses: defaults <- YAML file <- --set overrides (name = file stem by default), with
    the plugins the file names and `plugins` (--plugin) loaded."""
    deltas = [read_yaml(path)] if path is not None else []
    deltas += [nest(*parse_set(s)) for s in overrides]
    return build_config(deltas, name=Path(path).stem if path is not None else None, plugins=plugins)
