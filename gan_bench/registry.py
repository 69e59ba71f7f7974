"""The one registry helper every extension point (data sets, models, metrics) uses.

Each registry holds, per name, the implementation and a typed record of what the rest of the package
may ask about it (a `DatasetInfo`, `ModelInfo`, `MetricInfo`, defined beside the registry they
describe). The record is built and checked when the entry registers, so a misspelled or mistyped field
fails at import time, not when a report first asks for it.
"""
from __future__ import annotations

import dataclasses
import difflib
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from gan_bench.errors import ConfigError

T = TypeVar("T")
I = TypeVar("I")  # noqa: E741  the info record's type

# Every registry made, so that a plugin failing halfway through its registrations can be undone (plugins.py).
_REGISTRIES: "weakref.WeakSet[Registry]" = weakref.WeakSet()


def closest(name: str, choices: list[str], n: int = 3) -> list[str]:
    """The valid names closest to a misspelled one (case-insensitive)."""
    lowered = {c.lower(): c for c in choices}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)]


def first_doc_line(obj: object) -> str:
    """An entry's docstring's first line, for listings ("" without one: a plugin's need not have one)."""
    lines = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return lines[0] if lines else ""


def unknown_name_message(kind: str, name: str, choices: list[str]) -> str:
    near = closest(name, choices) if name else []
    hint = f" Did you mean {', '.join(repr(c) for c in near)}?" if near else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(sorted(choices))}."


@dataclass(frozen=True)
class Entry(Generic[T, I]):
    name: str
    obj: T
    info: I


class Registry(Generic[T, I]):
    """A named table of implementations with a typed record each; duplicates are rejected, lookups of
    an unknown name list the valid ones."""

    def __init__(self, kind: str, info_type: type[I], *,
                 on_register: Callable[[Entry[T, I]], None] | None = None) -> None:
        self.kind, self.info_type = kind, info_type
        self._on_register = on_register
        self._entries: dict[str, Entry[T, I]] = {}
        _REGISTRIES.add(self)

    def register(self, name: str, info: I | None = None, **fields: Any) -> Callable[[T], T]:
        """Decorator: @REG.register("name", field=value, ...) or @REG.register("name", InfoRecord(...)).
        Unknown fields and a record of the wrong type are errors here, at registration."""
        if info is None:
            try:
                info = self.info_type(**fields)
            except TypeError as e:
                valid = ", ".join(f.name for f in dataclasses.fields(self.info_type))
                raise TypeError(f"{self.kind} {name!r}: {e}; fields of {self.info_type.__name__}: {valid}") from None
        elif fields or not isinstance(info, self.info_type):
            raise TypeError(f"{self.kind} {name!r}: expected one {self.info_type.__name__}, got {info!r}")

        def decorator(obj: T) -> T:
            if not isinstance(name, str) or not name:
                raise ValueError(f"a {self.kind} needs a non-empty name, got {name!r}")
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered (by gan-bench or another plugin); "
                                 f"choose another name")
            entry = Entry(name, obj, info)
            if self._on_register is not None:
                self._on_register(entry)
            self._entries[name] = entry
            return obj

        return decorator

    def entry(self, name: str) -> Entry[T, I]:
        if name not in self._entries:
            raise ConfigError(unknown_name_message(self.kind, str(name), list(self._entries)))
        return self._entries[name]

    def get(self, name: str) -> T:
        return self.entry(name).obj

    def info(self, name: str) -> I:
        return self.entry(name).info

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T, I]]:
        return iter(self._entries.values())


def snapshot() -> list[tuple[Registry, dict[str, Entry]]]:
    """The entries of every registry as they are now; restore() puts them back."""
    return [(r, dict(r._entries)) for r in list(_REGISTRIES)]


def restore(saved: list[tuple[Registry, dict[str, Entry]]]) -> None:
    for r, entries in saved:
        r._entries.clear()
        r._entries.update(entries)
