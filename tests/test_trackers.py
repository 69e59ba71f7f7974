"""Trackers: a short run of the demo config logged to MLflow (its local file store), W&B (offline) and
TensorBoard at once, each read back and compared with the run folder's own records; a missing package or
an unusable store is one line before anything is written; a tracker failing mid-run is dropped."""
from __future__ import annotations

import glob
import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest

from gan_bench.cli import main
from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread")

INSTALLED = [t for t, module in (("tensorboard", "tensorboard"), ("mlflow", "mlflow"), ("wandb", "wandb"))
             if importlib.util.find_spec(module) is not None]
DEMO = ["run", str(ROOT / "configs" / "demo.yaml"), "--set", "train.max_steps=6", "--set", "data.per_class=10",
        "--set", "train.log_every=2", "--set", "model.width=4", "--set", "train.progress=false"]


def _env(monkeypatch, tmp: Path) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp / "mlruns").as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store behind this switch
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo, shortened, with every tracker that is installed."""
    if not INSTALLED:
        pytest.skip("no tracker package is installed (pip install -e '.[mlflow,wandb,tensorboard]')")
    tmp = tmp_path_factory.mktemp("trackers")
    with pytest.MonkeyPatch.context() as mp:
        _env(mp, tmp)
        mp.chdir(tmp)
        assert main([*DEMO, "--set", f"train.trackers=[{', '.join(INSTALLED)}]", "--out", "res"]) == 0
    return next((tmp / "res" / "demo").iterdir())


def _logged(run: Path, key: str) -> dict[int, float]:
    return {r["step"]: r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())}


def test_mlflow_run_holds_the_scalars_grids_config_and_summary(demo: Path):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install -e '.[mlflow]')")
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(demo.parents[2] / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("gan-bench").experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == f"demo/{demo.name}"
    assert run.data.tags["status"] == "completed" and run.data.params["model.name"] == "cdcgan"
    for key in ("loss_d", "loss_g", "d_x"):
        history = {m.step: m.value for m in client.get_metric_history(run.info.run_id, key)}
        assert history == pytest.approx(_logged(demo, key)) and sorted(history) == [2, 4, 6]
    assert run.data.metrics["summary/steps"] == 6
    files = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.yaml", "summary.json", "samples"} <= files
    assert "samples/epoch_0001.png" in {a.path for a in client.list_artifacts(run.info.run_id, "samples")}
    assert json.loads((demo / "trackers.json").read_text())["mlflow"] == run.info.run_id


def _wandb_records(path: Path):
    """The records of an offline W&B run file: W&B's LevelDB-style log (a 7-byte header, then 32 KiB
    blocks of records, each a CRC, a length and a type: full, or first/middle/last pieces) of protobufs."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, piece = path.read_bytes(), 7, b""
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if left < 7 or (n == 0 and kind == 0):  # the rest of a block is padding
            pos += left
            continue
        piece, pos = piece + data[pos + 7:pos + 7 + n], pos + 7 + n
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(piece)
            piece = b""
            yield record


def test_offline_wandb_run_holds_the_scalars_grids_config_and_summary(demo: Path):
    pytest.importorskip("wandb", reason="the wandb extra is not installed (pip install -e '.[wandb]')")
    (file,) = glob.glob(str(demo / "wandb" / "offline-run-*" / "run-*.wandb"))
    history, summary, config = [], {}, {}
    for r in _wandb_records(Path(file)):
        kind = r.WhichOneof("record_type")
        if kind == "history":
            history.append({i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item})
        elif kind == "summary":
            summary.update({i.key: json.loads(i.value_json) for i in r.summary.update if i.key})
        elif kind == "run":
            config = {i.key: json.loads(i.value_json) for i in r.run.config.update}
    for key in ("loss_d", "loss_g"):
        assert {h["step"]: h[key] for h in history if key in h} == pytest.approx(_logged(demo, key))
    assert sum("samples/path" in h for h in history) == len(list((demo / "samples").glob("*.png")))
    assert summary["status"] == "completed" and summary["steps"] == 6
    assert config["model"]["name"] == "cdcgan"
    assert json.loads((demo / "trackers.json").read_text())["wandb"] in file


def test_tensorboard_events_hold_the_scalars_and_grids(demo: Path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(demo / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert {e.step: e.value for e in events.Scalars("loss_d")} == pytest.approx(_logged(demo, "loss_d"))
    assert len(events.Images("samples")) == len(list((demo / "samples").glob("*.png")))


@pytest.mark.parametrize("module", ["mlflow", "wandb"])
def test_a_tracker_not_installed_is_one_line_before_anything_is_written(module, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were absent
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--set", f"train.trackers=[{module}]", "--out", "res"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and f"{module} is not installed" in err and f"gan-bench[{module}]" in err
    assert not (tmp_path / "res").exists()


def test_an_unusable_mlflow_store_is_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nowhere://store")
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--set", "train.trackers=[mlflow]", "--out", "res"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "mlflow cannot use its tracking store 'nowhere://store'" in err
    assert not (tmp_path / "res").exists()


def test_wandb_without_a_login_or_offline_mode_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("wandb", reason="the wandb extra is not installed")
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--set", "train.trackers=[wandb]", "--out", "res"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "wandb is not logged in" in err and "WANDB_MODE=offline" in err
    assert not (tmp_path / "res").exists()


def test_a_tracker_failing_mid_run_is_dropped_and_training_goes_on(tmp_path, monkeypatch, capsys,
                                                                   isolated_registries):
    (tmp_path / "flaky.py").write_text(
        "from gan_bench import Tracker, register_tracker\n\n\n"
        "@register_tracker('flaky', module='json', install='-')\n"
        "class Flaky(Tracker):\n"
        "    def scalars(self, values, step):\n"
        "        raise ConnectionError('server went away\\nsecond line')\n")
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--plugin", "flaky.py", "--set", "train.trackers=[flaky]", "--out", "res"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["gan-bench: warning: tracker flaky failed (ConnectionError: server went away) and is dropped for "
                   "the rest of this run; the run folder has every record"]
    run = next((tmp_path / "res" / "demo").iterdir())
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"


def test_resume_continues_the_same_mlflow_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    _env(monkeypatch, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main([*DEMO, "--set", "train.trackers=[mlflow]", "--out", "res"]) == 0
    run = next((tmp_path / "res" / "demo").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    assert main(["run", "--resume", str(run)]) == 0
    client = MlflowClient()
    runs = client.search_runs([client.get_experiment_by_name("gan-bench").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
