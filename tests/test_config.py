from pathlib import Path

import pytest
import yaml

from gan_bench.config import Config, build_config, load_config, parse_set
from gan_bench.errors import ConfigError


def test_defaults_carry_the_shared_recipe():
    c = Config()
    assert (c.train.lr_g, c.train.lr_d, c.train.betas, c.train.batch_size) == (2e-4, 2e-4, [0.5, 0.999], 128)
    assert (c.train.loss, c.model.nz) == ("bce", 100)


def test_yaml_deltas_and_set_overrides(tmp_path: Path):
    p = tmp_path / "exp.yaml"
    p.write_text("model: {name: convdcgan}\ntrain: {epochs: 3}\n")
    c = load_config(p, ["train.epochs=5", "train.lr_g=1e-4", "data.name=quickdraw", "data.categories=[cat, dog]"])
    assert c.name == "exp" and c.model.name == "convdcgan"
    assert c.train.epochs == 5 and c.train.lr_g == 1e-4 and c.data.categories == ["cat", "dog"]
    assert c.train.batch_size == 128  # untouched default


@pytest.mark.parametrize("delta, words", [
    ({"trian": {"epochs": 1}}, ["unknown key 'trian'", "train", "Valid keys"]),
    ({"train": {"epoch": 1}}, ["unknown key 'train.epoch'", "epochs"]),
    ({"train": {"epochs": "ten"}}, ["train.epochs", "expected int", "'ten'"]),
    ({"train": {"epochs": 1.5}}, ["train.epochs", "expected int"]),
    ({"train": {"lr_g": "fast"}}, ["train.lr_g", "expected float"]),
    ({"train": {"batch_size": -4}}, ["train.batch_size", ">= 1"]),
    ({"train": {"epochs": 0}}, ["train.epochs", ">= 1"]),
    ({"train": {"lr_d": 0}}, ["train.lr_d", "> 0"]),
    ({"train": {"label_flip": 1.5}}, ["train.label_flip", "<= 1"]),
    ({"train": {"betas": [0.5]}}, ["train.betas"]),
    ({"train": {"real_label_range": [0.9, 0.7]}}, ["real_label_range"]),
    ({"train": 5}, ["train", "mapping"]),
    ({"data": {"name": "quickdraw", "categories": "cat"}}, ["data.categories", "list of str"]),
    # a data set's own key given for another data set is refused, not silently ignored
    ({"data": {"categories": ["cat"]}}, ["data.categories", "option of data set 'quickdraw'", "not of 'shapes'"]),
    ({"data": {"name": "celeba", "crop": 8}}, ["data.crop", ">= 16"]),
    ({"data": {"name": "imagenet"}}, ["unknown data set 'imagenet'", "Valid:", "quickdraw"]),
    ({"train": {"tensorboard": "yes"}}, ["train.tensorboard", "expected bool"]),
])
def test_bad_values_name_the_key_and_the_expectation(delta, words):
    with pytest.raises(ConfigError) as e:
        build_config([delta])
    msg = str(e.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_malformed_yaml_is_a_config_error(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: {epochs: 3\n")
    with pytest.raises(ConfigError, match="malformed YAML at line"):
        load_config(p)


def test_set_parser():
    assert parse_set("train.epochs=5") == (["train", "epochs"], 5)
    assert parse_set("data.name=npz") == (["data", "name"], "npz")
    for bad in ("train.epochs", "=5", "train..epochs=1"):
        with pytest.raises(ConfigError):
            parse_set(bad)


def test_resolved_config_round_trips_through_yaml():
    c = build_config([{"train": {"epochs": 7}, "data": {"name": "quickdraw", "categories": ["cat"]}}], name="x")
    again = build_config([yaml.safe_load(c.to_yaml())])
    assert again == c and again.hash() == c.hash() and again.data.categories == ["cat"]
    assert again != build_config([{"train": {"epochs": 7}, "data": {"name": "quickdraw", "categories": ["dog"]}}],
                                 name="x")


def test_data_set_options_keep_todays_hash_and_switching_data_sets_works():
    """Option keys of other data sets at their defaults (an old config.yaml, or `--set data.categories=null`
    when switching to npz) are accepted; the hash is the one from before the options moved."""
    old_layout = {"name": "npz", "path": "x.npz", "categories": None, "per_class": 1000, "crop": 140}
    c = build_config([{"data": old_layout}], name="x")
    assert c.data.name == "npz" and c.hash() == build_config([{"data": {"name": "npz", "path": "x.npz"}}],
                                                              name="x").hash()
    # the hash gan-bench gave this config before the options moved to their data sets (run folders hold it)
    assert build_config([{"data": {"name": "quickdraw", "categories": ["cat"]}}]).hash() == "ac8217fdf26351ab"
    assert build_config([{"out": "elsewhere"}], name="x").hash() == build_config([], name="x").hash()


def test_plugins_and_trackers_keep_todays_hash(tmp_path: Path):
    """plugins and train.trackers are not hashed (what a run computes does not depend on where its plugin
    file lies or who watches it), and train.tensorboard still is: a config.yaml written before these keys
    existed, or one that lists them, keeps the hash its checkpoints and a suite's summaries hold."""
    (tmp_path / "p.py").write_text("x = 1\n")
    # the hashes gan-bench gave these configs before plugins and trackers existed
    assert build_config([], name="x").hash() == "d3873b4b927d744e"
    assert build_config([{"train": {"tensorboard": True}}], name="x").hash() == "13604f6dc9eef811"
    listed = build_config([{"plugins": [str(tmp_path / "p.py")], "train": {"trackers": ["mlflow", "tensorboard"]}}],
                          name="x")
    assert listed.hash() == "d3873b4b927d744e" and listed.plugins[0].sha256 is not None
    again = build_config([yaml.safe_load(listed.to_yaml())])  # the record, read back as --resume reads it
    assert again == listed and again.hash() == listed.hash()


@pytest.mark.parametrize("delta, words", [
    ({"train": {"trackers": ["tensorbord"]}}, ["unknown tracker 'tensorbord'", "Did you mean 'tensorboard'"]),
    ({"train": {"trackers": "mlflow"}}, ["train.trackers", "expected list of str"]),
    ({"plugins": [5]}, ["plugins[0]", "expected a source (text) or a mapping of keys (source, sha256)"]),
    ({"plugins": [{"source": "x.py", "sha": "1"}]}, ["unknown key 'plugins[0].sha'", "sha256"]),
])
def test_bad_plugin_and_tracker_values_name_the_key(delta, words):
    with pytest.raises(ConfigError) as e:
        build_config([delta])
    assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
