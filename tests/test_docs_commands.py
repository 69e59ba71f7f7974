"""Every `gan-bench` command the README and the manual (docs/) show in a code block is one gan-bench takes
(issue 37): it parses with the command's own parser, the configs, suites and sweeps it names in the
repository exist, and `gan-bench run` of a shipped config is planned (the run plan's checks, no training).

Placeholders (RUN, FILE, results/<config>/<run>) are fine: argparse takes any text there. A run example
about the user's own files (a --plugin or a data path not in the repository) plans the config file alone.
A failure names the page and line of the command.
"""
from __future__ import annotations

import contextlib
import io
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from gan_bench.cli import _parser
from gan_bench.config import load_config, parse_set
from gan_bench.errors import GanBenchError
from conftest import ROOT

markdown_it = pytest.importorskip("markdown_it")  # the docs extra, in dev

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
REPO_DIRS = ("configs", "examples")  # a path under these names a file that ships with the repository
SEPARATORS = ("&&", "||", ";", "|")


@dataclass(frozen=True)
class Shown:
    """One command as a page shows it: where, its arguments after `gan-bench`, and the error the page shows
    it ending in ("" when it shows none): the `gan-bench: error: ...` line right after it. problem: why a
    line that runs gan-bench could not be read as a command (then argv is empty)."""

    page: str
    line: int
    argv: tuple[str, ...]
    error: str = ""
    problem: str = ""

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    def __str__(self) -> str:
        return f"{self.where}: gan-bench {shlex.join(self.argv)}"


def commands_in(line: str) -> Iterator[tuple[str, ...]]:
    """The gan-bench commands of one shell line: `$ ` prompts, # comments and `a && b` chains handled."""
    words = shlex.split(line, comments=True)
    start = 0
    for i in range(len(words) + 1):
        if i == len(words) or words[i] in SEPARATORS:
            part = words[start:i]
            if part[:1] == ["$"]:
                part = part[1:]
            if part[:1] == ["gan-bench"]:
                yield tuple(part[1:])
            start = i + 1


def _is_command(text: str) -> bool:
    """A shell line that runs gan-bench (not a file tree or program output that mentions it)."""
    bare = text.strip().removeprefix("$ ").lstrip()
    return bare.startswith("gan-bench ") or bare == "gan-bench" or "&& gan-bench " in bare


ERROR = "gan-bench: error: "


def shown_commands(pages: list[Path] = PAGES, root: Path = ROOT) -> list[Shown]:
    """Every gan-bench command in the pages' code blocks (fenced or indented), pages named relative to root."""
    md = markdown_it.MarkdownIt("commonmark")
    found: list[Shown] = []
    for path in pages:
        page = path.relative_to(root).as_posix()
        for tok in md.parse(path.read_text(encoding="utf-8")):
            if tok.type not in ("fence", "code_block") or tok.map is None:
                continue
            first = tok.map[0] + (2 if tok.type == "fence" else 1)  # 1-based line of the block's first code line
            lines = tok.content.splitlines()
            i = 0
            while i < len(lines):
                n, text = i, lines[i]
                while text.rstrip().endswith("\\") and i + 1 < len(lines):  # continued on the next line
                    i += 1
                    text = text.rstrip()[:-1] + " " + lines[i].strip()
                i += 1
                if not _is_command(text):
                    continue
                after = lines[i].strip() if i < len(lines) else ""
                error = after.removeprefix(ERROR) if after.startswith(ERROR) else ""
                try:
                    found += [Shown(page, first + n, argv, error) for argv in commands_in(text)]
                except ValueError as e:  # unbalanced quotes
                    found.append(Shown(page, first + n, (), problem=f"the shell cannot split {text.strip()!r} ({e})"))
    return found


SHOWN = shown_commands()


def test_the_readme_shows_commands():
    assert any(s.page == "README.md" for s in SHOWN), \
        "no gan-bench command found in README.md's code blocks: is the extraction broken?"


def test_commands_are_found_in_fenced_and_indented_blocks_chains_and_continued_lines(tmp_path: Path):
    page = tmp_path / "docs" / "probe.md"
    page.parent.mkdir()
    page.write_text("Text `gan-bench inline` is not a block.\n\n"
                    "```bash\n$ gan-bench list\npip install x && gan-bench run configs/demo.yaml --dry-run  # why\n"
                    "gan-bench run configs/demo.yaml \\\n    --set train.epochs=1\n```\n\n"
                    "    gan-bench eval RUN\n    gan-bench: error: RUN is not a run folder\n"
                    "    gan_bench/            the package; gan-bench's \"layout\n"
                    "    gan-bench run \"unclosed\n", encoding="utf-8")
    *shown, unreadable = shown_commands([page], tmp_path)
    assert unreadable.where == "docs/probe.md:13" and "cannot split" in unreadable.problem
    assert [str(s) for s in shown] == [
        "docs/probe.md:4: gan-bench list",
        "docs/probe.md:5: gan-bench run configs/demo.yaml --dry-run",
        "docs/probe.md:6: gan-bench run configs/demo.yaml --set train.epochs=1",
        "docs/probe.md:10: gan-bench eval RUN"]
    assert [s.error for s in shown] == ["", "", "", "RUN is not a run folder"]


def _same_error(shown: str, said: str) -> bool:
    """The error a page shows is the one gan-bench says (a page may cut it short with "...")."""
    for cut in ("...", "…"):
        if shown.endswith(cut):
            return said.startswith(shown[:-len(cut)].rstrip())
    return said == shown


def _not_in_repo(ns) -> bool:
    """Whether a run example is about the user's own files: a plugin or a data path the repository lacks."""
    plugins = [p for p in ns.plugin if p.endswith(".py") and not (ROOT / p).is_file()]
    paths = []
    for item in ns.set:
        key, value = parse_set(item)
        if key[-1] in ("path", "test_path", "root") and isinstance(value, str):
            paths.append(value)
    return bool(plugins) or any(not (ROOT / p).exists() for p in paths)


@pytest.mark.parametrize("shown", SHOWN, ids=lambda s: s.where)
def test_a_shown_command_is_one_gan_bench_takes(shown: Shown, isolated_registries, monkeypatch):
    if shown.problem:
        pytest.fail(f"{shown.where}: {shown.problem}")
    refused = ""  # the error gan-bench gives it (checked without running it: parsing, and a run's plan)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            ns = _parser().parse_args(list(shown.argv))
    except GanBenchError as e:
        ns, refused = None, str(e)
    except SystemExit as e:  # --help
        assert e.code == 0, f"{shown}\n  exits {e.code}"
        return
    if ns is not None:
        named = [w for w in shown.argv if Path(w).parts[:1] and Path(w).parts[0] in REPO_DIRS and "<" not in w]
        missing = [w for w in named if not (ROOT / w).exists()]
        assert not missing, f"{shown}\n  names {', '.join(missing)}, which the repository does not have"
        refused = _plan_refusal(ns, monkeypatch)
    if shown.error:  # the page shows it refused: it must be, with that message
        assert refused, f"{shown}\n  is shown refused ({shown.error}) but gan-bench takes it"
        assert _same_error(shown.error, refused), \
            f"{shown}\n  shows the error: {shown.error}\n  gan-bench says: {refused}"
    else:
        assert not refused, f"{shown}\n  is refused: {refused}"


def _plan_refusal(ns, monkeypatch) -> str:
    """For `gan-bench run` of a shipped config: the run plan's refusal ("" when it plans), no training."""
    if not (ns.command == "run" and ns.config is not None and ns.resume is None and ns.config.parts[0] in REPO_DIRS):
        return ""
    from gan_bench.train.plan import make_plan

    monkeypatch.chdir(ROOT)  # the command runs from the repository's root, as the pages say
    try:
        if _not_in_repo(ns):
            make_plan(load_config(ns.config))
        else:
            make_plan(load_config(ns.config, ns.set, plugins=ns.plugin))
    except GanBenchError as e:
        return str(e)
    return ""
