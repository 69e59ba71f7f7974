from dataclasses import dataclass

import pytest

from gan_bench.data import DATASETS
from gan_bench.errors import ConfigError
from gan_bench.models import MODELS
from gan_bench.registry import Registry


@dataclass(frozen=True)
class ThingInfo:
    size: int = 0


def test_duplicates_are_rejected():
    r = Registry("thing", ThingInfo)
    r.register("a", size=3)(1)
    with pytest.raises(ValueError, match="already registered"):
        r.register("a")(2)
    assert r.get("a") == 1 and r.names() == ["a"] and r.info("a") == ThingInfo(3)


def test_records_are_checked_at_registration():
    r = Registry("thing", ThingInfo)
    with pytest.raises(TypeError, match="thing 'b'.*sise.*fields of ThingInfo: size"):
        r.register("b", sise=3)
    with pytest.raises(TypeError, match="expected one ThingInfo"):
        r.register("b", {"size": 3})
    with pytest.raises(TypeError, match="MetricInfo.better"):
        from gan_bench.metrics.registry import MetricInfo
        MetricInfo(kind="domain", key="x", better="smaller")
    with pytest.raises(TypeError, match="DatasetInfo.channels"):
        from gan_bench.data import DatasetInfo
        DatasetInfo(channels=2)


def test_unknown_name_lists_valid_names_and_suggests():
    with pytest.raises(ConfigError) as e:
        MODELS.get("cdgan")
    assert "Did you mean 'cdcgan'" in str(e.value) and "convdcgan" in str(e.value)
    with pytest.raises(ConfigError, match="Valid: .*mnist"):
        DATASETS.get("imagenet")


def test_spine_entries_are_registered():
    assert {"quickdraw", "mnist", "fashion_mnist", "npz", "shapes"} <= set(DATASETS.names())
    assert {"cdcgan", "convdcgan"} <= set(MODELS.names())
    assert MODELS.info("cdcgan").conditional and not MODELS.info("convdcgan").conditional
