"""Where a suite's runs train: the executor registry behind `gan-bench suite --executor NAME`.

  local   this machine: one run after another in this process, or N child processes (--jobs, --gpus);
          executor.py
  slurm   one SLURM job per run, or one job array, through submitit; slurm.py

An entry is a class built as Cls(options, ctx): options is an instance of its record's `options`
dataclass, read from `--NAME KEY=VALUE,...` with the config's converter (so a misspelled key or a wrong
type reads as it does in a config), ctx the suite command's Context. The constructor checks what it
can (a missing program, a bad combination of flags) before anything is written; an optional
check(todo) does the same for the jobs (a GPU config where none is asked for). Its run(todo, ev) trains
the jobs the plan says need work, or hands them to a scheduler, and returns one status per job
(completed, failed, interrupted, or submitted); an optional dry_run(todo, ev) returns lines saying
what run would do. An executor that submits (ExecutorInfo.submits) also has job_states(ledger,
submissions), which --status and reruns ask about the jobs it submitted earlier (submitted.py).
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from gan_bench.config import apply_delta, parse_set
from gan_bench.errors import ConfigError, GanBenchError
from gan_bench.registry import Entry, Registry


@dataclass(frozen=True)
class ExecutorInfo:
    """A registered executor's record.

    description  one line for `gan-bench suite --help`
    options      the dataclass of its `--NAME KEY=VALUE,...` options (None: it takes none)
    example      an example of those options, for messages
    extra        the optional dependency group it needs, as in `pip install -e ".[extra]"`
    requires     the modules that group installs, checked before anything runs
    submits      it hands runs to a scheduler that outlives the command (--wait applies; it records
                 its jobs, and --status and reruns ask it about them)
    """

    description: str
    options: Optional[type] = None
    example: str = ""
    extra: Optional[str] = None
    requires: tuple[str, ...] = ()
    submits: bool = False


def _check_entry(entry: Entry) -> None:
    o = entry.info.options
    if o is not None and not (dataclasses.is_dataclass(o) and isinstance(o, type)):
        raise TypeError(f"executor {entry.name!r}: options must be a dataclass, got {o!r}")
    if entry.info.requires and not entry.info.extra:
        raise TypeError(f"executor {entry.name!r}: requires {entry.info.requires} but names no extra to install")


EXECUTORS: Registry[Callable[..., Any], ExecutorInfo] = Registry("executor", ExecutorInfo, on_register=_check_entry)


@dataclass
class Context:
    """What the suite command tells an executor besides its own options."""

    out: Path                          # the suite's results folder
    name: str = "suite"                # the suite's name (job names)
    jobs: int = 1                      # --jobs
    gpus: Optional[list[str]] = None   # --gpus
    wait: bool = False                 # --wait: stay until the submitted jobs end
    retry_failed: bool = False         # --retry-failed
    dry_run: bool = False              # --dry-run: nothing runs, so nothing a run needs is checked
    say: Callable[[str], None] = print


def executor_for(name: str, options: Any, ctx: Context) -> Any:
    """The executor `name`, built with its options (an instance of its options dataclass, or the text of
    `--NAME`). Raises a one-line GanBenchError for an unknown name, a missing extra, or bad options."""
    entry = EXECUTORS.entry(name)
    require(name)
    if isinstance(options, str) or options is None:
        options = parse_options(name, options)
    return entry.obj(options, ctx)


def require(name: str) -> None:
    """The modules executor `name` needs are importable; else one line naming the extra to install."""
    info = EXECUTORS.info(name)
    for module in info.requires:
        try:
            importlib.import_module(module)
        except ImportError:
            raise GanBenchError(f"--executor {name} needs {module}, an optional extra: "
                                f"pip install -e \".[{info.extra}]\" (from a clone) or "
                                f"pip install \"gan-bench[{info.extra}]\"") from None


def parse_options(name: str, text: Optional[str]) -> Any:
    """`--NAME KEY=VALUE,KEY=VALUE` -> executor name's options object, each value read as YAML (as
    `--set` reads it), typed and range-checked like a config key; then the object's own check()."""
    info = EXECUTORS.info(name)
    if text is not None and not text.strip():
        raise ConfigError(f"--{name} is empty; give KEY=VALUE[,KEY=VALUE...] (e.g. --{name} {info.example}) or "
                          f"leave it out")
    if info.options is None:
        if text:
            raise ConfigError(f"--{name}: the {name} executor takes no options")
        return None
    options = info.options()
    given: dict[str, str] = {}
    for item in split_items(text or ""):
        if "=" not in item:
            raise ConfigError(f"--{name} {item!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. --{name} {info.example}")
        parts, value = parse_set(item)
        if len(parts) != 1:
            raise ConfigError(f"--{name} {item!r}: expected a plain key (no dots), e.g. --{name} {info.example}")
        if parts[0] in given:  # as a YAML file refuses a key given twice: which one was meant is a guess
            raise ConfigError(f"--{name}: key {parts[0]!r} appears twice ({given[parts[0]]!r} and {item!r}); keep one")
        given[parts[0]] = item
        try:
            apply_delta(options, {parts[0]: value})
        except ConfigError as e:
            raise ConfigError(f"--{name}: {e}") from None
    if hasattr(options, "check"):
        options.check()
    return options


def split_items(text: str) -> list[str]:
    """'a=1,b=[x, y],c="p,q"' -> ['a=1', 'b=[x, y]', 'c="p,q"']: commas inside brackets or quotes belong
    to the value (a YAML list or string)."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [s.strip() for s in items if s.strip()]
