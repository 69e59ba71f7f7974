"""Reading run folders back: summary.json, config.yaml, metrics.jsonl and eval.jsonl, never console logs.

A run folder is any folder under the results root holding summary.json next to config.yaml (a run
writes summary.json when it completes, is interrupted or fails). Display names, used by every table,
plot and the gallery:
  dataset  the config name's part before the first "_" when the rest starts with the model's registry
           name (configs are named <dataset>_<model>[variant].yaml, so "cifar10_convdcgan64" reads
           "cifar10"); otherwise data.path's file stem for npz data, else the data-set registry name
           (summary.json's "dataset" is the registry name, "npz" for every shared file).
  model    the rest of the config name ("convdcgan64"), or the model's registry name.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gan_bench.errors import GanBenchError
from gan_bench.run_folder import read_jsonl, safe_name


@dataclass
class RunRecord:
    """Everything the reports know about one run folder."""

    path: Path                      # the run folder
    rel: str                        # its path below the results root, with "/" (used as an id)
    dataset: str                    # display names, see the module docstring
    model: str
    seed: int
    summary: dict[str, Any]
    config: dict[str, Any]
    history: list[dict[str, Any]]   # metrics.jsonl: one record per log_every steps
    evals: dict[str, float] = field(default_factory=dict)        # table columns from eval.jsonl
    curves: list[dict[str, Any]] = field(default_factory=list)   # eval lines with checkpoint "training"

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown"))

    def class_gifs(self) -> list[tuple[str, Path]]:
        """(class name, gifs/<name>.gif): in label order when summary.json lists the classes, else
        alphabetical, with names read back from the file names ("baseball_bat" -> "baseball bat")."""
        gifs = self.path / "gifs"
        if self.summary.get("classes"):
            pairs = [(str(c), gifs / f"{safe_name(str(c))}.gif") for c in self.summary["classes"]]
            return [(c, p) for c, p in pairs if p.exists()]
        return [(p.stem.replace("_", " "), p) for p in sorted(gifs.glob("*.gif"))]


def display_names(config: dict[str, Any], summary: dict[str, Any]) -> tuple[str, str]:
    """(dataset, model) display names for a run; the rule is in the module docstring."""
    name = str(config.get("name") or summary.get("name") or "")
    data, arch = config.get("data", {}), str(config.get("model", {}).get("name") or summary.get("model", "?"))
    head, _, rest = name.partition("_")
    if rest and rest.startswith(arch):
        return head, rest
    if data.get("name") == "npz" and data.get("path"):
        return Path(str(data["path"])).stem, arch
    return str(data.get("name") or summary.get("dataset", "?")), arch


def eval_columns(lines: list[dict[str, Any]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """Table columns from eval.jsonl lines, and the "training" lines (metric-vs-step curves).

    Every numeric field of a line is a column named by its key, except step, samples and seed ("fd",
    "kid_mean", "kid_std", and shared details such as "classifier_test_acc", which every metric of
    one evaluation repeats with the same value); the latest line per (metric, checkpoint) wins.
    Columns of the best checkpoint get "@best" appended. Nested values (per-class accuracies) are
    left out.
    """
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    curves = []
    for line in lines:
        metric, ckpt = str(line.get("metric", "?")), str(line.get("checkpoint", "last"))
        if ckpt == "training":
            curves.append(line)
        else:
            latest[(metric, ckpt)] = line
    columns: dict[str, float] = {}
    for (metric, ckpt), line in latest.items():
        for key, value in numeric_fields(line).items():
            columns[key if ckpt == "last" else f"{key}@{ckpt}"] = value
    return columns, curves


def numeric_fields(line: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in line.items()
            if k not in ("step", "samples", "seed") and isinstance(v, (int, float)) and not isinstance(v, bool)}


def read_run(path: Path, root: Path) -> RunRecord:
    """One run folder's records; a malformed summary or config is a one-line error naming the file."""
    summary = _read(path / "summary.json", json.loads)
    config = _read(path / "config.yaml", yaml.safe_load) if (path / "config.yaml").exists() else {}
    dataset, model = display_names(config, summary)
    evals, curves = eval_columns(read_jsonl(path / "eval.jsonl"))
    rel = path.relative_to(root).as_posix() if path != root else path.name
    seed = summary.get("seed", config.get("train", {}).get("seed", 0))
    return RunRecord(path=path, rel=rel, dataset=dataset, model=model, seed=int(seed), summary=summary,
                     config=config, history=read_jsonl(path / "metrics.jsonl"), evals=evals, curves=curves)


def load_runs(root: Path, *, latest_only: bool = True) -> list[RunRecord]:
    """Every run folder under root (root itself may be one), sorted by data set, model, seed.

    latest_only: of several folders with the same config_hash (the same experiment run twice), keep
    the one whose summary.json was written last, so repeats are not counted as extra seeds.
    """
    root = Path(root)
    if not root.is_dir():
        raise GanBenchError(f"results folder {str(root)!r} not found; pass the folder your runs wrote to")
    paths = sorted(p.parent for p in root.rglob("summary.json") if (p.parent / "config.yaml").exists())
    runs = [read_run(p, root) for p in paths]
    if latest_only:
        newest: dict[str, RunRecord] = {}
        for r in sorted(runs, key=lambda r: (r.path / "summary.json").stat().st_mtime):
            newest[str(r.summary.get("config_hash") or r.rel)] = r
        runs = list(newest.values())
    return sorted(runs, key=lambda r: (r.dataset, r.model, r.seed, r.rel))


def _read(path: Path, parse) -> dict[str, Any]:
    try:
        data = parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError) as e:
        raise GanBenchError(f"{path} is unreadable or malformed ({type(e).__name__}); "
                            f"delete that run folder or rerun it") from None
    if not isinstance(data, dict):
        raise GanBenchError(f"{path}: expected a mapping, got {type(data).__name__}; delete that run folder")
    return data

