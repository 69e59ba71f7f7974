"""Plugins: every extension point from one file outside the package, the three ways to load one (--plugin,
a config's or suite's plugins key, an installed package's entry point), the record a run keeps of them
and its use by --resume, eval and sample in a fresh process, and the example plugin end to end."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gan_bench import plugins
from gan_bench.cli import main
from gan_bench.config import build_config
from gan_bench.models import MODELS
from gan_bench.train.trackers import TRACKERS
from conftest import ROOT, cli, cli_env

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# One file extending every registry through the public API alone.
PLUGIN = '''
from dataclasses import dataclass

import torch
from torch import nn

from gan_bench import (GAN, ImageData, Layers, Loss, Splits, Tracker, option, register_dataset, register_loss,
                       register_metric, register_model, register_tracker)


@dataclass
class StripesOptions:
    per_class: int = option(20, lo=1)


@register_dataset("plug_stripes", resolutions=(28,), channels=1, labelled=True, options=StripesOptions)
def stripes(cfg) -> Splits:
    rows = (torch.arange(28) // 4 % 2 * 255).to(torch.uint8)[:, None].expand(28, 28)
    x = torch.stack([rows, rows.T]).repeat(cfg.per_class, 1, 1)[:, None]
    data = ImageData(x, torch.arange(2).repeat(cfg.per_class), ["horizontal", "vertical"])
    return Splits("plug_stripes", data, data)


@register_model("plug_mlp", resolutions=(28,), description="two-layer MLPs")
def mlp(spec, cfg) -> GAN:
    shape, n = (spec.channels, spec.resolution, spec.resolution), spec.channels * spec.resolution ** 2
    G = Layers(nn.Linear(cfg.nz, 32), nn.ReLU(), nn.Linear(32, n), nn.Tanh(), nn.Unflatten(1, shape))
    D = Layers(nn.Flatten(), nn.Linear(n, 32), nn.LeakyReLU(0.2), nn.Linear(32, 1), nn.Flatten(0))
    return GAN(G, D, nz=cfg.nz, spec=spec, conditional=False)


# BCE written as softplus: -log sigmoid(s * logit) with s = +1 for real targets, -1 for fake ones
register_loss("plug_softplus", soft_targets=False, description="BCE as softplus")(Loss(
    d=lambda logits, targets: nn.functional.softplus(-(2 * targets - 1) * logits).mean(),
    g=lambda logits: nn.functional.softplus(-logits).mean()))


@register_metric("plug_mean_gap", kind="custom", key="mean_gap", better="lower")
def mean_gap(ctx) -> dict:
    """Gap between the mean pixel of generated and of real test images."""
    return {"mean_gap": abs(ctx.fake.x.float().mean() - ctx.splits.test.x.float().mean()).item() / 255}


@register_tracker("plug_recorder", module="json", install="nothing to install")
class Recorder(Tracker):
    events = []

    def __init__(self, run, cfg, *, resumed):
        super().__init__(run, cfg, resumed=resumed)
        self.events.append(("start", cfg.model.name))

    def scalars(self, values, step):
        self.events.append(("scalars", step, sorted(values)))

    def image(self, name, path, step):
        self.events.append(("image", name, path.name))

    def finish(self, summary):
        self.events.append(("finish", summary["status"]))

    def close(self):
        self.events.append(("close",))
'''

CONFIG = {"data": {"name": "plug_stripes", "per_class": 8}, "model": {"name": "plug_mlp", "nz": 8},
          "train": {"max_steps": 4, "batch_size": 8, "log_every": 2, "progress": False, "trackers": ["plug_recorder"],
                    "loss": "plug_softplus"},
          "eval": {"every": 1, "metrics": ["plug_mean_gap"], "samples": 32}}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_extension_point_from_one_plugin_file(tmp_path: Path, capsys, isolated_registries):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(PLUGIN)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))

    assert main(["list", "--plugin", str(plugin)]) == 0
    listed = capsys.readouterr().out
    for name in ("plug_stripes", "plug_mlp", "plug_recorder"):
        line = next(s for s in listed.splitlines() if s.strip().startswith(name))
        assert f"(plugin {plugin.resolve()})" in line, line
    assert not (tmp_path / "__pycache__").exists()  # a plugin file is run, not imported: nothing written beside it

    assert main(["run", str(tmp_path / "c.yaml"), "--plugin", str(plugin), "--out", str(tmp_path / "res")]) == 0
    run = next((tmp_path / "res" / "c").iterdir())
    record = {"source": str(plugin.resolve()), "sha256": _sha(plugin)}
    assert yaml.safe_load((run / "config.yaml").read_text())["plugins"] == [record]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["plugins"] == [record]
    assert summary["trackers"] == ["plug_recorder"]
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["loss"] == "plug_softplus"
    evals = [json.loads(s) for s in (run / "eval.jsonl").read_text().splitlines()]
    assert {e["metric"] for e in evals} == {"plug_mean_gap"} and all(0 <= e["mean_gap"] <= 1 for e in evals)

    events = TRACKERS.get("plug_recorder").events
    assert events[0] == ("start", "plug_mlp") and events[-2:] == [("finish", "completed"), ("close",)]
    assert ("scalars", 2, ["d_g_z", "d_x", "img_per_sec", "loss_d", "loss_g"]) in events
    assert ("image", "samples", "epoch_0001.png") in events
    assert any(e[0] == "scalars" and e[2] == ["eval/plug_mean_gap"] for e in events)

    assert main(["eval", str(run), "--metrics", "plug_mean_gap", "--samples", "16"]) == 0  # from the run's record
    assert "plug_mean_gap" in capsys.readouterr().out


def test_a_failing_plugin_leaves_the_registries_as_they_were_and_loads_once_fixed(tmp_path: Path,
                                                                                 isolated_registries):
    plugin = tmp_path / "half.py"
    plugin.write_text("from gan_bench import register_model\n"
                      "register_model('half_model', resolutions=(28,))(lambda spec, cfg: None)\n"
                      "raise RuntimeError('not finished')\n")
    with pytest.raises(plugins.PluginError, match=r"half.py' failed at line 3: RuntimeError: not finished"):
        plugins.load([str(plugin)])
    assert "half_model" not in MODELS
    plugin.write_text(plugin.read_text().replace("raise RuntimeError('not finished')\n", ""))
    assert plugins.load([str(plugin)]) == plugins.load([str(plugin.resolve())])  # imported once
    assert "half_model" in MODELS
    # a config and --plugin naming the same file: loaded and recorded once
    cfg = build_config([{"plugins": [str(plugin)]}], plugins=[str(plugin)])
    assert [p.source for p in cfg.plugins] == [str(plugin.resolve())]


def test_a_run_folder_brings_its_plugins_back_in_a_fresh_process(tmp_path: Path):
    """run --plugin, then sample, eval and --resume in new processes that are given no plugin: they load the
    one config.yaml records. An edited plugin is one warning; a missing one, one error."""
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(PLUGIN)
    config = {**CONFIG, "train": {**CONFIG["train"], "trackers": []}, "eval": {}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))

    def gan_bench(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(cli(*args), cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)

    r = gan_bench("run", "c.yaml", "--plugin", "my_plugin.py", "--out", "res")
    assert r.returncode == 0, r.stderr
    run = next((tmp_path / "res" / "c").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))
    checks = [gan_bench("sample", str(run), "--out", "s.png"), gan_bench("run", "--resume", str(run)),
              gan_bench("eval", str(run), "--metrics", "plug_mean_gap", "--samples", "16")]
    for r in checks:
        assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"

    plugin.write_text(PLUGIN + "\n# edited\n")
    r = gan_bench("sample", str(run), "--out", "s.png")
    assert r.returncode == 0 and r.stderr.count("\n") == 1, r.stderr
    assert f"plugin {plugin.resolve()} changed since it was recorded" in r.stderr
    plugin.unlink()
    r = gan_bench("sample", str(run), "--out", "s.png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "which this run was made with, is gone" in r.stderr


def test_installed_packages_plugins_load_through_their_entry_point(tmp_path: Path):
    """A package declaring [project.entry-points."gan_bench.plugins"] is loaded by every command, and
    recorded by module name; a module plugin on the Python path works with --plugin too."""
    site = tmp_path / "site"
    (site / "ep_gan").mkdir(parents=True)
    (site / "ep_gan" / "__init__.py").write_text(
        "from gan_bench import register_model\n"
        "from gan_bench.models import MODELS\n"
        "register_model('ep_model', resolutions=(28,), description='from an entry point')(\n"
        "    lambda spec, cfg: MODELS.get('convdcgan')(spec, cfg))\n")
    (site / "ep_gan-0.1.dist-info").mkdir()
    (site / "ep_gan-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-gan\nVersion: 0.1\n")
    (site / "ep_gan-0.1.dist-info" / "entry_points.txt").write_text("[gan_bench.plugins]\nep = ep_gan\n")
    (site / "mod_gan.py").write_text("from gan_bench import register_model\nfrom gan_bench.models import MODELS\n"
                                     "register_model('mod_model', resolutions=(28,))(lambda spec, cfg: None)\n")
    env = cli_env()
    env["PYTHONPATH"] = f"{site}:{env['PYTHONPATH']}"
    r = subprocess.run(cli("list", "--plugin", "mod_gan"), cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "from an entry point (plugin ep_gan)" in r.stdout and "(plugin mod_gan)" in r.stdout
    r = subprocess.run(cli("run", str(ROOT / "configs" / "demo.yaml"), "--plugin", "mod_gan", "--set",
                           "model.name=ep_model", "--dry-run"), cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    recorded = yaml.safe_load(r.stdout)["plugins"]
    assert [p["source"] for p in recorded] == ["mod_gan", "ep_gan"]
    assert recorded[0]["sha256"] == _sha(site / "mod_gan.py")


@pytest.mark.slow
def test_the_example_plugin_trains_is_evaluated_and_reported_beside_convdcgan(tmp_path: Path):
    """As from a fresh clone: the example's data script, then its suite (--quick), through the real command;
    both models are evaluated, and compare and the gallery show them side by side."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("data", "__pycache__"))

    def run(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run(args, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        return r

    run(sys.executable, "examples/make_shapes_csv.py")
    run(*cli("suite", "examples/suite.yaml", "--quick", "--out", "res"))
    plugin = tmp_path / "examples" / "resnet_gan.py"
    for model in ("resdcgan", "convdcgan"):
        folder = tmp_path / "res" / f"shapes_{model}" / "seed0"
        summary = json.loads((folder / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["model"] == model and summary["dataset"] == "csv_images"
        assert summary["plugins"] == [{"source": str(plugin.resolve()), "sha256": _sha(plugin)}]
        assert {json.loads(s)["metric"] for s in (folder / "eval.jsonl").read_text().splitlines()} == {
            "fd", "kid", "precision", "recall"}
    run(*cli("compare", "res", "--out", "rep", "--metric", "fd", "--no-plots"))
    pivot = (tmp_path / "rep" / "pivot_fd.md").read_text()
    assert "| dataset | convdcgan | resdcgan |" in pivot and "| shapes |" in pivot
    gallery = (tmp_path / "res" / "report" / "gallery" / "index.html").read_text()
    assert "resdcgan" in gallery and "convdcgan" in gallery
