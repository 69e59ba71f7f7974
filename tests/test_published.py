"""The published results regenerate from the repository alone: for every suite committed under
results/<suite>/ (its runs' records and report/ tables), `gan-bench compare` on the committed records
writes exactly the committed tables."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gan_bench.report.compare import compare
from gan_bench.suite.file import load_suite

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = sorted(p.parent.parent for p in (ROOT / "results").glob("*/report/runs.csv"))


def _tracked(folder: Path) -> list[str] | None:
    """The files git tracks under folder (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "--", str(folder)], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.split()


def pivot_metrics(report: Path) -> list[str]:
    """The metrics of the committed pivots (pivot_fd.csv -> fd, pivot_fd_at_best.csv -> fd@best)."""
    return sorted(p.stem.removeprefix("pivot_").replace("_at_", "@") for p in report.glob("pivot_*.csv"))


def test_the_published_suites_are_here():
    if not PUBLISHED:
        pytest.skip("no suite is published under results/ yet")
    for suite in PUBLISHED:
        assert (ROOT / "configs" / "suites" / f"{suite.name}.yaml").exists(), f"{suite.name}: its suite file is missing"


@pytest.mark.parametrize("suite", PUBLISHED, ids=[p.name for p in PUBLISHED])
def test_committed_tables_equal_what_compare_makes_from_the_committed_records(suite: Path, tmp_path: Path):
    summaries = list(suite.rglob("summary.json"))
    assert summaries, f"{suite}: no run records are committed"
    hashes = [json.loads(p.read_text())["config_hash"] for p in summaries]
    # compare keeps the newest of runs with one config hash by file time, which a clone does not keep
    assert len(hashes) == len(set(hashes)), f"{suite}: two run folders of one experiment are committed"
    tracked = _tracked(suite)
    if tracked is not None:  # the checkout's own checkpoints are ignored files; none may be in git
        assert not [p for p in tracked if not p.endswith((".yaml", ".json", ".jsonl", ".md", ".csv"))], \
            f"{suite}: only records and tables are committed (no checkpoints, pictures or logs)"
    targets = load_suite(ROOT / "configs" / "suites" / f"{suite.name}.yaml").targets
    for metric in pivot_metrics(suite / "report"):  # one compare per pivot; the other tables are the same each time
        compare(results=suite, out=tmp_path / "report", metric=metric, plots=False, targets=targets)
    committed = sorted(p.name for p in (suite / "report").iterdir() if p.suffix in (".md", ".csv"))
    made = sorted(p.name for p in (tmp_path / "report").iterdir() if p.suffix in (".md", ".csv"))
    assert committed == made
    for name in committed:
        assert (suite / "report" / name).read_text() == (tmp_path / "report" / name).read_text(), \
            f"{suite.name}/report/{name} is not what compare makes from the committed records"
