"""Plugins are user code: every registry's contract, checked on a tiny batch (train/contracts.py and the
contracts beside each registry). One table of broken plugins, one row per contract: each is a plugin file
written to a tmp folder and loaded as --plugin loads it, then the contract's check, which must give one
PluginError line naming the plugin's file and line, what it returned and what was expected. Then the
built-ins pass every check, and a check leaves the model and the random numbers as they were."""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Callable

import pytest
import torch

from gan_bench import plugins
from gan_bench.config import DataConfig, ModelConfig, build_config
from gan_bench.data import load_data
from gan_bench.data.base import DataSpec
from gan_bench.errors import GanBenchError, PluginError
from gan_bench.metrics.registry import METRICS
from gan_bench.models import MODELS, build_model
from gan_bench.train.augment import AUGMENTS
from gan_bench.train.contracts import (check_augment, check_loss, check_metric_value, check_model, check_tracker,
                                       make_model)
from gan_bench.train.losses import LOSSES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SPEC = DataSpec("tiny", 28, 1, 3, ["a", "b", "c"])
HEAD = """import torch
from torch import nn
from gan_bench import (GAN, ImageData, Layers, Loss, Splits, Tracker, register_augment, register_dataset, register_loss,
                       register_metric, register_model, register_tracker)
"""
# A model whose G or D body is given: G maps z (B, 8) through a linear layer to 28x28 images, D to logits.
MODEL = HEAD + """

class G(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 784)

    def forward(self, z, y=None):
{g}


class D(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 1)

    def forward(self, x, y=None):
{d}


@register_model("m", resolutions=(28,))
def build(spec, cfg):
{factory}
"""
GOOD_G = "        return torch.tanh(self.fc(z)).view(len(z), 1, 28, 28)"
GOOD_D = "        return self.fc(x.flatten(1)).flatten()"
GOOD_FACTORY = "    return GAN(G(), D(), nz=cfg.nz, spec=spec, conditional=False)"


def model(g: str = GOOD_G, d: str = GOOD_D, factory: str = GOOD_FACTORY, *, signature: str = "spec, cfg") -> str:
    return MODEL.format(g=g, d=d, factory=factory).replace("def build(spec, cfg):", f"def build({signature}):")


def _model_check(tmp: Path) -> None:
    gan = make_model("m", SPEC, ModelConfig(name="m", nz=8, width=4))
    check_model(gan, SPEC, 8, name="m", factory=MODELS.get("m"))


def _loss_check(tmp: Path) -> None:
    check_loss(LOSSES.get("l"), name="l")


def _augment_check(tmp: Path) -> None:
    check_augment(AUGMENTS.get("a"), torch.zeros(2, 1, 28, 28), name="a")


def _data_check(tmp: Path) -> None:
    load_data(DataConfig(name="d"))


def _metric_check(tmp: Path) -> None:
    entry = METRICS.entry("x")
    check_metric_value(entry.info, entry.obj(None), name="x", fn=entry.obj)


def _tracker_check(tmp: Path) -> None:
    check_tracker("t", build_config([]), seconds=2)


def _load_only(tmp: Path) -> None:
    """The plugin's import itself is the check (a registry's record refuses it)."""


LOSS = HEAD + "register_loss('l')(Loss(d={d}, g={g}))  # HERE\n"
AUGMENT = HEAD + """

@register_augment("a")
def a(x, draws):  # HERE
    return {ret}
"""
DATA = HEAD + """

@register_dataset("d")
def load(cfg):  # HERE
    x = torch.zeros(6, 1, 28, 28, dtype=torch.uint8)
    train = ImageData(x, torch.tensor([0, 1, 2, 0, 1, 2]), ["a", "b", "c"])
    return {ret}
"""
# A registry entry with an options dataclass (its own config keys) of one field.
OPTIONS = HEAD + """from dataclasses import dataclass

from gan_bench import option


@dataclass
class Opts:
    {field}


{register}  # HERE
"""
METRIC = HEAD + """

@register_metric("x", kind="custom", key="gap", better="lower")
def gap(ctx):  # HERE
    return {ret}
"""
TRACKER = HEAD + """

@register_tracker("t", module="json", install="nothing")
class T(Tracker):  # HERE
    @classmethod
    def check(cls, cfg):
        {body}
"""


def marked(text: str, marker: str = "HERE") -> int:
    """The line number of the first line holding `marker` (a plugin's line a message must name)."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if marker in line)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


# (plugin text, the check, the words the one line must hold; {line:...} fills in a line of the text)
CASES: dict[str, tuple[str, Callable[[Path], None], list[str]]] = {
    # models: the factory, G, D
    "model factory with the wrong signature": (
        model(signature="spec"), _model_check,
        ["model 'm': plug.py:{def build}", "cannot be called as gan-bench calls it", "1 positional argument but 2",
         "expected fn(spec: DataSpec, cfg: ModelConfig) -> GAN"]),
    "model factory returning a tuple": (
        model(factory="    return G(), D()"), _model_check,
        ["model 'm' (plug.py:{def build}) returned a tuple of 2", "expected a GAN: GAN(G, D, nz=cfg.nz"]),
    "model factory raising": (
        model(factory="    raise RuntimeError('width must be even')"), _model_check,
        ["model 'm': plug.py:{raise RuntimeError} raised RuntimeError: width must be even", "GAN_BENCH_DEBUG=1"]),
    "model of another nz": (
        model(factory="    return GAN(G(), D(), nz=16, spec=spec, conditional=False)"), _model_check,
        ["model 'm' (plug.py:{def build}) returned GAN(nz=16)", "expected nz=8 (model.nz)"]),
    "G of the wrong size": (
        model(g="        return torch.tanh(self.fc(z))[:, :576].reshape(len(z), 1, 24, 24)"), _model_check,
        ["model 'm': G(z, y) (plug.py:{def forward(self, z}) returned a float32 tensor of shape (2, 1, 24, 24)",
         "expected a float32 tensor of shape (2, 1, 28, 28) in [-1, 1]"]),
    "G in float64": (
        model(g="        return torch.tanh(self.fc(z)).view(len(z), 1, 28, 28).double()"), _model_check,
        ["G(z, y) (plug.py:{def forward(self, z}) returned a float64 tensor of shape (2, 1, 28, 28)",
         "expected a float32 tensor"]),
    "G returning NaN": (
        model(g="        return torch.full((len(z), 1, 28, 28), float('nan'))"), _model_check,
        ["G(z, y)", "returned 1568 NaN or infinite values"]),
    "G without tanh": (
        model(g="        return 5 + self.fc(z).view(len(z), 1, 28, 28)"), _model_check,
        ["G(z, y)", "returned values in [", "end G with tanh"]),
    "G whose forward takes no label": (
        model(g=GOOD_G).replace("def forward(self, z, y=None):", "def forward(self, z):", 1), _model_check,
        ["model 'm': G(z, y): plug.py:{def forward(self, z)}", "cannot be called as gan-bench calls it",
         "expected G.forward(z (B, nz), y (B,) int64 or None)"]),
    "G raising inside": (
        model(g="        return self.fc(z).view(len(z), 3, 28, 28)"), _model_check,
        ["model 'm': G(z, y): plug.py:{return self.fc(z).view} raised RuntimeError", "shape '[2, 3, 28, 28]'"]),
    "D returning (B, 1)": (
        model(d="        return self.fc(x.flatten(1))"), _model_check,
        ["model 'm': D(x, y) (plug.py:{def forward(self, x}) returned a float32 tensor of shape (2, 1)",
         "expected one logit per image", "shape (2,)", "flatten it"]),
    "D returning NaN": (
        model(d="        return self.fc(x.flatten(1)).flatten() * float('nan')"), _model_check,
        ["D(x, y)", "returned 2 NaN or infinite logits"]),
    "model whose G is not a module": (
        model(factory="    return GAN(lambda z, y=None: z, D(), nz=cfg.nz, spec=spec, conditional=False)"), _model_check,
        ["model 'm' (plug.py:{def build}) returned a GAN whose G is function build.<locals>.<lambda>",
         "expected G a torch.nn.Module"]),
    "model whose D has no weights": (
        model(factory="    return GAN(G(), Layers(nn.Flatten()), nz=cfg.nz, spec=spec, conditional=False)"), _model_check,
        ["model 'm' (plug.py:{def build}) returned a GAN whose D has no weights to train", "parameters"]),
    "model without the spec it was given": (
        model(factory="    return GAN(G(), D(), nz=cfg.nz, spec=None, conditional=False)"), _model_check,
        ["model 'm' (plug.py:{def build}) returned GAN(spec=None)", "expected spec=spec"]),
    "G of one batch size only": (
        model(g="        return torch.tanh(self.fc(z)).view(2, 1, 28, 28)"), _model_check,
        ["model 'm': G(z, y): plug.py:{view(2, 1, 28, 28)} raised RuntimeError", "shape '[2, 1, 28, 28]'"]),
    "G detaching its images": (
        model(g="        return torch.tanh(self.fc(z)).view(len(z), 1, 28, 28).detach()"), _model_check,
        ["model 'm': G(z, y) (plug.py:{def forward(self, z}) returned a tensor with no gradient to the model's weights",
         "images whose gradient reaches G's weights"]),
    "D detaching its logits": (
        model(d="        return self.fc(x.flatten(1)).flatten().detach()"), _model_check,
        ["model 'm': D(x, y) (plug.py:{def forward(self, x}) returned a tensor with no gradient to the model's weights"]),
    "D detaching its input": (
        model(d="        return self.fc(x.detach().flatten(1)).flatten()"), _model_check,
        ["model 'm': D(x, y) (plug.py:{def forward(self, x}) returned logits with no gradient to its input x",
         "G learns through D's gradient to x"]),
    # a model's own keys (ModelInfo.options): a dataclass of new keys, which the factory reads as cfg.<key>
    "model options that are not a dataclass (refused as it registers)": (
        HEAD + "register_model('m', resolutions=(28,), options={'blocks': 1})(print)  # HERE\n", _load_only,
        ["failed at line {HERE}", "model 'm': options must be a dataclass, got", "'blocks': 1"]),
    "model option that is a key of every model (refused as it registers)": (
        OPTIONS.format(field="nz: int = 8", register="register_model('m', resolutions=(28,), options=Opts)(print)"),
        _load_only, ["failed at line {HERE}", "model 'm': option 'nz' is already a key of every model (model.nz)"]),
    "model options without a default (refused as it registers)": (
        OPTIONS.format(field="blocks: int", register="register_model('m', resolutions=(28,), options=Opts)(print)"),
        _load_only, ["failed at line {HERE}", "model 'm': its options Opts() cannot be made from their defaults",
                     "give every field a default"]),
    "model option whose default is outside its own range (refused as it registers)": (
        OPTIONS.format(field="blocks: int = option(0, lo=1)",
                       register="register_model('m', resolutions=(28,), options=Opts)(print)"),
        _load_only, ["failed at line {HERE}", "model 'm': the default of model.blocks: must be >= 1, got 0"]),
    "model factory reading an option it does not declare": (
        model(factory="    return GAN(G(), D(), nz=cfg.nz * cfg.blocks, spec=spec, conditional=False)"), _model_check,
        ["model 'm': plug.py:{cfg.blocks} raised AttributeError: model 'm' has no option 'blocks'"]),
    # losses
    "loss returning a per-sample vector": (
        LOSS.format(d="lambda logits, t: (logits - t) ** 2", g="lambda logits: -logits.mean()"), _loss_check,
        ["loss 'l': d (plug.py:{HERE}) returned a float32 tensor of shape (2,)",
         "expected a finite () tensor, the mean over the batch", "take .mean()"]),
    "loss returning None": (
        LOSS.format(d="lambda logits, t: ((logits - t) ** 2).mean()", g="lambda logits: None"), _loss_check,
        ["loss 'l': g (plug.py:{HERE}) returned None", "expected a finite () tensor"]),
    "loss G detached from the logits": (
        LOSS.format(d="lambda logits, t: ((logits - t) ** 2).mean()", g="lambda logits: -logits.detach().mean()"),
        _loss_check, ["loss 'l': g (plug.py:{HERE}) returned a loss with no gradient to the fakes' logits"]),
    "loss raising": (
        LOSS.format(d="lambda logits, t: logits.mean() / t.sum().item() if t.sum() else 1 / 0",
                    g="lambda logits: -logits.mean()"), _loss_check,
        ["loss 'l': d: plug.py:{HERE} raised ZeroDivisionError: division by zero"]),
    "loss D detached from the logits": (
        LOSS.format(d="lambda logits, t: ((logits - t) ** 2).mean().detach()", g="lambda logits: -logits.mean()"),
        _loss_check, ["loss 'l': d (plug.py:{HERE}) returned a loss with no gradient to D's logits"]),
    "loss of the wrong form (refused as it registers)": (
        LOSS.format(d="lambda logits: logits.mean()", g="lambda logits: logits.mean()"), _load_only,
        ["plug.py' failed at line {HERE}", "loss 'l': d must take 2 tensor(s)", "both_sides=True"]),
    "loss that is not a Loss (refused as it registers)": (
        HEAD + "register_loss('l')(lambda logits, t: logits.mean())  # HERE\n", _load_only,
        ["failed at line {HERE}", "loss 'l': register a Loss(d=..., g=...), got function"]),
    # augmentations
    "augmentation changing the size": (
        AUGMENT.format(ret="x[:, :, ::2, ::2]"), _augment_check,
        ["augmentation 'a' (plug.py:{HERE}) returned a float32 tensor of shape (2, 1, 14, 14) on cpu",
         "expected a float32 tensor of shape (2, 1, 28, 28) on cpu, as it was given"]),
    "augmentation changing the dtype": (
        AUGMENT.format(ret="x.double()"), _augment_check,
        ["augmentation 'a' (plug.py:{HERE}) returned a float64 tensor of shape (2, 1, 28, 28)"]),
    "augmentation returning an array": (
        AUGMENT.format(ret="x.detach().numpy()"), _augment_check,
        ["augmentation 'a' (plug.py:{HERE}) returned a float32 array of shape (2, 1, 28, 28)"]),
    "augmentation detaching its input": (
        AUGMENT.format(ret="x.detach()"), _augment_check,
        ["augmentation 'a' (plug.py:{HERE}) returned images with no gradient to its input",
         "G learns through it"]),
    "augmentation returning NaN": (
        AUGMENT.format(ret="x * float('nan')"), _augment_check,
        ["augmentation 'a' (plug.py:{HERE}) returned 1568 NaN or infinite values", "finite"]),
    # data sets (load_data checks what every loader returns)
    "data set returning a tuple": (
        DATA.format(ret="train, train"), _data_check,
        ["data set 'd' (plug.py:{HERE}) returned a tuple of 2", "expected Splits(name, train, test)"]),
    "data set labels beyond its class names": (
        DATA.format(ret="Splits('d', ImageData(x, torch.tensor([0, 1, 2, 3, 4, 5]), ['a', 'b', 'c']), train)"),
        _data_check, ["data set 'd' (plug.py:{HERE}) returned training labels in 0..5 with 3 class names",
                      "expected labels in 0..2"]),
    "data set test split of another resolution": (
        DATA.format(ret="Splits('d', train, ImageData(torch.zeros(2, 1, 32, 32, dtype=torch.uint8), "
                        "torch.tensor([0, 1]), ['a', 'b', 'c']))"), _data_check,
        ["data set 'd' (plug.py:{HERE}) returned test images of 32x32 px with 1 channel beside training images of "
         "28x28 px with 1 channel", "expected both splits of one size"]),
    "data set labels of another dtype": (
        DATA.format(ret="Splits('d', ImageData(x, torch.tensor([0., 1, 2, 0, 1, 2]), ['a', 'b', 'c']), train)"),
        _data_check, ["returned training labels as a float32 tensor of shape (6,)", "expected an int64 tensor of shape (6,)"]),
    "data set of a size its record does not list": (
        DATA.format(ret="Splits('d', train, train)").replace('@register_dataset("d")',
                                                             '@register_dataset("d", resolutions=(32,))'),
        _data_check, ["data set 'd' (plug.py:{HERE}) returned 28x28 px images", "32 px, as register_dataset"]),
    "data set class names that are not text": (
        DATA.format(ret="Splits('d', ImageData(x, torch.tensor([0, 1, 2, 0, 1, 2]), [0, 1, 2]), train)"), _data_check,
        ["data set 'd' (plug.py:{HERE}) returned training class names [0, 1, 2]", "a list of text class names"]),
    "data set class names given twice": (
        DATA.format(ret="Splits('d', ImageData(x, torch.tensor([0, 1, 2, 0, 1, 2]), ['a', 'a', 'b']), train)"),
        _data_check, ["data set 'd' (plug.py:{HERE}) returned training class names with 'a' twice",
                      "distinct class names"]),
    "data set images as a numpy array": (
        DATA.format(ret="Splits('d', ImageData(x.numpy(), torch.tensor([0, 1, 2, 0, 1, 2]), ['a', 'b', 'c']), train)"),
        _data_check, ["images must be a torch uint8 tensor (N, C, H, W), got numpy.ndarray", "torch.from_numpy(x)"]),
    "data set loader raising": (
        DATA.format(ret="train.x.view(-1, 5)"), _data_check,
        ["data set 'd': plug.py:{return train.x.view} raised RuntimeError"]),
    "data set option that is a key of every data set (refused as it registers)": (
        OPTIONS.format(field="path: str = 'x'", register="register_dataset('d', options=Opts)(print)"), _load_only,
        ["failed at line {HERE}", "data set 'd': option 'path' is already a key of every data set (data.path)"]),
    "data set loader of the wrong signature": (
        DATA.replace("def load(cfg):", "def load():").format(ret="Splits('d', train, train)"), _data_check,
        ["data set 'd': plug.py:{HERE} cannot be called as gan-bench calls it", "expected fn(cfg: DataConfig) -> Splits"]),
    # metrics (evaluate checks each value before its line is appended)
    "metric returning a string": (
        METRIC.format(ret="'good'"), _metric_check,
        ["metric 'x' (plug.py:{HERE}) returned 'good' (str)", "expected a dict with 'gap' (its MetricInfo.key)"]),
    "metric returning a tensor": (
        METRIC.format(ret="{'gap': torch.tensor(0.5)}"), _metric_check,
        ["metric 'x' (plug.py:{HERE}) returned 'gap': a float32 tensor of shape ()", "a finite int or float there"]),
    "metric without its registered key": (
        METRIC.format(ret="{'distance': 0.5}"), _metric_check,
        ["metric 'x' (plug.py:{HERE}) returned a dict of ['distance']", "expected a dict with 'gap'"]),
    "metric returning a field every eval line sets itself": (
        METRIC.format(ret="{'gap': 0.5, 'step': 3}"), _metric_check,
        ["metric 'x' (plug.py:{HERE}) returned a dict with 'step'", "every eval line sets those fields itself",
         "rename 'step'"]),
    "metric whose label is not text (refused as it registers)": (
        HEAD + "register_metric('x', kind='custom', key='gap', better='lower', label=5)(print)  # HERE\n", _load_only,
        ["failed at line {HERE}", "metric 'x': MetricInfo.label must be text, got 5"]),
    "metric with a value no JSON line holds": (
        METRIC.format(ret="{'gap': 0.5, 'per_class': {'a': torch.ones(2)}}"), _metric_check,
        ["metric 'x' (plug.py:{HERE}) returned 'per_class': a float32 tensor of shape (2,)", "one JSON line"]),
    # trackers
    "tracker registered as a function (refused as it registers)": (
        HEAD + "register_tracker('t', module='json', install='nothing')(lambda run, cfg, resumed: None)  # HERE\n",
        _load_only, ["failed at line {HERE}", "tracker 't': register a subclass of gan_bench.Tracker",
                     "got function <lambda>"]),
    "tracker whose check raises": (
        TRACKER.format(body="raise ConnectionError('server at localhost:1 refused')"), _tracker_check,
        ["tracker 't': check(cfg): plug.py:{raise ConnectionError} raised ConnectionError: server at localhost:1 refused"]),
    "tracker whose check never returns": (
        TRACKER.format(body="import time; time.sleep(30)"), _tracker_check,
        ["train.trackers: t did not finish checking its store within 2 s", "check that it is reachable"]),
}


def _words(words: list[str], text: str) -> list[str]:
    """Each {fragment} of words replaced by the number of the plugin's line holding it ({HERE}: the marked one)."""
    return [re.sub(r"\{([^{}]+)\}", lambda m: str(marked(text) if m.group(1) == "HERE" else line_of(text, m.group(1))), w)
            for w in words]


@pytest.mark.parametrize("text, check, words", CASES.values(), ids=CASES.keys())
def test_broken_plugin(text: str, check: Callable[[Path], None], words: list[str], tmp_path: Path, monkeypatch,
                       isolated_registries):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plug.py").write_text(text)
    with pytest.raises(GanBenchError) as e:  # PluginError, or the timeout of a store that never answers
        plugins.load(["plug.py"])
        check(tmp_path)
    line = str(e.value)
    assert "\n" not in line, line
    for w in _words(words, text):
        assert w in line, f"{w!r} not in {line!r}"


def test_gan_bench_debug_prints_the_plugins_traceback_first(tmp_path: Path, monkeypatch, capsys, isolated_registries):
    monkeypatch.chdir(tmp_path)
    text = model(factory="    raise RuntimeError('width must be even')")
    (tmp_path / "plug.py").write_text(text)
    plugins.load(["plug.py"])
    monkeypatch.setenv("GAN_BENCH_DEBUG", "1")
    with pytest.raises(PluginError, match="raised RuntimeError: width must be even$"):
        _model_check(tmp_path)
    err = capsys.readouterr().err
    assert err.startswith("Traceback") and f'plug.py", line {line_of(text, "raise RuntimeError")}' in err


def test_a_plugins_own_one_line_error_passes_as_it_is(tmp_path: Path, monkeypatch, isolated_registries):
    """A DataError a loader raises on purpose is its message, not 'raised DataError'."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "plug.py").write_text(DATA.format(ret="train").replace(
        "    x = torch.zeros", "    raise DataError('photos/ is empty; add images')\n    x = torch.zeros").replace(
        "import torch\n", "import torch\nfrom gan_bench import DataError\n", 1))
    plugins.load(["plug.py"])
    with pytest.raises(Exception) as e:
        _data_check(tmp_path)
    assert type(e.value).__name__ == "DataError" and str(e.value) == "photos/ is empty; add images"


def test_a_gan_bench_bug_keeps_its_traceback():
    """An exception raised with no plugin frame is not dressed up as a plugin's."""
    with pytest.raises(ZeroDivisionError):
        with plugins.plugin_call("metric 'fd'", None):
            1 / 0


# ---- the built-ins keep every contract ----------------------------------------------------------

@pytest.mark.parametrize("name", [e.name for e in MODELS])
def test_every_built_in_model_keeps_the_contract_and_the_check_changes_nothing(name: str):
    info = MODELS.info(name)
    spec = DataSpec("t", info.resolutions[0], 1, 3, ["a", "b", "c"])
    cfg = ModelConfig(name=name, nz=8, width=4, d_label="planes")
    torch.manual_seed(0)
    gan = build_model(cfg, spec)
    before = copy.deepcopy(gan.state_dict())
    rng = torch.get_rng_state()
    check_model(gan, spec, 8, name=name)
    assert torch.equal(torch.get_rng_state(), rng)  # the run's draws go on as if unchecked
    after = gan.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics, spectral norm's u


@pytest.mark.parametrize("name", [e.name for e in LOSSES])
def test_every_built_in_loss_keeps_the_contract(name: str):
    check_loss(LOSSES.get(name), name=name)
    check_loss(LOSSES.get(name), name=name, pairs=3)


@pytest.mark.parametrize("name", [e.name for e in AUGMENTS])
def test_every_built_in_augmentation_keeps_the_contract(name: str):
    out = check_augment(AUGMENTS.get(name), torch.rand(4, 3, 32, 32) * 2 - 1, name=name)
    assert out.shape == (4, 3, 32, 32)


def test_a_built_in_data_set_keeps_the_contract(tiny_npz: Path):
    splits = load_data(DataConfig(name="npz", path=str(tiny_npz)))  # load_data checks it
    assert splits.train.labelled and splits.test.x.shape[1:] == splits.train.x.shape[1:]


def test_a_metric_value_with_per_class_numbers_and_text_is_kept():
    info = METRICS.info("intra_fd")
    value = {"intra_fd": 3.5, "per_class": {"a": 3.0, "b": 4.0}, "class": "a", "n": 5, "ok": True, "none": None}
    assert check_metric_value(info, value, name="intra_fd") is value
    with pytest.raises(PluginError, match="'intra_fd': nan"):
        check_metric_value(info, {"intra_fd": float("nan")}, name="intra_fd")


def test_eval_list_shows_a_plugin_metric_without_a_docstring(tmp_path: Path, monkeypatch, capsys, isolated_registries):
    from gan_bench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(METRIC.format(ret="{'gap': 0.5}"))  # gap() has a comment, no docstring
    assert main(["eval", "--list", "--plugin", "m.py"]) == 0
    assert any(line.split()[:2] == ["x", "custom"] for line in capsys.readouterr().out.splitlines())
