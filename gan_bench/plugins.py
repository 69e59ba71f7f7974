"""Plugins: a user's own data sets, models, metrics, losses and trackers, registered from outside the package.

A plugin is a Python file or an importable module that registers entries through the public API
(gan_bench/api.py) when it is imported. Three ways name one: `--plugin FILE_OR_MODULE` (repeatable), a
config's or a suite file's `plugins:` key, and the `gan_bench.plugins` entry-point group of an installed
package (its pyproject.toml: [project.entry-points."gan_bench.plugins"] my_gan = "my_pkg.gan"), which
is how pytest finds its plugins. Each is imported once per process. The config records each one it
loaded as a Plugin (the file's absolute path or the module's name, and the sha256 of its file), so a
run folder's config.yaml brings them back for --resume, eval, sample and suites.

A plugin that fails to import, or registers a name that is taken, is one PluginError line naming it
and the line that failed, and whatever it registered before failing is undone. Once imported, a plugin's
code is called inside plugin_call(): an exception it raises is one PluginError line naming the plugin's
file and line (the traceback behind GAN_BENCH_DEBUG=1), as pytest reports a failing plugin hook.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Iterator, Optional

from gan_bench.errors import GanBenchError, PluginError
from gan_bench.registry import restore, snapshot

GROUP = "gan_bench.plugins"  # the entry-point group installed packages declare their plugins in


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
        if p.sha256 and not path.is_symlink():  # recorded by a run
            raise PluginError(f"plugin file {p.source!r}, which this run was made with, is gone; put it back, or set "
                              f"`plugins:` in the run's config.yaml to where it is now")
        why = ("is a folder" if path.is_dir() else "is a symbolic link to nothing readable" if path.is_symlink()
               else f"not found (paths are relative to {os.getcwd()})")
        raise PluginError(f"plugin file {p.source!r} {why}; give a .py file or an importable module's name")
    if path.suffix.lower() != ".py":  # a config or data file passed by mistake would otherwise run as Python
        raise PluginError(f"plugin file {p.source!r} is not a .py file; give the Python file that registers your "
                          f"models or data sets (a config goes before the options, not after --plugin)")
    key = str(path.resolve())
    if key not in _LOADED:
        try:
            source = Path(key).read_bytes()
        except OSError as e:
            raise PluginError(f"cannot read plugin file {p.source!r} ({e.strerror or e}); check its "
                              f"permissions") from None
        module = _exec_file(key, source, where=repr(p.source))
        _LOADED[key] = _Loaded(Plugin(key, hashlib.sha256(source).hexdigest()), module)
    return _LOADED[key].plugin


def _exec_file(path: str, source: bytes, *, where: str) -> str:
    """Run a plugin file as a module of its own. compile + exec rather than an import: no __pycache__ is
    written beside a user's file (a bad plugin leaves the disk as it was)."""
    stem = re.sub(r"\W", "_", Path(path).stem)
    name = f"gan_bench_plugin_{stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module  # before it runs: dataclasses look their module up there
    saved = snapshot()
    try:
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


# ---- calling a plugin's code ------------------------------------------------------------------------

DEBUG = "GAN_BENCH_DEBUG"  # =1: a plugin's exception prints its whole traceback before the one line


def plugin_files() -> set[str]:
    """The source files of the plugins imported so far (a module plugin: its package's files too)."""
    out: set[str] = set()
    for entry in _LOADED.values():
        for name, module in list(sys.modules.items()):
            if name == entry.module or name.startswith(entry.module + "."):
                file = getattr(module, "__file__", None)
                if file:
                    out.update((os.path.abspath(file), os.path.realpath(file)))
    return out


def show_path(path: str) -> str:
    """A plugin file as a user names it: relative to the working folder when it is under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


def where(obj: object) -> Optional[str]:
    """'plug.py:12': where obj (a function, a class, an nn.Module, a record holding functions such as a
    Loss) is defined; None when that cannot be told (a built-in made in C)."""
    target = getattr(obj, "func", obj)  # functools.partial
    code = getattr(target, "__code__", None)
    if code is None and not isinstance(target, type):
        forward = getattr(type(target), "forward", None)
        if hasattr(forward, "__code__"):  # an nn.Module instance: its forward
            code = forward.__code__
        else:  # a record of functions: the first of a plugin's, else the first
            codes = [v.__code__ for v in getattr(target, "__dict__", {}).values() if hasattr(v, "__code__")]
            mine = plugin_files()
            code = next((c for c in codes if os.path.abspath(c.co_filename) in mine), codes[0] if codes else None)
            target = type(target) if code is None else target
    if code is not None:
        return f"{show_path(code.co_filename)}:{_def_line(code.co_filename, code.co_firstlineno)}"
    if isinstance(target, type):
        import inspect

        try:
            file, line = inspect.getsourcefile(target), inspect.getsourcelines(target)[1]
        except (OSError, TypeError):
            return None
        return f"{show_path(file)}:{_def_line(file, line)}" if file else None
    return None


def _def_line(file: str, line: int) -> int:
    """The `def` or `class` line of a definition that starts at `line`: a decorated one's code starts at
    its first decorator (@register_model(...)), but the user looks for the def."""
    import linecache

    for i in range(line, line + 30):
        text = linecache.getline(file, i).lstrip()
        if text.startswith(("def ", "async def ", "class ")):
            return i
        if not text:  # past the end of the file, or a definition not found nearby
            break
    return line


def _plugin_frame(e: BaseException) -> Optional[traceback.FrameSummary]:
    """The deepest frame of e's traceback in a plugin's file: the plugin's line that failed."""
    mine = plugin_files()
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if os.path.abspath(f.filename) in mine or os.path.realpath(f.filename) in mine]
    return frames[-1] if frames else None


def _first_line(e: BaseException) -> str:
    text = f"sys.exit({e.code!r})" if isinstance(e, SystemExit) else (str(e).strip().splitlines() or [""])[0]
    return text if len(text) <= 300 else text[:297] + "..."


def _signature_error(e: BaseException, obj: object) -> bool:
    """Whether e is Python refusing the call of obj itself (a factory, or an nn.Module's forward, taking
    other arguments than gan-bench passes), not an error inside it: a TypeError that names obj."""
    target = getattr(obj, "func", obj)
    names = [getattr(target, "__qualname__", None) or ""]
    if not isinstance(target, type) and not hasattr(target, "__code__"):  # an instance: its forward or __call__
        names = [f"{type(target).__qualname__}.{m}" for m in ("forward", "__call__")]
    text = str(e)
    return (isinstance(e, TypeError) and "argument" in text
            and any(n and text.startswith((f"{n}()", f"{n}.__init__()")) for n in names))


@contextmanager
def plugin_call(what: str, obj: object = None, *, expects: str = "",
                allow: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run a block that calls a plugin's code (obj: what is called, for where it is defined).

    An exception raised in a plugin's file is one PluginError line: "<what>: plug.py:12 raised
    ValueError: <message>"; with GAN_BENCH_DEBUG=1 its traceback is printed first. A call Python refuses
    (obj takes other arguments) names obj's line and `expects`, the signature gan-bench calls. A
    GanBenchError (a plugin's own one-line DataError, ...) and the types in `allow` (a metric's
    NotApplicable) pass as they are; so does an exception with no frame in a plugin's file (a bug of
    gan-bench's keeps its traceback)."""
    try:
        yield
    except GanBenchError:
        raise
    except allow:
        raise
    except (Exception, SystemExit) as e:  # noqa: BLE001  anything a plugin raises, sys.exit too
        frame = _plugin_frame(e)
        if frame is None and obj is not None and _signature_error(e, obj) and origin(getattr(obj, "func", obj)):
            at = where(obj) or "the plugin"
            raise PluginError(f"{what}: {at} cannot be called as gan-bench calls it ({_first_line(e)})"
                              + (f"; expected {expects}" if expects else "")) from None
        if frame is None:
            raise
        if os.environ.get(DEBUG, "") not in ("", "0"):
            traceback.print_exception(e, file=sys.stderr)
        hint = "" if os.environ.get(DEBUG, "") not in ("", "0") else f" (set {DEBUG}=1 for the traceback)"
        raise PluginError(f"{what}: {show_path(frame.filename)}:{frame.lineno} raised {type(e).__name__}: "
                          f"{_first_line(e)}{hint}") from None


def describe(value: object) -> str:
    """What a plugin returned, in a few words: "a float64 tensor of shape (2, 1)", "a tuple of 2", "None"."""
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        module, dtype = type(value).__module__, str(dtype).replace("torch.", "")
        if module.startswith("numpy") and type(value).__name__ != "ndarray":  # a numpy number: np.float32(0.5)
            return f"a numpy {dtype} number"
        kind = "array" if module.startswith("numpy") else "tensor"
        return f"{'an' if dtype.startswith('int') else 'a'} {dtype} {kind} of shape {tuple(shape)}"
    if value is None:
        return "None"
    if isinstance(value, type) or callable(value) and hasattr(value, "__qualname__"):
        return f"{'class' if isinstance(value, type) else 'function'} {value.__qualname__}"
    if isinstance(value, (tuple, list, dict, set)):
        return f"a {type(value).__name__} of {len(value)}"
    text = repr(value)
    return f"{text if len(text) <= 60 else text[:57] + '...'} ({type(value).__name__})"


def broken(what: str, obj: object, returned: str, expected: str) -> PluginError:
    """One line for a plugin that broke its registry's contract: "<what> (plug.py:12) returned ...; expected ..."."""
    at = where(obj) if obj is not None else None
    return PluginError(f"{what}{f' ({at})' if at else ''} returned {returned}; expected {expected}")
