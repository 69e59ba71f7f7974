"""Reading run folders back (summary, config, records; never console logs), through RunFolder.

A run folder is any folder under the results root holding a summary beside its config (a run writes
its summary when it completes, is interrupted or fails). Display names, used by every table, plot and
the gallery:
  dataset  the config name's part before the first "_" when the rest starts with the model's registry
           name (configs are named <dataset>_<model>[variant].yaml, so "cifar10_convdcgan64" reads
           "cifar10"); otherwise data.path's file stem for a data set named by its file (DatasetInfo:
           a user's .npz), else the data-set registry name.
  model    the rest of the config name ("convdcgan64"), or the model's registry name.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from gan_bench import registry
from gan_bench.config import Config
from gan_bench.data import DATASETS
from gan_bench.errors import GanBenchError
from gan_bench.metrics.contract import INFO, info_of_line
from gan_bench.metrics.registry import METRICS, MetricInfo
from gan_bench.report import experiments
from gan_bench.run import RunFolder


@dataclass
class RunRecord:
    """Everything the reports know about one run folder."""

    folder: RunFolder
    rel: str                        # its path below the results root, with "/" (used as an id)
    dataset: str                    # display names, see the module docstring
    model: str
    seed: int
    summary: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]]   # the metrics records: one per log_every steps
    evals: dict[str, float] = field(default_factory=dict)        # table columns from the eval records
    curves: list[dict[str, Any]] = field(default_factory=list)   # eval lines with checkpoint "training"
    described: dict[str, MetricInfo] = field(default_factory=dict)  # each metric's record as its lines give it

    @property
    def path(self) -> Path:
        return self.folder.path

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    def class_gifs(self) -> list[tuple[str, Path]]:
        """(class name, its GIF), in label order when the summary lists the classes."""
        return self.folder.class_gifs(self.summary.get("classes"))


def display_names(config: dict[str, Any], summary: dict[str, Any]) -> tuple[str, str]:
    """(dataset, model) display names for a run; the rule is in the module docstring."""
    name = str(config.get("name") or summary.get("name") or "")
    data, arch = config.get("data", {}), str(config.get("model", {}).get("name") or summary.get("model", "?"))
    head, _, rest = name.partition("_")
    if rest and rest.startswith(arch):
        return head, rest
    registered = str(data.get("name")) in DATASETS
    if registered and DATASETS.info(str(data["name"])).named_by_file and data.get("path"):
        return Path(str(data["path"])).stem, arch
    return str(data.get("name") or summary.get("dataset", "?")), arch


def eval_columns(lines: list[dict[str, Any]], final_step: Optional[int] = None) -> tuple[dict[str, float],
                                                                                     list[dict[str, Any]]]:
    """Table columns from eval records, and the "training" lines (metric-vs-step curves).

    Every numeric field of a line is a column named by its key, except step, samples and seed ("fd",
    "kid_mean", "kid_std", and shared details such as "classifier_test_acc", which every metric of
    one evaluation repeats with the same value); the latest line per (metric, checkpoint) wins.
    Columns of the best checkpoint get "@best" appended. Nested values (per-class accuracies) are
    left out. A metric never evaluated after training takes its columns from the in-training
    evaluation at `final_step` (the run's last step: the same G that `gan-bench eval` would load), so
    a suite evaluated only during training still has its final numbers in the tables.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    curves = []
    for line in lines:
        metric, ckpt = str(line.get("metric", "?")), str(line.get("checkpoint", "last"))
        if ckpt == "training":
            if line.get("g") != "raw":  # a train.ema run's curves are its average's, the G it shows
                curves.append(line)
        else:
            latest[(metric, ckpt)] = line
    for line in curves:
        if final_step is not None and line.get("step") == final_step:
            latest.setdefault((str(line.get("metric", "?")), "last"), line)
    columns: dict[str, float] = {}
    for (metric, ckpt), line in latest.items():
        for key, value in numeric_fields(line).items():
            columns[key if ckpt == "last" else f"{key}@{ckpt}"] = value
    return columns, curves


# fields of an eval line that say where or how it was measured, not what
WHERE = ("step", "samples", "seed", "train_seconds", "images_seen")


def numeric_fields(line: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in line.items()
            if k not in WHERE and isinstance(v, (int, float)) and not isinstance(v, bool)}


# config.yaml's sections, mappings of keys in every file the trainer writes (the tables read keys of them)
CONFIG_SECTIONS = tuple(f.name for f in dataclasses.fields(Config) if dataclasses.is_dataclass(getattr(Config(), f.name)))
# the summary's numbers the tables compute with (means, sums): a string there is a hand-edited file
SUMMARY_NUMBERS = ("steps", "total_steps", "train_seconds", "images_seen", "img_per_sec", "params_G", "params_D",
                   "peak_cpu_mb", "peak_gpu_mb", "max_minutes", "seed")
# its text the tables group and label by; also its class names (the gallery's per-class GIFs) and speed
# switches (the compute column; "levers" in runs made before the rename)
SUMMARY_TEXTS = ("status", "name", "dataset", "model", "device", "budget")
# what each record file's lines must have for the tables and plots (the trainer always writes them)
RECORD_NUMBERS = {"metrics": ("step", "loss_d", "loss_g"), "eval": ("step",)}


def read_run(folder: RunFolder, root: Path) -> RunRecord:
    """One run folder's records; a malformed summary, config or record file is a one-line error
    naming the file."""
    summary, config = folder.read_summary(), folder.read_config_dict()
    _check_config_shape(folder, config)
    checks = [*((k, number, "a number") for k in SUMMARY_NUMBERS), *((k, _text, "text") for k in SUMMARY_TEXTS),
              ("classes", _names, "a list of class names"),
              *((k, lambda v: isinstance(v, dict), "a mapping") for k in ("speed", "levers"))]
    for key, ok, kind in checks:
        if summary.get(key) is not None and not ok(summary[key]):
            raise GanBenchError(f"{folder.summary_path}: {key} is {repr(summary[key])[:40]}, not {kind}; the file is "
                                f"not the trainer's: delete {folder.path} or rerun it")
    records = {kind: folder.records(kind) for kind in RECORD_NUMBERS}
    for kind, keys in RECORD_NUMBERS.items():
        for line in records[kind]:
            bad = next((k for k in keys if not number(line.get(k))), None)
            if bad:
                shown = json.dumps(line)
                raise GanBenchError(f"{folder.records_path(kind)}: a record has no numeric {bad!r} "
                                    f"({shown[:60] + '...' if len(shown) > 60 else shown}); the file is not the "
                                    f"trainer's: delete {folder.path} or rerun it")
    dataset, model = display_names(config, summary)
    evals, curves = eval_columns(records["eval"], final_step=summary.get("steps"))
    path = folder.path
    rel = path.relative_to(root).as_posix() if path != root else path.name
    seed = summary.get("seed", config.get("train", {}).get("seed", 0))
    described = {line["metric"]: info for line in records["eval"]
                 if isinstance(line.get("metric"), str) and (info := info_of_line(line.get(INFO))) is not None}
    return RunRecord(folder=folder, rel=rel, dataset=dataset, model=model, seed=int(seed), summary=summary,
                     config=config, history=records["metrics"], evals=evals, curves=curves, described=described)


@contextmanager
def recorded_metrics(runs: list[RunRecord]) -> Iterator[None]:
    """While a report is made from `runs`: the metric registry also holds each metric their eval lines
    describe that no loaded code registers (a plugin's, reported without --plugin), with the record its
    lines carry, so tables rank it the plugin's way and the gallery shows it as the plugin would; then
    the registry is as it was."""
    saved = registry.snapshot()
    try:
        for name, info in {n: i for r in runs for n, i in r.described.items()}.items():
            if name and name not in METRICS:
                METRICS.register(name, info)(_recorded_only(name))
        yield
    finally:
        registry.restore(saved)


def _recorded_only(name: str) -> Callable[..., dict]:
    """What stands for a metric known only from its records: it reports, it does not compute."""
    def compute(ctx: Any) -> dict:
        raise GanBenchError(f"metric {name!r} is known here only from its eval records; load the plugin that "
                            f"registers it (--plugin FILE) to compute it")
    return compute


def _check_config_shape(folder: RunFolder, config: dict[str, Any]) -> None:
    """config.yaml's sections are mappings and its seed a number (the tables read keys of them): a
    hand-edited file is one line naming the key, not a traceback."""
    for key in CONFIG_SECTIONS:
        if not isinstance(config.get(key, {}), dict):
            _malformed(folder, key, config[key])
    seed = config.get("train", {}).get("seed", 0)
    if not number(seed):
        _malformed(folder, "train.seed", seed)


def _malformed(folder: RunFolder, key: str, value: Any) -> None:
    raise GanBenchError(f"{folder.config_path}: {key} is {repr(value)[:40]}, not what the trainer writes; the file "
                        f"is malformed: delete {folder.path} or rerun it")


def machine_tags(devices) -> dict[str, str]:
    """summary.json's device -> "m1", "m2", ... (sorted), when the runs name more than one; {} when they
    name one or none. Minutes and images/s of two machines are not one quantity (an AMX Xeon in bf16
    trains twice as fast as a float32 one), so plots keep them apart and say which machine is which."""
    names = sorted({str(d) for d in devices if d})
    return {d: f"m{i + 1}" for i, d in enumerate(names)} if len(names) > 1 else {}


def machines_note(tags: dict[str, str]) -> str:
    """The footnote that names each tag's machine ("" when there are no tags)."""
    return "\n".join(f"{t}: {d}" for d, t in tags.items())


def to_stderr(line: str) -> None:
    """The default `warn` of load_runs: the line on stderr."""
    print(line, file=sys.stderr)


def number(value: Any) -> bool:
    """A JSON number (True and False are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value: Any) -> bool:
    return isinstance(value, str)


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def runs_under(root: Path, *, warn: Callable[[str], None] = to_stderr) -> list[RunRecord]:
    """load_runs(root), or a one-line error when there are none."""
    runs = load_runs(root, warn=warn)
    if not runs:
        raise GanBenchError(f"no run folders ({RunFolder.SUMMARY} + {RunFolder.CONFIG}) under {str(root)!r}")
    return runs


def load_runs(root: Path, *, latest_only: bool = True, warn: Callable[[str], None] = to_stderr) -> list[RunRecord]:
    """Every run folder under root (root itself may be one), sorted by data set, model, seed.

    latest_only: of several folders with the same config_hash (the same experiment run twice), keep
    the one whose summary.json was written last, so repeats are not counted as extra seeds.
    Runs of one display name whose configs differ beyond the seed get what differs appended to their
    model name (experiments.py), so no table averages them as seeds. warn: one line per run or folder
    that could not be read and is left out (a summary that is a symlink loop, a folder without read
    permission).
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise GanBenchError(f"results folder {str(root)!r} {what}; pass the folder your runs wrote to")
    for line in unreadable(root):
        warn(line)
    runs = [read_run(f, root) for f in RunFolder.find(root)]
    if latest_only:
        newest: dict[str, RunRecord] = {}
        for r in sorted(runs, key=lambda r: r.folder.summary_path.stat().st_mtime):
            newest[str(r.summary.get("config_hash") or r.rel)] = r
        runs = list(newest.values())
    by_name: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        by_name.setdefault((r.dataset, r.model), []).append(r)
    for group in by_name.values():
        for r, label in zip(group, experiments.labels([r.config for r in group])):
            r.model = f"{r.model} ({label})" if label else r.model
    return sorted(runs, key=lambda r: (r.dataset, r.model, r.seed, r.rel))


def unreadable(root: Path) -> list[str]:
    """ "skipped ...": the folders under root that cannot be listed and the run folders whose summary or
    config cannot be opened (RunFolder.find passes over both without a word)."""
    out: list[str] = []
    walk = os.walk(root, onerror=lambda e: out.append(f"skipped {e.filename}: cannot list the folder "
                                                          f"({e.strerror}); its runs are not in the report"))
    for folder, _, files in walk:
        if RunFolder.SUMMARY not in files or RunFolder.CONFIG not in files:
            continue
        for name in (RunFolder.SUMMARY, RunFolder.CONFIG):
            try:
                os.stat(os.path.join(folder, name))
            except OSError as e:
                out.append(f"skipped run {folder}: cannot open its {name} ({e.strerror}); it is not in the report")
                break
    return out

