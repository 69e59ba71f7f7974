"""Which runs are seeds of one experiment: runs whose configs agree up to the seed.

Tables group runs by their display names (data set, model). Two runs of one name are seeds of one
experiment only when their configs hash alike once train.seed is left out (config.config_hash, which
already leaves out where a run writes and its trackers); a 20-step and a 200-step run of one model, both
seed 0, are two experiments, never two seeds of one. Where one name holds several experiments, each gets
a label naming what differs ("train.max_steps=20"), and the tables show them as separate rows.
"""
from __future__ import annotations

import copy
import json
from typing import Any

from gan_bench.config import config_hash, flat

SEED_KEY = ("train", "seed")
MOST_KEYS = 3  # a label names at most this many keys, then "+N more"


def seedless_hash(config: dict[str, Any]) -> str:
    """config_hash of a config dict (as config.yaml holds it) without its train.seed."""
    d = copy.deepcopy(config)
    section, key = SEED_KEY
    if isinstance(d.get(section), dict):
        d[section].pop(key, None)
    return config_hash(d)


def _without(config: dict[str, Any], dotted: str) -> dict[str, Any]:
    d = copy.deepcopy(config)
    *path, key = dotted.split(".")
    node = d
    for part in path:
        node = node.get(part, {})
    node.pop(key, None)
    return d


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def differing_keys(configs: list[dict[str, Any]]) -> list[str]:
    """The dotted keys whose values differ between configs and that the hash sees (a key that changes no
    hash, such as `out`, or a key left at a default the hash fills in, is no difference)."""
    flats = [flat(c) for c in configs]
    keys = sorted({k for f in flats for k in f} - {".".join(SEED_KEY)})
    differ = [k for k in keys if len({_text(f.get(k)) for f in flats}) > 1]
    return [k for k in differ if any(seedless_hash(_without(c, k)) != seedless_hash(c) for c in configs)]


def labels(configs: list[dict[str, Any]]) -> list[str]:
    """For the configs of runs that share a display name: one label per config, "" for all when they are
    one experiment, else what differs between the experiments ("train.max_steps=20, train.lr_g=0.001"),
    equal for runs of one experiment and different between experiments."""
    hashes = [seedless_hash(c) for c in configs]
    first = {h: c for h, c in zip(reversed(hashes), reversed(configs))}  # each experiment's first config
    if len(first) < 2:
        return [""] * len(configs)
    keys = differing_keys(list(first.values()))
    names = {}
    for h, c in first.items():
        values = flat(c)
        shown = [f"{k}={_short(values.get(k))}" for k in keys[:MOST_KEYS]]
        names[h] = ", ".join(shown + ([f"+{len(keys) - MOST_KEYS} more"] if len(keys) > MOST_KEYS else []))
    if len(set(names.values())) < len(names):  # the keys shown do not tell them apart: add the hash
        names = {h: f"{n}, config {h[:6]}" if n else f"config {h[:6]}" for h, n in names.items()}
    return [names[h] for h in hashes]


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    text = value if isinstance(value, str) else _text(value)
    return text if len(text) <= 24 else text[:21] + "..."
