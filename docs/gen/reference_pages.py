"""The manual's reference pages, written from the code each time the site is built (docs/hooks.py).

The configuration page walks the typed config (gan_bench/config.py's dataclasses and each data set's own
options dataclass): every key with its type, default, range (the `option()` metadata) and meaning (the
option's `help=`, else the comments beside the field in the source, so the comments are the manual). The
registry pages render the rows `gan-bench list` prints (gan_bench.cli.catalog). Nothing here is committed
as output, so a key or a metric added to the code is on the next built site.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import textwrap
import tokenize
import typing
from typing import Any

import yaml

# The section a config key is listed in; its heading's anchor is the section's prefix (#train, #data-quickdraw).
SECTION_INTRO = {
    "": "The top level of a config file.",
    "data": "The keys every data set takes. A data set's own keys follow, each under its data set.",
    "model": "The model and its size.",
    "train": "The recipe, the budget, the speed switches and what a run records.",
    "eval": "Evaluation during training (`gan-bench eval` evaluates a finished run).",
}
# The reference page listing what a key names (the strict build checks that each link and anchor exists).
SEE = {"data.name": ("data sets", "datasets.md"), "model.name": ("models", "models.md"),
       "train.loss": ("losses", "registries.md#losses"),
       "train.diffaug": ("augmentations", "registries.md#augmentations"),
       "train.trackers": ("trackers", "registries.md#trackers"), "eval.metrics": ("metrics", "metrics.md"),
       "eval.primary": ("metrics", "metrics.md")}


# --- The comments beside a field -----------------------------------------------------------------------

def field_comments(cls: type) -> dict[str, str]:
    """{field name: the comment lines directly above it, then the comments on its own lines}, read from the
    class's source; {} when the source cannot be read (a class made at run time)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments: dict[int, tuple[str, bool]] = {}  # line -> (text, alone on its line)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if not text.startswith(("noqa", "type:")):  # a linter's, not a reader's
                comments[tok.start[0]] = (text, not tok.line[:tok.start[1]].strip())
    cls_node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef))
    out = {}
    for node in cls_node.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, n = [], node.lineno - 1
        while n in comments and comments[n][1]:
            above.insert(0, comments[n][0])
            n -= 1
        own = [comments[i][0] for i in range(node.lineno, (node.end_lineno or node.lineno) + 1) if i in comments]
        out[node.target.id] = " ".join(above + own)
    return out


# --- One key as a table row ---------------------------------------------------------------------------

def type_name(tp: Any) -> str:
    """A key's type in the words of the config's own error messages ("int or null", "list of str")."""
    from gan_bench.config import _type_name

    if dataclasses.is_dataclass(tp) and getattr(tp, "SHORTHAND", None):
        return "str or mapping"  # a bare string stands for {SHORTHAND: string} (plugins: [my_gan.py])
    origin = typing.get_origin(tp)
    if origin is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
        return f"list of {type_name(typing.get_args(tp)[0])}"
    return _type_name(tp)


def yaml_value(value: Any) -> str:
    """A default as it is written in a YAML file: null, true, [0.5, 0.999], ''."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def range_text(meta: typing.Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    parts = []
    if lo is not None and hi is not None:
        parts.append(f"{_num(lo)} {'<' if meta.get('lo_open') else '≤'} x ≤ {_num(hi)}")
    elif lo is not None:
        parts.append(f"x {'>' if meta.get('lo_open') else '≥'} {_num(lo)}")
    elif hi is not None:
        parts.append(f"x ≤ {_num(hi)}")
    if meta.get("nonempty"):
        parts.append("not empty")
    return ", ".join(parts)


def _num(x: float) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (no HTML, no column break, no stray emphasis)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") \
        .replace("*", "\\*").replace("\n", " ")


def key_rows(cls: type, prefix: str, *, skip_sections: bool = True) -> list[str]:
    """Table rows (type, default, range, meaning) of a dataclass's keys, named with `prefix` ("train.")."""
    from gan_bench.config import NAME_KEYS

    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    rows = []
    for f in dataclasses.fields(cls):
        if skip_sections and dataclasses.is_dataclass(hints[f.name]):
            continue  # a section of its own (data, model, ...)
        key = prefix + f.name
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        meaning = cell(f.metadata.get("help") or comments.get(f.name, ""))
        if key in NAME_KEYS:
            kind, names = NAME_KEYS[key]
            meaning += f" A {kind} name: " + ", ".join(f"`{n}`" for n in names()) + "."
        if key in SEE:
            meaning += " See [{}]({}).".format(*SEE[key])
        rows.append(f"| `{key}` | {cell(type_name(hints[f.name]))} | `{yaml_value(default)}` "
                    f"| {cell(range_text(f.metadata))} | {meaning.strip()} |")
    return rows


TABLE_HEAD = ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]


# --- The pages -----------------------------------------------------------------------------------------

def config_page() -> str:
    """reference/config.md: every key of the typed config, section by section."""
    from gan_bench.config import Config

    rows = _catalog()
    lines = ["# Configuration reference", "",
             "Every key a config file, a suite's runs or `--set KEY=VALUE` can give, with its type, its default, "
             "the range it is checked against and what it means. A YAML file holds only what differs from these "
             "defaults; an unknown key, a wrong type or a value out of range is refused with one line naming the key. "
             "`gan-bench run CONFIG --dry-run` prints a config with every key resolved.", "",
             "This page is written from `gan_bench/config.py` and the data sets' own options each time the site is "
             "built: a key's meaning is its `help=` or the comment beside it in the code.", ""]
    hints = typing.get_type_hints(Config)
    sections = [("", Config)] + [(f.name, hints[f.name]) for f in dataclasses.fields(Config)
                                 if dataclasses.is_dataclass(hints[f.name])]
    for name, cls in sections:
        lines += [f"## {name or 'Top level'} {{#{name or 'top-level'}}}", "", SECTION_INTRO.get(name, ""), "",
                  *TABLE_HEAD, *key_rows(cls, f"{name}." if name else ""), ""]
        owners = {"data": rows["data sets"], "model": rows["models"]}.get(name, [])
        for r in owners:  # a data set's (or a model's) own keys, read only when it is the one named
            if r.get("options") is None or not dataclasses.fields(r["options"]):
                continue
            lines += [f"### {name}: options of `{r['name']}` {{#{name}-{r['name']}}}", "",
                      f"Keys of the `{name}:` section read only when `{name}.name` is `{r['name']}`.", "",
                      *TABLE_HEAD, *key_rows(r["options"], f"{name}.", skip_sections=False), ""]
    return "\n".join(lines)


PLUGIN_NOTE = ("Built-in entries only: `gan-bench list --plugin FILE` lists a plugin's beside them "
               "([plugins](../plugins.md)).")


def datasets_page() -> str:
    rows = [r for r in _catalog()["data sets"] if not r["plugin"]]
    lines = ["# Data sets", "", "The registered data sets (`data.name`), as `gan-bench list` shows them. A data set "
             "describes itself, and the model is sized from it.", "",
             "| name | resolutions (px) | labels | own keys | description |", "|---|---|---|---|---|"]
    for r in rows:
        opts = r.get("options")
        keys = ", ".join(f"[`data.{f.name}`](config.md#data-{r['name']})" for f in dataclasses.fields(opts)) \
            if opts is not None else ""
        lines.append(f"| `{r['name']}` | {r['resolutions']} | {r['labels']} | {keys} | {cell(r['description'])} |")
    return "\n".join(lines + ["", PLUGIN_NOTE, ""])


def models_page() -> str:
    rows = [r for r in _catalog()["models"] if not r["plugin"]]
    lines = ["# Models", "", "The registered models (`model.name`), as `gan-bench list` shows them. Conditional and "
             "per-class models can be asked for an image of a chosen class (`gan-bench sample --label`, the "
             "metrics that need it); both need a labelled data set.", "",
             "| name | resolutions (px) | kind | description |", "|---|---|---|---|"]
    lines += [f"| `{r['name']}` | {r['resolutions']} | {r['kind']} | {cell(r['description'])} |" for r in rows]
    return "\n".join(lines + ["", PLUGIN_NOTE, ""])


def metrics_page() -> str:
    rows = [r for r in _catalog()["metrics"] if not r["plugin"]]
    lines = ["# Metrics", "", "The registered metrics (`eval.metrics`, `gan-bench eval --metrics`), as `gan-bench "
             "list` shows them. *Default*: computed when no metric is named (the others are opt-in). *Needs*: "
             "what a run must have for the metric to apply. *Floor*: the field of the metric's record that holds "
             "what held-out real images score at the same number of images.", "",
             "| name | what it measures | better | kind | default | needs | floor | headline |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        needs = [w for w, flag in (("labelled data", r["needs_labels"]),
                                   ("a conditional or per-class model", r["needs_draws_class"])) if flag]
        lines.append(f"| `{r['name']}` | {cell(r['description'])} | {r['better']} | {r['kind']} | "
                     f"{'yes' if r['default'] else 'opt-in'} | {', '.join(needs)} | "
                     f"{'`' + r['floor'] + '`' if r['floor'] else ''} | {'yes' if r['headline'] else ''} |")
    return "\n".join(lines + ["", PLUGIN_NOTE, ""])


def registries_page() -> str:
    cat = _catalog()
    lines = ["# Losses, augmentations, trackers", "", "The other registries, as `gan-bench list` shows them.", ""]
    for title, key, anchor, usage in (
            ("Losses", "losses", "losses", "`train.loss`: one name"),
            ("Augmentations", "augmentations", "augmentations",
             "`train.diffaug`: a comma-separated policy of these names (\"\" is off)"),
            ("Trackers", "trackers", "trackers", "`train.trackers`: a list of these names")):
        rows = [r for r in cat[key] if not r["plugin"]]
        lines += [f"## {title} {{#{anchor}}}", "", f"{usage}.", "", "| name | description |", "|---|---|"]
        lines += [f"| `{r['name']}` | {cell(r['description'])} |" for r in rows]
        lines.append("")
    return "\n".join(lines + [PLUGIN_NOTE, ""])


def _catalog() -> dict[str, list[dict]]:
    from gan_bench.cli import catalog

    return catalog()


PAGES = {"reference/config.md": config_page, "reference/datasets.md": datasets_page,
         "reference/models.md": models_page, "reference/metrics.md": metrics_page,
         "reference/registries.md": registries_page}


def reference_pages() -> dict[str, str]:
    """{page path in the site's sources: its Markdown}."""
    return {uri: make() for uri, make in PAGES.items()}
