"""The suite file: typed like a config (the same converter, type checks and one-line messages).

A suite file (YAML; config and data paths are relative to the folder you run from, the repo root):
    name: paper
    out: results/paper              # optional, default results/<name> (results/<name>-quick with --quick)
    plugins: [my_gan.py]            # optional: loaded for every run, and recorded in each (like --plugin)
    seeds: [0, 1, 2]
    set: ["train.device=auto"]      # overrides for every run
    runs:
      - config: configs/quickdraw_cdcgan.yaml
        set: ["data.max_per_class=2000"]
        name: quickdraw_cdcgan_small   # optional: the folder name (default: the config's name)
        seeds: [0]                     # optional: this run's own seeds
      - configs/mnist_convdcgan.yaml   # a bare path is {config: PATH}
    eval: {metrics: [fd, kid], samples: 5000}   # optional: evaluate each finished run
    targets: ["cond_acc=0.8"]          # optional: the qualities of the time-to-quality table (compare --target)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from gan_bench.config import apply_delta, option, read_yaml
from gan_bench.errors import ConfigError
from gan_bench.plugins import Plugin


@dataclass
class SuiteEval:
    metrics: list[str] = option(["fd"])
    samples: int = option(5000, lo=1)


@dataclass
class SuiteRun:
    config: str = ""
    set: list[str] = option([])
    name: Optional[str] = None
    seeds: Optional[list[int]] = None


@dataclass
class Suite:
    name: str = ""
    out: Optional[str] = None
    plugins: list[Plugin] = option([])
    seeds: list[int] = option([0])
    set: list[str] = option([])
    runs: list[SuiteRun] = option([])
    eval: Optional[SuiteEval] = None
    targets: list[str] = option([])   # checked by plan(), once the plugins are loaded

    @property
    def out_path(self) -> Optional[Path]:
        return Path(self.out) if self.out else None


def load_suite(path: Path) -> Suite:
    """Read and check a suite file; unknown keys and wrong types are one-line ConfigErrors naming the
    file and the key."""
    d = read_yaml(Path(path))
    if isinstance(d.get("runs"), list):  # a bare path is {config: PATH}
        d = {**d, "runs": [{"config": r} if isinstance(r, str) else r for r in d["runs"]]}
    suite = Suite()
    try:
        apply_delta(suite, d)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    if not suite.runs:
        raise ConfigError(f"{path}: 'runs' must be a non-empty list of {{config: FILE}} entries")
    for i, r in enumerate(suite.runs, 1):
        if not r.config:
            raise ConfigError(f"{path}: runs[{i}]: expected {{config: FILE, set: [...]}}; 'config' is missing")
        if r.seeds is not None and not r.seeds:
            raise ConfigError(f"{path}: runs[{i}].seeds: expected a non-empty list of integers")
    if suite.out is not None and not suite.out.strip():  # '' would quietly put every run in the current folder
        raise ConfigError(f"{path}: out is empty; name the folder the runs go to, or leave the key out "
                          f"(results/<name>)")
    if not suite.seeds:
        raise ConfigError(f"{path}: seeds: expected a non-empty list of integers")
    suite.name = suite.name or Path(path).stem
    if "/" in suite.name or "\\" in suite.name or suite.name.startswith("."):  # results/<name> must stay in results/
        raise ConfigError(f"{path}: name: expected a plain folder name, got {suite.name!r} (without `name:`, the "
                          f"file's name); set name: in the file")
    return suite


def suite_out(suite: Suite, *, quick: bool, out: Optional[Path] = None) -> Path:
    """Where the suite's run folders go: --out, else the file's `out`, else results/<name>
    (with -quick appended for --quick smoke runs)."""
    if out is not None:
        return Path(out)
    base = suite.out_path or Path("results") / suite.name
    return base.with_name(base.name + "-quick") if quick else base
