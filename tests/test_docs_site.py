"""The manual (mkdocs.yml, issue 37) builds with no warning, and its generated pages say what the code holds:
every key of the typed config with its type, default, range and meaning, and results/README.md with every
picture it shows."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import pytest

from gan_bench import config
from gan_bench.config import Config, TrainConfig, option
from conftest import ROOT

pytest.importorskip("mkdocs")
pytest.importorskip("material")  # mkdocs-material: the docs extra, in dev

sys.path.insert(0, str(ROOT / "docs" / "gen"))
import reference_pages  # noqa: E402  docs/gen/
import results_page  # noqa: E402


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The site built as CI builds it (.ci/run), into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_MKDOCS_2_WARNING": "1"}
    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300)
    return out, r


def test_the_site_builds_with_no_warning(site):
    out, r = site
    said = (r.stdout + r.stderr).splitlines()
    problems = [line for line in said if line.startswith(("WARNING", "ERROR"))]
    assert r.returncode == 0 and not problems, "mkdocs build --strict:\n" + "\n".join(problems or said[-20:])
    for page in [*reference_pages.PAGES, results_page.PAGE]:
        assert (out / page).with_suffix(".html").is_file(), f"{page} was not built"
    assert not (ROOT / "docs" / "reference").exists(), "reference pages are written at build time, not kept in docs/"


def typed_keys() -> list[str]:
    """Every key of the typed config: the dataclasses walked from Config, and the own keys of each built-in
    data set (and model) as the config reads them."""
    def walk(cls: type, prefix: str) -> typing.Iterator[str]:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                yield from walk(hints[f.name], f"{prefix}{f.name}.")
            else:
                yield prefix + f.name

    keys = list(walk(Config, ""))
    own = {s: table() for s, table in config.OPTIONS.items()}  # every section's entries' own keys
    for section, table in own.items():
        for options in table.values():
            if options is not None and options.__module__.startswith("gan_bench."):  # built in, not a test's plugin
                keys += [f"{section}.{f.name}" for f in dataclasses.fields(options)]
    return sorted(set(keys))


def test_the_configuration_page_lists_every_key_of_the_typed_config(site):
    out, _ = site
    page = (out / "reference" / "config.html").read_text(encoding="utf-8")
    keys = typed_keys()
    assert {"name", "data.name", "data.categories", "data.crop", "model.width", "train.lr_d", "eval.primary"} \
        <= set(keys)
    missing = [k for k in keys if f"<code>{k}</code>" not in page]
    assert not missing, f"keys of the typed config missing from reference/config.md: {', '.join(missing)}"


def test_every_key_of_the_configuration_page_says_what_it_means():
    """A key added without help= or a comment above it would be a bare row: the page is the manual."""
    rows = [line for line in reference_pages.config_page().splitlines() if line.startswith("| `")]
    assert len(rows) >= len(typed_keys())
    bare = [row.split("|")[1].strip() for row in rows if not row.rstrip().rstrip("|").rsplit("|", 1)[-1].strip()]
    assert not bare, f"keys with no meaning on reference/config.md (give them help= or a comment): {bare}"


@dataclass
class Knobs:
    # how many widgets,
    # counted from one
    widgets: int = option(3, lo=1, hi=9)
    ratio: float = option(0.5, lo=0.0, lo_open=True, help="the help= text wins")  # not this comment

    tags: list[str] = option(["a"], nonempty=True)  # a comment on the field's own line
    where: Optional[str] = None


@dataclass
class BiggerTrain(TrainConfig):
    # a key added to the trainer later
    new_knob: int = option(7, lo=0)


@dataclass
class BiggerConfig(Config):
    train: BiggerTrain = field(default_factory=BiggerTrain)


def test_a_key_is_listed_with_its_type_default_range_and_meaning():
    rows = reference_pages.key_rows(Knobs, "knobs.")
    assert rows == [
        "| `knobs.widgets` | int | `3` | 1 ≤ x ≤ 9 | how many widgets, counted from one |",
        "| `knobs.ratio` | float | `0.5` | x &gt; 0 | the help= text wins |",
        "| `knobs.tags` | list of str | `[a]` | not empty | a comment on the field's own line |",
        "| `knobs.where` | str or null | `null` |  |  |"]


def test_a_key_added_to_the_config_appears_on_the_page(monkeypatch):
    monkeypatch.setattr(config, "Config", BiggerConfig)
    page = reference_pages.config_page()
    assert "| `train.new_knob` | int | `7` | x ≥ 0 | a key added to the trainer later |" in page
    assert "`train.lr_g`" in page  # the section's other keys stay


def test_a_class_without_source_has_no_comments():
    made = dataclasses.make_dataclass("Made", [("k", int, dataclasses.field(default=1))])
    assert reference_pages.field_comments(made) == {}
    assert reference_pages.key_rows(made, "") == ["| `k` | int | `1` |  |  |"]


def test_the_results_page_links_resolve_in_the_site(tmp_path: Path):
    (tmp_path / "results" / "img").mkdir(parents=True)
    (tmp_path / "docs").mkdir()
    (tmp_path / "results" / "img" / "plot.png").write_bytes(b"png")
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a.yaml").write_text("{}")
    (tmp_path / "results" / "README.md").write_text(
        "![plot](img/plot.png) [gallery](../docs/gallery.jpg) [a](../configs/a.yaml \"title\")\n"
        "[web](https://example.org/x.png) [here](#machine) [self](README.md#top) ![gone](img/gone.png)\n"
        '<img src="img/plot.png">\n')
    text, copies = results_page.results_page(tmp_path, tmp_path / "docs")
    assert text == ("![plot](results/img/plot.png) [gallery](gallery.jpg) [a](configs/a.yaml \"title\")\n"
                    "[web](https://example.org/x.png) [here](#machine) [self](results.md#top) "
                    "![gone](results/img/gone.png)\n"
                    '<img src="results/img/plot.png">\n')
    # the missing picture is not copied: the strict build then fails on its link, naming it
    assert copies == {"results/img/plot.png": tmp_path / "results/img/plot.png",
                      "configs/a.yaml": tmp_path / "configs/a.yaml"}


def test_the_built_results_page_has_every_picture_of_results_readme(site):
    out, _ = site
    text, copies = results_page.results_page(ROOT, ROOT / "docs")
    pictures = [uri for uri in copies if uri.startswith("results/img/")]
    assert pictures, "results/README.md shows no picture from results/img/ any more?"
    for uri in copies:
        assert (out / uri).read_bytes() == (ROOT / uri).read_bytes(), uri
    html = (out / "results.html").read_text(encoding="utf-8")
    assert all(f'src="{uri}"' in html for uri in pictures)
