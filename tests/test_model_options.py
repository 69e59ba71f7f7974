"""A model's own config keys (ModelInfo.options): read, checked and written as keys of `model:`, as a data set's
are of `data:` (config.OptionSection serves both), given to its factory as cfg.<key>, shown by `gan-bench
list`; and the hash of every run folder made before models had keys stays the one it recorded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from gan_bench import plugins
from gan_bench.cli import main
from gan_bench.config import build_config, config_hash
from gan_bench.data.base import DataSpec
from gan_bench.models import build_model
from gan_bench.run import RunFolder
from gan_bench.train.contracts import check_model
from conftest import ROOT

pytestmark = pytest.mark.usefixtures("one_torch_thread", "isolated_registries")

PLUGIN = '''
from dataclasses import dataclass

from torch import nn

from gan_bench import GAN, Layers, option, register_model


@dataclass
class Opts:
    hidden: int = option(16, lo=1, hi=256, help="units of the hidden layers")
    slope: float = option(0.2, lo=0.0, hi=1.0)


@register_model("opt_mlp", resolutions=(28,), options=Opts, description="an MLP pair sized by its own keys")
def build(spec, cfg):
    n = spec.channels * spec.resolution ** 2
    G = Layers(nn.Linear(cfg.nz, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, n), nn.Tanh(),
               nn.Unflatten(1, (spec.channels, spec.resolution, spec.resolution)))
    D = Layers(nn.Flatten(), nn.Linear(n, cfg.hidden), nn.LeakyReLU(cfg.slope), nn.Linear(cfg.hidden, 1), nn.Flatten(0))
    return GAN(G, D, nz=cfg.nz, spec=spec, conditional=False)
'''
SPEC = DataSpec("t", 28, 1, 0, [])
EXAMPLE = str(ROOT / "examples" / "resnet_gan.py")


@pytest.fixture
def plugin(tmp_path: Path) -> str:
    (tmp_path / "opt_plugin.py").write_text(PLUGIN)
    return plugins.load([str(tmp_path / "opt_plugin.py")])[0].source


def test_a_models_keys_are_read_checked_written_and_given_to_its_factory(plugin: str):
    cfg = build_config([{"model": {"hidden": 32}}, {"model": {"name": "opt_mlp", "nz": 8}}], plugins=[plugin])
    assert (cfg.model.hidden, cfg.model.slope) == (32, 0.2)  # a key given before the name that declares it
    assert cfg.to_dict()["model"] == {"name": "opt_mlp", "nz": 8, "width": 64, "spectral_norm": False,
                                      "d_label": "planes", "hidden": 32, "slope": 0.2}
    again = build_config([yaml.safe_load(cfg.to_yaml())])  # config.yaml read back: the same config
    assert again == cfg and again.hash() == cfg.hash()
    gan = build_model(cfg.model, SPEC)
    assert gan.G[0].out_features == 32 and gan.D[2].negative_slope == 0.2  # the factory read its keys
    check_model(gan, SPEC, 8, name="opt_mlp")
    assert build_config([{"model": {"name": "opt_mlp", "hidden": 64}}]) != cfg


def test_a_models_keys_at_their_defaults_hash_as_a_config_without_them(plugin: str):
    """A model that gains a key keeps the hash of its runs made before: their config.yaml lacks the key."""
    cfg = build_config([{"model": {"name": "opt_mlp"}}])
    before = cfg.to_dict()
    for key in ("hidden", "slope"):
        del before["model"][key]
    assert config_hash(before) == cfg.hash()
    assert build_config([{"model": {"name": "opt_mlp", "hidden": 17}}]).hash() != cfg.hash()
    # another model's key left at its default is accepted and changes nothing (as for data sets' keys)
    plain = build_config([{"model": {"name": "convdcgan"}}])
    assert build_config([{"model": {"name": "convdcgan", "hidden": 16}}]) == plain


def test_every_committed_run_folder_keeps_the_hash_it_recorded():
    """Configs without model keys hash as before: each run folder under results/ (made by earlier versions)
    rebuilds to the config_hash its summary.json holds."""
    summaries = [p for p in sorted((ROOT / "results").rglob("summary.json")) if "sweeps" not in p.parts
                 and (p.parent / "config.yaml").is_file()]
    if not summaries:
        pytest.skip("no committed run folders")
    for path in summaries:
        recorded = json.loads(path.read_text())["config_hash"]
        assert RunFolder(path.parent).read_config().hash() == recorded, path


def test_the_example_models_blocks(tmp_path: Path):
    """resdcgan's model.blocks: 1 builds the layout its run folders were made with (one up- and one
    down-sampling block per size); 2 adds a block that keeps the size at each, and keeps the contract."""
    plugins.load([EXAMPLE])
    one = build_model(build_config([{"model": {"name": "resdcgan", "width": 4, "nz": 8}}]).model, SPEC)
    assert len(one.G.blocks) == len(one.D.blocks) == 2  # 28 px = 7 x 2 x 2
    assert {k.split(".")[2] for k in one.state_dict() if k.startswith("G.blocks.")} == {"0", "1"}
    assert "G.blocks.1.skip.1.weight" in one.state_dict()
    cfg = build_config([{"model": {"name": "resdcgan", "width": 4, "nz": 8, "blocks": 2}}])
    two = build_model(cfg.model, SPEC)
    assert len(two.G.blocks) == len(two.D.blocks) == 4
    check_model(two, SPEC, 8, name="resdcgan")
    assert two.G(torch.randn(3, 8)).shape == (3, 1, 28, 28)


def test_gan_bench_list_shows_a_models_keys(plugin: str, capsys):
    assert main(["list", "--plugin", plugin]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("opt_mlp"))
    assert lines[at + 1].strip() == "model.hidden: int = 16, >= 1, <= 256 (units of the hidden layers)"
    assert lines[at + 2].strip() == "model.slope: float = 0.2, >= 0, <= 1"
