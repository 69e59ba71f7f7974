"""Plugins: a user's own data sets, models, metrics, losses and trackers, registered from outside the package.

A plugin is a Python file or an importable module that registers entries through the public API
(gan_bench/api.py) when it is imported. Three ways name one: `--plugin FILE_OR_MODULE` (repeatable), a
config's or a suite file's `plugins:` key, and the `gan_bench.plugins` entry-point group of an installed
package (its pyproject.toml: [project.entry-points."gan_bench.plugins"] my_gan = "my_pkg.gan"), which
is how pytest finds its plugins. Each is imported once per process. The config records each one it
loaded as a Plugin (the file's absolute path or the module's name, and the sha256 of its file), so a
run folder's config.yaml brings them back for --resume, eval, sample and suites.

A plugin that fails to import, or registers a name that is taken, is one PluginError line naming it
and the line that failed, and whatever it registered before failing is undone.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Optional

from gan_bench.errors import ConfigError
from gan_bench.registry import restore, snapshot

GROUP = "gan_bench.plugins"  # the entry-point group installed packages declare their plugins in


class PluginError(ConfigError):
    """A plugin a config (or --plugin) names cannot be found or imported."""


@dataclass
class Plugin:
    """One plugin of a config: source is a .py file's path (absolute once loaded) or an importable module's
    name; sha256 is that of its file as loaded (None before, and for a module without a file)."""

    source: str = ""
    sha256: Optional[str] = None
    SHORTHAND: ClassVar[str] = "source"  # in YAML a bare string is {source: STRING}: `plugins: [my_gan.py]`

    @property
    def is_file(self) -> bool:
        return self.source.endswith(".py") or "/" in self.source or os.sep in self.source


@dataclass
class _Loaded:
    plugin: Plugin  # resolved source, hash of the file imported
    module: str     # its name in sys.modules


_LOADED: dict[str, _Loaded] = {}   # by resolved source: each plugin is imported once per process
_WARNED: set[tuple[str, str]] = set()
_INSTALLED: Optional[list[Plugin]] = None


def load(plugins: Iterable[Plugin | str]) -> list[Plugin]:
    """Import the plugins not imported yet; returns them resolved (absolute path or module name, sha256 of
    the file imported), each once. A plugin given with a sha256 (as a run recorded it) whose file has
    changed since is imported with one warning line on stderr: the weights of a run are still checked
    when they load, and a fix to a plugin's metric or printout must not lock its runs away."""
    out: dict[str, Plugin] = {}
    for p in plugins:
        p = Plugin(p) if isinstance(p, str) else p
        now = _load_one(p)
        if p.sha256 and now.sha256 and p.sha256 != now.sha256 and (now.source, p.sha256) not in _WARNED:
            _WARNED.add((now.source, p.sha256))
            print(f"gan-bench: warning: plugin {now.source} changed since it was recorded (sha256 {p.sha256[:12]} "
                  f"then, {now.sha256[:12]} now); results may differ from the run's", file=sys.stderr)
        out.setdefault(now.source, now)
    return list(out.values())


def installed() -> list[Plugin]:
    """The plugins of installed packages (entry-point group gan_bench.plugins), imported on the first call."""
    global _INSTALLED
    if _INSTALLED is None:
        found = []
        for ep in importlib.metadata.entry_points(group=GROUP):
            dist = getattr(ep.dist, "name", None) or "an installed package"
            found.append(_load_module(ep.module, where=f"{ep.name} = {ep.value!r} (entry point of {dist})"))
        _INSTALLED = found
    return list(_INSTALLED)


def loaded() -> list[Plugin]:
    """Every plugin imported in this process so far."""
    return [entry.plugin for entry in _LOADED.values()]


def origin(obj: object) -> Optional[str]:
    """The source of the plugin whose code defined obj (a registered function or class), else None."""
    module = getattr(obj, "__module__", None) or ""
    for loaded in _LOADED.values():
        if module == loaded.module or module.startswith(loaded.module + "."):
            return loaded.plugin.source
    return None


def sha256_of(path: Path | str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _load_one(p: Plugin) -> Plugin:
    if not p.source or "\0" in p.source:
        raise PluginError(f"a plugin is a .py file's path or a module's name, got {p.source!r}")
    if not p.is_file:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", p.source):
            raise PluginError(f"plugin {p.source!r} is neither a .py file nor a module name (such as my_pkg.gan)")
        return _load_module(p.source, where=repr(p.source))
    path = Path(p.source).expanduser()
    if not path.is_file():
        if p.sha256:  # recorded by a run
            raise PluginError(f"plugin file {p.source!r}, which this run was made with, is gone; put it back, or set "
                              f"`plugins:` in the run's config.yaml to where it is now")
        why = "is a folder" if path.is_dir() else f"not found (paths are relative to {os.getcwd()})"
        raise PluginError(f"plugin file {p.source!r} {why}; give a .py file or an importable module's name")
    if path.suffix.lower() != ".py":  # a config or data file passed by mistake would otherwise run as Python
        raise PluginError(f"plugin file {p.source!r} is not a .py file; give the Python file that registers your "
                          f"models or data sets (a config goes before the options, not after --plugin)")
    key = str(path.resolve())
    if key not in _LOADED:
        _LOADED[key] = _Loaded(Plugin(key, sha256_of(key)), _exec_file(key, where=repr(p.source)))
    return _LOADED[key].plugin


def _exec_file(path: str, *, where: str) -> str:
    """Run a plugin file as a module of its own. compile + exec rather than an import: no __pycache__ is
    written beside a user's file (a bad plugin leaves the disk as it was)."""
    stem = re.sub(r"\W", "_", Path(path).stem)
    name = f"gan_bench_plugin_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # before it runs: dataclasses look their module up there
    saved = snapshot()
    try:
        source = Path(path).read_bytes()
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102  running the user's plugin is the point
    except (Exception, SystemExit) as e:  # noqa: BLE001  anything a plugin raises (sys.exit too) is one line
        del sys.modules[name]
        restore(saved)
        raise _failure(where, e, path) from None
    return name


def _load_module(name: str, *, where: str) -> Plugin:
    if name not in _LOADED:
        saved = snapshot()
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            restore(saved)
            if e.name and (name == e.name or name.startswith(e.name + ".")):
                raise PluginError(f"plugin module {where} not found ({e}); install it, put it on PYTHONPATH, or give "
                                  f"a .py file's path") from None
            raise _failure(where, e, None) from None
        except (Exception, SystemExit) as e:  # noqa: BLE001
            restore(saved)
            raise _failure(where, e, None) from None
        file = getattr(module, "__file__", None)
        _LOADED[name] = _Loaded(Plugin(name, sha256_of(file) if file else None), name)
    return _LOADED[name].plugin


def _failure(where: str, e: BaseException, path: Optional[str]) -> PluginError:
    """One line: the plugin, the line of its code that failed, the exception's first line."""
    if isinstance(e, SyntaxError) and (path is None or e.filename == path):
        return PluginError(f"plugin {where} has a syntax error at line {e.lineno}: {e.msg}; fix it")
    frames = [f for f in traceback.extract_tb(e.__traceback__) if not f.filename.startswith("<frozen")]
    mine = [f for f in frames if f.filename == path] if path else frames
    at = ""
    if mine:
        f = mine[-1]
        at = f" at line {f.lineno}" if path else f" at {Path(f.filename).name}:{f.lineno}"
    text = f"sys.exit({e.code!r})" if isinstance(e, SystemExit) else (str(e).strip().splitlines() or [""])[0]
    return PluginError(f"plugin {where} failed{at}: {type(e).__name__}: {text}")
