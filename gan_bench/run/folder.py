"""RunFolder: the one object that knows a run folder's files, and reads and writes each of them.

Layout of results/<config-name>/<id>/ (a suite's runs: <out>/<name>/seed<k>/, its log beside it):
  config.yaml     the resolved config, written before training starts
  metrics.jsonl   one record per train.log_every steps (losses, D outputs, speed)
  events.jsonl    warnings of the collapse watch (train/watch.py)
  eval.jsonl      one line per metric per evaluation (gan-bench eval, eval.every during training)
  summary.json    how the run ended and what it measured, written when it completes, stops or fails
  losses.png  progress.gif  samples/epoch_0001.png ...  gifs/<class>.gif
  checkpoints/last.pt  checkpoints/best.pt (eval.every)  checkpoints/classes/<class>.pt (per-class models)
  tensorboard/    the tensorboard tracker's event files; wandb/ the wandb tracker's local files (train.trackers)
  trackers.json   the runs of the trackers that keep one (MLflow, W&B), continued by --resume
Every module that touches a run (the trainer, metrics, sampling, suites, reports) goes through this
class; no file name of a run is written anywhere else.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from PIL import Image

from gan_bench.config import Config, build_config, read_yaml
from gan_bench.errors import GanBenchError
from gan_bench.run import files
from gan_bench.run.checkpoint import load_checkpoint, save_checkpoint
from gan_bench.run.files import safe_name

CHECKPOINTS = ("last", "best")  # what `--checkpoint` may name


class RunFolder:
    CONFIG = "config.yaml"
    SUMMARY = "summary.json"
    RECORDS = {"metrics": "metrics.jsonl", "events": "events.jsonl", "eval": "eval.jsonl"}
    LOSSES = "losses.png"
    PROGRESS = "progress.gif"
    SAMPLES, GIFS, CHECKPOINTS, CLASSES, TENSORBOARD = "samples", "gifs", "checkpoints", "classes", "tensorboard"
    WANDB, TRACKER_RUNS = "wandb", "trackers.json"
    SUBFOLDERS = (SAMPLES, GIFS, CHECKPOINTS)

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.made_from: Optional[Path] = None  # the outermost folder made for this run, when it is new

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __str__(self) -> str:
        return str(self.path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunFolder) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    # ---- making and finding run folders ----------------------------------------------------------

    @classmethod
    def create(cls, out: Path | str, name: str) -> "RunFolder":
        """A fresh <out>/<name>/<timestamp>/; mkdir without exist_ok makes two concurrent runs never
        share one."""
        parent = Path(out) / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GanBenchError(f"cannot create the output folder {str(parent)!r} ({e.strerror}); "
                                f"choose a writable one with --out") from None
        if not os.access(parent, os.W_OK):
            raise GanBenchError(f"output folder {str(parent)!r} is not writable; choose another with --out")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            run = parent / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                run.mkdir()
            except FileExistsError:
                continue
            except OSError as e:
                raise GanBenchError(f"cannot create a run folder in {str(parent)!r} ({e.strerror}); "
                                    f"choose another with --out") from None
            return cls(run).prepare()
        raise GanBenchError(f"too many runs started this second in {str(parent)!r}")

    def prepare(self) -> "RunFolder":
        """Make the folder and its sub-folders (a suite names its runs' folders itself)."""
        try:
            for sub in self.SUBFOLDERS:
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GanBenchError(f"cannot create the run folder {str(self.path)!r} ({e.strerror}); "
                                f"choose a writable one with --out") from None
        return self

    def discard(self) -> None:
        """Delete the folder (a run that failed before it trained a step leaves nothing behind), and the
        folders above it that were made for it (made_from)."""
        shutil.rmtree(self.made_from or self.path, ignore_errors=True)

    @classmethod
    def find(cls, root: Path | str) -> list["RunFolder"]:
        """Every run folder under root (root included): a summary.json beside a config.yaml."""
        return [cls(p.parent) for p in sorted(Path(root).rglob(cls.SUMMARY)) if (p.parent / cls.CONFIG).exists()]

    def is_run(self) -> bool:
        return self.config_path.exists()

    # ---- paths -----------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG

    @property
    def summary_path(self) -> Path:
        return self.path / self.SUMMARY

    def records_path(self, kind: str) -> Path:
        return self.path / self.RECORDS[kind]

    @property
    def losses_path(self) -> Path:
        return self.path / self.LOSSES

    @property
    def progress_path(self) -> Path:
        return self.path / self.PROGRESS

    @property
    def tensorboard_path(self) -> Path:
        return self.path / self.TENSORBOARD

    @property
    def wandb_dir(self) -> Path:
        """W&B's local files; W&B makes this folder, named so, in the folder it is given (its parent)."""
        return self.path / self.WANDB

    @property
    def log_path(self) -> Path:
        """Where a suite's child process writes this run's console output (beside the folder)."""
        return self.path.parent / f"{self.path.name}.log"

    def checkpoint_path(self, which: str = "last") -> Path:
        return self.path / self.CHECKPOINTS / f"{which}.pt"

    @property
    def class_exports_path(self) -> Path:
        return self.path / self.CHECKPOINTS / self.CLASSES

    def snapshot_path(self, epoch: int) -> Path:
        return self.path / self.SAMPLES / f"epoch_{epoch:04d}.png"

    def snapshots(self) -> list[Path]:
        return sorted((self.path / self.SAMPLES).glob("epoch_*.png"))

    def class_gif_path(self, class_name: str) -> Path:
        return self.path / self.GIFS / f"{safe_name(class_name)}.gif"

    def class_gifs(self, classes: Optional[list[str]] = None) -> list[tuple[str, Path]]:
        """(class name, its GIF) in label order when the classes are known, else alphabetical with the
        names read back from the file names ("baseball_bat" -> "baseball bat")."""
        if classes:
            return [(c, p) for c, p in ((str(c), self.class_gif_path(str(c))) for c in classes) if p.exists()]
        return [(p.stem.replace("_", " "), p) for p in sorted((self.path / self.GIFS).glob("*.gif"))]

    # ---- config ----------------------------------------------------------------------------------

    def write_config(self, cfg: Config) -> None:
        files.atomic_write_text(self.config_path, cfg.to_yaml())

    def read_config(self) -> Config:
        """The config the run was started with, re-validated."""
        if not self.config_path.exists():
            raise GanBenchError(f"{self.path} is not a run folder (no {self.CONFIG}); pass results/<config>/<id>")
        try:
            d = read_yaml(self.config_path)
        except GanBenchError:
            raise GanBenchError(f"{self.config_path} is malformed; this run folder cannot be resumed, sampled or "
                                f"evaluated: restore the file, or start a new run") from None
        return build_config([d])

    def rewrite_budget(self, cfg: Config, *, step: int, message: str) -> None:
        """`run --resume --set train.epochs=N`: config.yaml takes cfg's larger budget (the rest is the same,
        RunFolder.load_checkpoint checked it), the shorter run's summary goes (the run is in progress
        again, as one that was never complete; its records up to `step` stay) and events.jsonl says
        when the budget changed (`message`: train/budget.py's words)."""
        self.write_config(cfg)
        self.summary_path.unlink(missing_ok=True)
        self.append("events", {"step": step, "event": "budget", "message": message})

    def read_config_dict(self) -> dict[str, Any]:
        """config.yaml as written (reports read it without validating: an old run stays readable)."""
        if not self.is_run():
            return {}
        try:
            return read_yaml(self.config_path)  # a mapping, or a one-line ConfigError
        except GanBenchError:
            raise GanBenchError(f"{self.config_path} is unreadable or malformed; delete {self.path} or rerun it") from None

    # ---- trackers --------------------------------------------------------------------------------

    def tracker_run(self, tracker: str) -> Optional[str]:
        """The id of this run's run in a tracker (MLflow, W&B), saved when it started, so a resume continues it."""
        path = self.path / self.TRACKER_RUNS
        return self._read(path, json.loads).get(tracker) if path.exists() else None

    def save_tracker_run(self, tracker: str, run_id: str) -> None:
        path = self.path / self.TRACKER_RUNS
        ids = self._read(path, json.loads) if path.exists() else {}
        files.write_json(path, {**ids, tracker: run_id})

    # ---- records ---------------------------------------------------------------------------------

    def append(self, kind: str, record: dict[str, Any]) -> None:
        """One line of metrics.jsonl, events.jsonl or eval.jsonl."""
        files.append_jsonl(self.records_path(kind), record)

    def append_all(self, kind: str, records: list[dict[str, Any]]) -> None:
        """Lines that belong together (one evaluation's metrics) in one write: all of them or none."""
        files.append_jsonl_all(self.records_path(kind), records)

    def cannot_append(self, kind: str) -> Optional[str]:
        """Why lines could not be appended to a record file (read-only), or None; nothing is changed."""
        return files.cannot_append(self.records_path(kind))

    def records(self, kind: str) -> list[dict[str, Any]]:
        return files.read_jsonl(self.records_path(kind))

    def truncate_records(self, *, max_step: int) -> list[Path]:
        """Drop the records after max_step: what a resumed run logs again. A line in the middle of a file
        that is not a record (a torn last line is expected after a kill and goes silently) is said on
        stderr, by number, and the file as it was is kept beside it as <file>.corrupt; returns those copies."""
        kept = []
        for kind in self.RECORDS:
            path = self.records_path(kind)
            bad = files.garbage_lines(path)
            if bad:
                copy = self._unused(path.with_name(path.name + ".corrupt"))
                files.atomic_write_bytes(copy, path.read_bytes())
                kept.append(copy)
                lines = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
                print(f"gan-bench: warning: {path} line{'s' if len(bad) > 1 else ''} {lines} {'is' if len(bad) == 1 else 'are'} "
                      f"not a JSON record and {'was' if len(bad) == 1 else 'were'} dropped; the file as it was is kept "
                      f"as {copy.name}", file=sys.stderr)
            files.truncate_jsonl(path, max_step=max_step)
        return kept

    @staticmethod
    def _unused(path: Path) -> Path:
        """path, or path.1, path.2, ...: the first name not taken."""
        i, free = 0, path
        while free.exists():
            i += 1
            free = path.with_name(f"{path.name}.{i}")
        return free

    # ---- summary ---------------------------------------------------------------------------------

    def write_summary(self, summary: dict[str, Any]) -> None:
        files.write_json(self.summary_path, summary)

    def has_summary(self) -> bool:
        return self.summary_path.exists()

    def read_summary(self) -> dict[str, Any]:
        return self._read(self.summary_path, json.loads)

    def _read(self, path: Path, parse) -> dict[str, Any]:
        try:
            data = parse(path.read_text())
        except (OSError, ValueError, GanBenchError) as e:
            raise GanBenchError(f"{path} is unreadable or malformed ({type(e).__name__}); "
                                f"delete {self.path} or rerun it") from None
        if not isinstance(data, dict):
            raise GanBenchError(f"{path}: expected a mapping, got {type(data).__name__}; delete {self.path}")
        return data

    # ---- pictures --------------------------------------------------------------------------------

    def save_snapshot(self, epoch: int, images: torch.Tensor, *, nrow: int,
                      labels: Optional[list[str]] = None) -> None:
        """The fixed-noise grid after `epoch` (images (B, C, H, W) in [-1, 1], nrow per row; labels:
        the class of each row, written at its left)."""
        files.save_png(self.snapshot_path(epoch), files.grid(images, nrow, labels=labels))

    def write_gifs(self, classes: Optional[list[str]], cell: int) -> None:
        """progress.gif from all snapshots; for one-row-per-class grids also gifs/<class>.gif."""
        frames = [np.asarray(Image.open(p)) for p in self.snapshots()]
        if not frames:
            return
        scale = 2 if cell <= 32 else 1  # 28-pixel doodles are too small to look at 1:1
        files.write_gif(self.progress_path, frames, scale=scale)
        left = files.label_margin(classes)  # a class's own GIF is named by it: no label column
        for k, name in enumerate(classes or []):
            files.write_gif(self.class_gif_path(name), [files.class_row(f, k, cell, left=left) for f in frames],
                            scale=scale * 2)

    def write_loss_plot(self, records: list[dict[str, Any]]) -> None:
        files.loss_plot(self.losses_path, records, title=self.path.parent.name)

    # ---- checkpoints -----------------------------------------------------------------------------

    def has_checkpoint(self, which: str = "last") -> bool:
        return self.checkpoint_path(which).exists()

    def save_checkpoint(self, payload: dict[str, Any]) -> None:
        """checkpoints/last.pt, atomically; then tidy what writers killed earlier left behind."""
        save_checkpoint(self.checkpoint_path("last"), payload,
                        then=f"resume with `gan-bench run --resume {self.path}`", first="start the run again")
        files.remove_stale_temp_files(self.path)

    def keep_best(self) -> None:
        """checkpoints/best.pt := last.pt (just written for the best evaluation so far)."""
        with files.run_file(self.checkpoint_path("best")) as tmp:
            shutil.copyfile(self.checkpoint_path("last"), tmp)

    def load_checkpoint(self, cfg: Config, which: str = "last") -> dict[str, Any]:
        """A checkpoint of this run, checked against its config; the message says why one is missing."""
        if which not in CHECKPOINTS:
            raise GanBenchError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {which!r}")
        path = self.checkpoint_path(which)
        if path.is_symlink() and not path.exists():  # exists() says False for a dangling or looping link too
            raise GanBenchError(f"{path} is a symbolic link to nothing readable (dangling or a loop); point it at "
                                f"the checkpoint file or restore the file itself")
        if not path.exists():
            if which == "best":
                raise GanBenchError(f"{self.path} has no checkpoints/best.pt (it is kept only when eval.every > 0 "
                                    f"during training); use --checkpoint last")
            raise GanBenchError(f"{self.path} has no checkpoints/last.pt: the run stopped before its first "
                                f"checkpoint; start it again")
        # up to the budget: `run --resume --set train.epochs=N` raises it, and the checkpoint of the shorter
        # run is where the longer one goes on from (until its own first checkpoint)
        return load_checkpoint(path, config_hash=cfg.hash(), run_hash=cfg.hash(budget=False))

    def write_class_exports(self, payloads: dict[str, dict[str, Any]]) -> list[Path]:
        """checkpoints/classes/<class>.pt, one per class (a per-class model's own pairs)."""
        self.class_exports_path.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, payload in payloads.items():
            path = self.class_exports_path / f"{safe_name(name)}.pt"
            save_checkpoint(path, payload)
            paths.append(path)
        return paths

    def remove_stale_temp_files(self) -> list[Path]:
        return files.remove_stale_temp_files(self.path)
