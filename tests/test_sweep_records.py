"""A published sweep's records are what git keeps of results/sweeps/<name>/ (the repo's own .gitignore), and
`gan-bench sweep FILE --report` and `--confirm` rebuild the same tables from them alone: no study.db, no
checkpoints, no pictures. And the sweep run there goes on from its records (tests/test_sweep_continue.py):
its trials are not trained again. Records that do not fit the sweep file are rows of tests/test_bad_inputs.py."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gan_bench.cli import main
from conftest import ROOT
from test_sweep import write_sweep

pytestmark = pytest.mark.usefixtures("one_torch_thread")
KEPT = {"trial.json", "config.yaml", "summary.json", "metrics.jsonl", "eval.jsonl", "events.jsonl", "README.md",
        "confirmed.md", "confirmed.csv", "t.yaml"}


def _git(repo: Path, *args: str) -> list[str]:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return [line for line in r.stdout.splitlines() if line]


def git_repo(tmp: Path, monkeypatch) -> None:
    """tmp a git repository with gan-bench's .gitignore, and the current folder (a sweep under results/sweeps/
    there is kept in git as a published one is)."""
    _git(tmp, "init", "-q")
    shutil.copy(ROOT / ".gitignore", tmp / ".gitignore")
    monkeypatch.chdir(tmp)


def drop_what_git_ignores(repo: Path) -> list[str]:
    """Delete every file under repo that git ignores (a clone would not have it); the paths deleted."""
    ignored = _git(repo, "ls-files", "--others", "--ignored", "--exclude-standard")
    for p in ignored:
        (repo / p).unlink()
    return ignored


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git to read the .gitignore rules")
def test_the_tables_regenerate_from_what_git_keeps_of_a_sweep(tmp_path: Path, monkeypatch, capsys):
    git_repo(tmp_path, monkeypatch)
    big = {"config": "t.yaml", "name": "big", "space": {"train.batch_size": {"choice": [100000]}}}  # trials fail
    write_sweep(tmp_path, steps=4, trials=3, out="results/sweeps/s", configs=["t.yaml", big])
    assert main(["sweep", "s.yaml"]) == 0
    assert main(["sweep", "s.yaml", "--confirm", "1"]) == 0
    sw = tmp_path / "results" / "sweeps" / "s"
    tables = {p: (sw / p).read_text() for p in ("report/README.md", "report/confirmed.md", "best/t.yaml")}

    # everything git would not keep goes, and the tables too (they must come back)
    ignored = drop_what_git_ignores(tmp_path)
    assert "results/sweeps/s/study.db" in ignored
    assert any(p.endswith("checkpoints/last.pt") for p in ignored) and any(p.endswith(".png") for p in ignored)
    for p in tables:
        (sw / p).unlink()
    kept = _git(tmp_path, "ls-files", "--others", "--exclude-standard", "results")
    assert {Path(p).name for p in kept} <= KEPT, kept
    assert {f"results/sweeps/s/t/trial-{i:04d}/{f}" for i in range(3) for f in ("trial.json", "seed0/config.yaml",
            "seed0/summary.json", "seed0/eval.jsonl", "seed0/metrics.jsonl")} <= set(kept), kept

    assert main(["sweep", "s.yaml", "--report"]) == 0
    assert main(["sweep", "s.yaml", "--confirm", "1"]) == 0  # reads the confirming run: trains nothing
    for p, text in tables.items():
        assert (sw / p).read_text() == text, p
    assert tables["report/README.md"].count("failed: train.batch_size=100000 is larger than the") == 3
    assert not (sw / "study.db").exists() and not list(sw.glob("confirm/t/seed1/checkpoints/*"))  # not trained

    # the sweep run there goes on from its records into a study.db: every trial is done, so nothing is trained,
    # and the report of that study is the same again
    capsys.readouterr()
    assert main(["sweep", "s.yaml"]) == 0
    assert "sweep s: studies rebuilt from 6 trial records in results/sweeps/s; continuing" in capsys.readouterr().err
    assert (sw / "study.db").exists() and not list(sw.glob("*/trial-*/seed0/checkpoints/*"))
    for p in ("report/README.md", "best/t.yaml"):
        assert (sw / p).read_text() == tables[p], p

