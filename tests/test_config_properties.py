"""Property tests of the config loader and the `--set` parser: any input gives a valid Config or one
clean ConfigError line, never another exception; every valid Config survives the trip through the
config.yaml a run folder keeps (resume depends on the hash staying the same)."""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gan_bench.config import Config, build_config, load_config, parse_set
from gan_bench.errors import ConfigError

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SECTIONS = {f.name: [g.name for g in dataclasses.fields(f.default_factory())]
            for f in dataclasses.fields(Config)
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory())}
TOP_KEYS = [f.name for f in dataclasses.fields(Config)]
ALL_KEYS = sorted({k for keys in SECTIONS.values() for k in keys} | set(TOP_KEYS))

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=12) | st.sampled_from(["2e-4", "nan", "inf", "-1", "0", "1e400", "cpu", "npz"]))
keys = st.sampled_from(ALL_KEYS) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(keys, inner, max_size=4), max_leaves=12)


@st.composite
def schema_deltas(draw) -> dict:
    """Mostly-known keys with arbitrary values, so the type and range checks are reached, not just
    the unknown-key check."""
    delta: dict = {}
    for top in draw(st.lists(st.sampled_from(TOP_KEYS), max_size=4, unique=True)):
        if top in SECTIONS:
            fields = draw(st.lists(st.sampled_from(SECTIONS[top]), max_size=4, unique=True))
            delta[top] = {k: draw(values) for k in fields} if draw(st.booleans()) or not fields else draw(values)
        else:
            delta[top] = draw(values)
    return delta


def _clean(e: ConfigError) -> None:
    msg = str(e)
    assert msg and "\n" not in msg, msg


def _build(deltas: list) -> Config | None:
    try:
        cfg = build_config(deltas)
    except ConfigError as e:
        _clean(e)
        return None
    assert isinstance(cfg, Config)
    return cfg


@SETTINGS
@given(st.lists(schema_deltas() | st.dictionaries(keys, values, max_size=4) | values, max_size=3))
@example([{"train": {"lr_g": 10 ** 400}}])           # an int beyond float range
@example([{"train": {"epochs": 10 ** 5000}, "model": {"nz": 10 ** 5000}}])  # beyond printable
@example([{"train": {"seed": -1}}])
@example([{"train": None}])
def test_build_config_gives_config_or_clean_error(deltas):
    _build(deltas)


@SETTINGS
@given(st.lists(schema_deltas(), max_size=3))
@example([{"train": {"lr_g": 1e-300, "epochs": 2 ** 62}, "name": "x: y"}])
def test_valid_configs_round_trip_through_config_yaml(deltas):
    cfg = _build(deltas)
    if cfg is None:
        return
    again = build_config([yaml.safe_load(cfg.to_yaml())])  # what `--resume` reads back
    assert again == cfg and again.hash() == cfg.hash()


set_items = (st.text(max_size=40)
             | st.builds(lambda k, v: f"{k}={v}", st.sampled_from(
                 [f"{s}.{k}" for s, ks in SECTIONS.items() for k in ks] + TOP_KEYS) | st.text(max_size=10),
                 st.text(max_size=30) | values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())))


@SETTINGS
@given(st.lists(set_items, max_size=4))
@example(["train.lr_g=!!float abc"])                 # PyYAML raises ValueError for these
@example(["name=2020-13-45"])
@example(["train.epochs=" + "[" * 3000])            # RecursionError inside PyYAML
@example(["train.lr_g=" + "9" * 400])
@example(["train.epochs=" + "9" * 5000])
def test_set_overrides_give_config_or_clean_error(items):
    for item in items:
        try:
            parts, _ = parse_set(item)
        except ConfigError as e:
            _clean(e)
        else:
            assert parts and all(parts)
    try:
        cfg = load_config(None, items)
    except ConfigError as e:
        _clean(e)
    else:
        assert isinstance(cfg, Config)


yaml_texts = st.text(max_size=80) | values.map(lambda v: yaml.safe_dump(v)) | st.sampled_from([
    "train: {epochs: 3\n", "name: 2020-13-45\n", "train:\n  lr_g: !!float abc\n", "[" * 3000,
    "? [a]\n: b\n", "a: &a [*a]\ntrain: *a\n", "train: !!python/object:os.system {}\n", "\x00", "name: \"a\\0b\"\n"])


@SETTINGS
@given(yaml_texts)
def test_yaml_files_give_config_or_clean_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "exp.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            cfg = load_config(path)
        except ConfigError as e:
            _clean(e)
        else:
            assert isinstance(cfg, Config)
