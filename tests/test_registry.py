import pytest

from gan_bench.data import DATASETS
from gan_bench.errors import ConfigError
from gan_bench.models import MODELS
from gan_bench.registry import Registry


def test_duplicates_are_rejected():
    r = Registry("thing")
    r.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a")(2)
    assert r.get("a") == 1 and r.names() == ["a"]


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        MODELS.get("cdgan")
    assert "Did you mean 'cdcgan'" in str(e.value) and "convdcgan" in str(e.value)
    with pytest.raises(ConfigError, match="Valid: .*mnist"):
        DATASETS.get("imagenet")


def test_spine_entries_are_registered():
    assert {"quickdraw", "mnist", "fashion_mnist", "npz", "shapes"} <= set(DATASETS.names())
    assert {"cdcgan", "convdcgan"} <= set(MODELS.names())
    assert MODELS.entry("cdcgan").meta["conditional"] and not MODELS.entry("convdcgan").meta["conditional"]
