"""Where else a run is watched: TensorBoard, MLflow, Weights & Biases, or a plugin's tracker (a registry).

`train.trackers: [tensorboard, mlflow, wandb]` names them (`train.tensorboard: true` is the older way to
list tensorboard). Each receives what the run folder receives, as it is written: the config when the run
starts, the scalars of each metrics record (and the numbers of eval.every), every sample grid, and the
summary at the end. Each is an optional extra: its package is imported and its store checked before the
run folder is made, so a missing one leaves nothing behind. A tracker is an observer: one that fails in
the middle of a run is dropped with one line and training goes on, since the run folder holds the records.

A tracker is a Tracker subclass registered with TRACKERS.register(name, module=..., install=...); it is
built as cls(run, cfg, resumed=...) on rank 0, after the run folder exists.
"""
from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from gan_bench.config import Config, flat, register_names
from gan_bench.errors import GanBenchError
from gan_bench.plugins import broken, describe, plugin_call
from gan_bench.registry import Entry, Registry
from gan_bench.run import RunFolder

SCALARS = ("loss_d", "loss_g", "d_x", "d_g_z", "img_per_sec")  # of each metrics record, what trackers plot


@dataclass(frozen=True)
class TrackerInfo:
    """module: what it imports (checked before the run folder is made); install: how to get it;
    description: one line for `gan-bench list`."""

    module: str
    install: str
    description: str = ""


class Tracker:
    """What a tracker receives; each method may do nothing."""

    @classmethod
    def check(cls, cfg: Config) -> None:
        """Before the run folder exists (the module imports): raise GanBenchError if it cannot start."""

    @classmethod
    def address(cls) -> str:
        """Where its store is, for messages (" at http://host:5000"), or ""."""
        return ""

    def __init__(self, run: RunFolder, cfg: Config, *, resumed: bool) -> None:
        self.run, self.cfg = run, cfg

    def scalars(self, values: dict[str, float], step: int) -> None:
        """Numbers at a training step: SCALARS of a metrics record, or eval/<metric> of eval.every."""

    def image(self, name: str, path: Path, step: int) -> None:
        """A sample grid (PNG) the run folder has just written."""

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's summary.json, just written (status: completed, interrupted or failed)."""

    def close(self) -> None:
        """Always called last, also when training raised."""


def _is_tracker_class(entry: Entry) -> None:
    """At registration: a tracker is a class the run builds, not a function (a plugin's import fails with
    one line naming its file and line)."""
    if not (isinstance(entry.obj, type) and issubclass(entry.obj, Tracker)):
        raise TypeError(f"tracker {entry.name!r}: register a subclass of gan_bench.Tracker (its methods are what the run "
                        f"calls), got {describe(entry.obj)}")


TRACKERS: Registry[type[Tracker], TrackerInfo] = Registry("tracker", TrackerInfo, on_register=_is_tracker_class)
register_names("train.trackers", "tracker", TRACKERS.names)
CHECK_SECONDS = 30.0  # a tracker's check (reaching its store) that takes longer is reported, not waited for


def tracker_names(cfg: Config) -> list[str]:
    return list(dict.fromkeys([*cfg.train.trackers, *(["tensorboard"] if cfg.train.tensorboard else [])]))


def check_trackers(cfg: Config) -> None:
    """Before the run folder is made: every tracker's package imports and its own check passes."""
    for name in tracker_names(cfg):
        check_tracker(name, cfg)


def check_tracker(name: str, cfg: Config, *, seconds: float = CHECK_SECONDS) -> None:
    """Tracker `name`'s contract and store: a Tracker subclass, its module importable, its check(cfg)
    passing within `seconds` (an unreachable server is named in seconds, not after minutes of retries;
    a plugin's check that raises is one line naming its file and line)."""
    entry = TRACKERS.entry(name)
    if not (isinstance(entry.obj, type) and issubclass(entry.obj, Tracker)):
        raise broken(f"tracker {name!r}", entry.obj, describe(entry.obj), "a subclass of gan_bench.Tracker")
    try:
        importlib.import_module(entry.info.module)
    except ImportError:
        raise GanBenchError(f"train.trackers: {name} is not installed ({entry.info.module} cannot be imported); "
                            f"{entry.info.install}, or take {name} out of train.trackers") from None
    outcome: list[BaseException] = []

    def run_check() -> None:
        try:
            with plugin_call(f"tracker {name!r}: check(cfg)", entry.obj.check, expects="check(cls, cfg: Config) -> None"):
                entry.obj.check(cfg)
        except BaseException as e:  # noqa: BLE001  handed to the caller's thread
            outcome.append(e)

    worker = threading.Thread(target=run_check, name=f"check {name}", daemon=True)  # daemon: never holds the exit
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise GanBenchError(f"train.trackers: {name} did not finish checking its store within {seconds:g} s"
                            f"{entry.obj.address()}; check that it is reachable, or take {name} out of train.trackers")
    if outcome:
        raise outcome[0]


class Trackers:
    """The run's trackers, fanned out (rank 0; elsewhere an empty list)."""

    def __init__(self, active: list[tuple[str, Tracker]] = (),
                 say: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> None:
        self.active, self.say = list(active), say

    @classmethod
    def start(cls, run: RunFolder, cfg: Config, *, resumed: bool) -> "Trackers":
        started = cls()
        for name in tracker_names(cfg):
            try:
                started.active.append((name, TRACKERS.get(name)(run, cfg, resumed=resumed)))
            except Exception as e:  # noqa: BLE001  a tracker's own failure (a store refusing, ...): one line
                started.close()
                raise GanBenchError(f"train.trackers: {name} could not start ({type(e).__name__}: "
                                    f"{_first_line(e)}); fix that, or take {name} out of train.trackers") from None
        return started

    def _each(self, method: str, *args: Any) -> None:
        for name, tracker in list(self.active):
            try:
                getattr(tracker, method)(*args)
            except Exception as e:  # noqa: BLE001  an observer must not stop training
                self.active.remove((name, tracker))
                self.say(f"gan-bench: warning: tracker {name} failed ({type(e).__name__}: {_first_line(e)}) and is "
                         f"dropped for the rest of this run; the run folder has every record")
                if method != "close":
                    self._close_one(name, tracker)

    def _close_one(self, name: str, tracker: Tracker) -> None:
        try:
            tracker.close()
        except Exception:  # noqa: BLE001  already reported once
            pass

    def scalars(self, values: dict[str, float], step: int) -> None:
        if values:
            self._each("scalars", values, step)

    def image(self, name: str, path: Path, step: int) -> None:
        self._each("image", name, path, step)

    def finish(self, summary: dict[str, Any]) -> None:
        self._each("finish", summary)

    def close(self) -> None:
        self._each("close")
        self.active = []


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [""])[0][:300]




def _numbers(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _run_name(run: RunFolder, cfg: Config) -> str:
    return f"{cfg.name}/{run.name}"


# ---- the built-in trackers ------------------------------------------------------------------------

@TRACKERS.register("tensorboard", module="torch.utils.tensorboard", install="pip install 'gan-bench[tensorboard]'",
                   description="event files in the run folder's tensorboard/")
class TensorBoard(Tracker):
    def __init__(self, run: RunFolder, cfg: Config, *, resumed: bool) -> None:
        from torch.utils.tensorboard import SummaryWriter

        super().__init__(run, cfg, resumed=resumed)
        self.writer = SummaryWriter(str(run.tensorboard_path))
        self.writer.add_text("config", "    " + cfg.to_yaml().replace("\n", "\n    "))  # indented: shown verbatim

    def scalars(self, values: dict[str, float], step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def image(self, name: str, path: Path, step: int) -> None:
        import numpy as np
        from PIL import Image

        with Image.open(path) as img:
            self.writer.add_image(name, np.asarray(img.convert("RGB")), step, dataformats="HWC")

    def finish(self, summary: dict[str, Any]) -> None:
        self.writer.add_text("summary", "    " + json.dumps(summary, indent=2).replace("\n", "\n    "))

    def close(self) -> None:
        self.writer.close()


@contextmanager
def _env_default(**values: str) -> Iterator[None]:
    """Environment variables set for a block where the user has not set them; put back after."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)


def _mlflow_experiment() -> str:
    return os.environ.get("MLFLOW_EXPERIMENT_NAME") or "gan-bench"


@TRACKERS.register("mlflow", module="mlflow", install="pip install 'gan-bench[mlflow]'",
                   description="an MLflow run in experiment $MLFLOW_EXPERIMENT_NAME (gan-bench) at $MLFLOW_TRACKING_URI")
class MLflow(Tracker):
    STATUS = {"completed": "FINISHED", "interrupted": "KILLED"}  # anything else: FAILED

    @classmethod
    def address(cls) -> str:
        import mlflow

        return f" (MLFLOW_TRACKING_URI {mlflow.get_tracking_uri()!r})"

    @classmethod
    def check(cls, cfg: Config) -> None:
        import mlflow
        from mlflow.tracking import MlflowClient

        try:  # reaches the store (a server, a database, a folder) before the run folder exists; one try of a few
            # seconds, not MLflow's retries with backoff (minutes on an unreachable server); a user's own settings win
            with _env_default(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10"):
                MlflowClient().get_experiment_by_name(_mlflow_experiment())
        except Exception as e:  # noqa: BLE001  MLflow raises many kinds (a missing driver, a refused connection)
            raise GanBenchError(f"train.trackers: mlflow cannot use its tracking store {mlflow.get_tracking_uri()!r} "
                                f"({type(e).__name__}: {_first_line(e)}); set MLFLOW_TRACKING_URI to one that works "
                                f"(a server, or file:./mlruns with MLFLOW_ALLOW_FILE_STORE=true)") from None

    def __init__(self, run: RunFolder, cfg: Config, *, resumed: bool) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        super().__init__(run, cfg, resumed=resumed)
        self.client, self.status = MlflowClient(), "FAILED"
        self.id = run.tracker_run("mlflow") if resumed else None
        if self.id is not None and self._exists(self.id):
            self.client.update_run(self.id, status="RUNNING")
            return
        name = _mlflow_experiment()
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        tags = {"gan_bench.run_folder": str(run.path.resolve()), "dataset": cfg.data.name, "model": cfg.model.name,
                "seed": str(cfg.train.seed), "config_hash": cfg.hash()}
        self.id = self.client.create_run(exp_id, run_name=_run_name(run, cfg), tags=tags).info.run_id
        run.save_tracker_run("mlflow", self.id)
        params = [Param(k, str(v)[:500]) for k, v in flat(cfg.to_dict()).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a call
            self.client.log_batch(self.id, params=params[i:i + 100])
        self.client.log_artifact(self.id, str(run.config_path))

    def _exists(self, run_id: str) -> bool:
        try:
            self.client.get_run(run_id)
            return True
        except Exception:  # noqa: BLE001  another store, or deleted: start a new MLflow run
            return False

    def scalars(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        ms = int(time.time() * 1000)
        self.client.log_batch(self.id, metrics=[Metric(k, float(v), ms, step) for k, v in values.items()])

    def image(self, name: str, path: Path, step: int) -> None:
        self.client.log_artifact(self.id, str(path), artifact_path=name)

    def finish(self, summary: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        ms, step = int(time.time() * 1000), int(summary.get("steps") or 0)
        numbers = [Metric(f"summary/{k}", v, ms, step) for k, v in _numbers(summary).items()]
        for i in range(0, len(numbers), 1000):
            self.client.log_batch(self.id, metrics=numbers[i:i + 1000])
        self.client.log_artifact(self.id, str(self.run.summary_path))
        self.client.set_tag(self.id, "status", str(summary.get("status")))
        self.status = self.STATUS.get(str(summary.get("status")), "FAILED")

    def close(self) -> None:
        self.client.set_terminated(self.id, status=self.status)


@TRACKERS.register("wandb", module="wandb", install="pip install 'gan-bench[wandb]'",
                   description="a W&B run in project $WANDB_PROJECT (gan-bench); WANDB_MODE=offline needs no network")
class WandB(Tracker):
    @classmethod
    def check(cls, cfg: Config) -> None:
        import wandb

        if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun") or os.environ.get("WANDB_API_KEY"):
            return
        if not wandb.login(prompt=False):  # would otherwise ask on the terminal, after the run folder exists
            raise GanBenchError("train.trackers: wandb is not logged in; run `wandb login`, or set WANDB_MODE=offline "
                                "(sync later with `wandb sync RUN/wandb/offline-run-*`)")

    def __init__(self, run: RunFolder, cfg: Config, *, resumed: bool) -> None:
        import wandb

        super().__init__(run, cfg, resumed=resumed)
        self.exit_code = 1
        saved = run.tracker_run("wandb") if resumed else None
        self.r = wandb.init(project=os.environ.get("WANDB_PROJECT") or "gan-bench", name=_run_name(run, cfg),
                            group=cfg.name, config=cfg.to_dict(), id=saved, resume="allow" if saved else None,
                            dir=None if os.environ.get("WANDB_DIR") else str(run.wandb_dir.parent),
                            reinit="create_new",  # a suite trains many runs in one process
                            settings=wandb.Settings(console="off", silent=True))
        run.save_tracker_run("wandb", self.r.id)
        # our own step axis: a resumed run logs again from its checkpoint's step, which W&B's own
        # step (increasing only) would drop
        self.r.define_metric("step", hidden=True)
        self.r.define_metric("*", step_metric="step")

    def scalars(self, values: dict[str, float], step: int) -> None:
        self.r.log({**values, "step": step})

    def image(self, name: str, path: Path, step: int) -> None:
        import wandb

        self.r.log({name: wandb.Image(str(path)), "step": step})

    def finish(self, summary: dict[str, Any]) -> None:
        self.r.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))})
        self.exit_code = 0 if summary.get("status") == "completed" else 1

    def close(self) -> None:
        self.r.finish(exit_code=self.exit_code)
