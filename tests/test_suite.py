"""Suites: checking the file, planning (skip / resume / run), a real tiny suite in-process and with
--jobs 2, evaluation hooks, and the reports at the end."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gan_bench import suite as S
from gan_bench.cli import main
from gan_bench.errors import ConfigError
from gan_bench.report.suite import write_reports
from gan_bench.run.files import read_jsonl
from conftest import tiny_overrides


@pytest.fixture
def suite_file(tmp_path: Path, tiny_npz: Path) -> Path:
    """Two tiny configs (conditional and unconditional) x seeds 0 and 1."""
    for model in ("cdcgan", "convdcgan"):
        (tmp_path / f"tiny_{model}.yaml").write_text(yaml.safe_dump(tiny_overrides(tiny_npz, model=model)))
    return _write_suite(tmp_path, {
        "name": "t", "out": str(tmp_path / "res"), "seeds": [0, 1], "set": ["train.epochs=1"],
        "runs": [{"config": str(tmp_path / "tiny_cdcgan.yaml")}, str(tmp_path / "tiny_convdcgan.yaml")],
        "eval": {"metrics": ["fd", "cond_acc"], "samples": 30}})


def _write_suite(tmp_path: Path, d: dict) -> Path:
    p = tmp_path / "suite.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


@pytest.fixture
def fake_eval(monkeypatch) -> list:
    """Stand-in for gan_bench.metrics.evaluate: records calls, writes one line per metric."""
    calls = []

    def eval_run(run_dir, *, metrics, samples):
        steps = json.loads((Path(run_dir) / "summary.json").read_text())["steps"]
        calls.append((Path(run_dir).parent.name, Path(run_dir).name, list(metrics), samples))
        with open(Path(run_dir) / "eval.jsonl", "a") as f:
            for m in metrics:
                f.write(json.dumps({"metric": m, "step": steps, "checkpoint": "last", m: 1.0 + len(calls)}) + "\n")

    monkeypatch.setattr("gan_bench.suite.executor.eval_run", eval_run)
    return calls


@pytest.mark.parametrize("delta, words", [
    ({"runz": []}, ["unknown key 'runz'", "Valid keys"]),
    ({"runs": []}, ["'runs' must be a non-empty list"]),
    ({"runs": ["a.yaml"], "seeds": [0, "1"]}, ["seeds[1]", "expected int"]),
    ({"runs": ["a.yaml"], "seeds": []}, ["seeds", "non-empty list of integers"]),
    ({"runs": [{"config": "a.yaml", "sets": []}]}, ["unknown key 'runs[0].sets'", "Did you mean set"]),
    ({"runs": [{"set": []}]}, ["runs[1]", "'config' is missing"]),
    ({"runs": [7]}, ["runs[0]", "expected a mapping"]),
    ({"runs": ["a.yaml"], "eval": {"metric": ["fd"]}}, ["unknown key 'eval.metric'", "Did you mean metrics"]),
    ({"runs": ["a.yaml"], "eval": {"samples": 0}}, ["eval.samples", "must be >= 1"]),
])
def test_suite_file_errors_name_the_key(tmp_path: Path, delta, words):
    with pytest.raises(ConfigError) as e:
        S.load_suite(_write_suite(tmp_path, delta))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_a_typo_in_a_late_run_fails_before_anything_runs(tmp_path: Path, suite_file: Path):
    d = yaml.safe_load(suite_file.read_text())
    d["runs"].append({"config": d["runs"][1], "set": ["train.epohcs=3"], "name": "typo"})
    suite = S.load_suite(_write_suite(tmp_path, d))
    with pytest.raises(ConfigError, match=r"suite run 3 .*seed 0.*unknown key 'train.epohcs'.*epochs"):
        S.run_suite(suite, out=tmp_path / "res", say=lambda _: None)
    assert not (tmp_path / "res").exists()
    d["runs"][2] = {"config": d["runs"][1]}  # same config and name twice: same folders
    with pytest.raises(ConfigError, match="two suite runs write to .*give one of them a `name:`"):
        S.plan(S.load_suite(_write_suite(tmp_path, d)), out=tmp_path / "res", quick=False)
    d["eval"]["metrics"] = ["fdd"]
    with pytest.raises(ConfigError, match="eval.metrics.*'fdd'.*Did you mean 'fd'"):
        S.plan(S.load_suite(_write_suite(tmp_path, d)), out=tmp_path / "res", quick=False)
    # an in-training metric that one run's model cannot give: refused at the plan, not minutes into that run
    d["eval"]["metrics"] = ["fd"]
    d["runs"] = d["runs"][:2]
    d["set"] = ["train.epochs=1", "eval.every_steps=1", "eval.metrics=[fd,cond_acc]"]
    with pytest.raises(ConfigError, match=r"suite run 2 .*eval.metrics: metric 'cond_acc' needs a conditional"):
        S.plan(S.load_suite(_write_suite(tmp_path, d)), out=tmp_path / "res", quick=False)
    assert not (tmp_path / "res").exists()


def test_quick_shrinks_budgets_and_uses_its_own_folder(suite_file: Path):
    suite = S.load_suite(suite_file)
    assert S.suite_out(suite, quick=True) == Path(suite.out + "-quick")
    jobs = S.plan(suite, out=Path("unused"), quick=True)
    t = jobs[0].cfg.train
    assert (t.max_steps, t.batch_size, jobs[0].cfg.data.max_per_class) == (S.QUICK_STEPS, 8, S.QUICK_PER_CLASS)
    assert [j.cfg.train.seed for j in jobs] == [0, 1, 0, 1]
    assert [j.run_dir.as_posix() for j in jobs][:2] == ["unused/tiny_cdcgan/seed0", "unused/tiny_cdcgan/seed1"]


def test_suite_runs_evaluates_reports_then_skips_and_resumes(tmp_path: Path, suite_file: Path, fake_eval,
                                                            monkeypatch):
    suite, out = S.load_suite(suite_file), tmp_path / "res"
    counts = S.run_suite(suite, out=out, say=lambda _: None)
    assert counts == {"completed": 4, "skipped": 0, "failed": 0, "interrupted": 0}
    for name in ("tiny_cdcgan", "tiny_convdcgan"):
        for seed in (0, 1):
            s = json.loads((out / name / f"seed{seed}" / "summary.json").read_text())
            assert s["status"] == "completed" and s["seed"] == seed and s["steps"] == s["total_steps"]
    # cond_acc only where it applies (the conditional model); samples from the suite file
    assert sorted(fake_eval) == [("tiny_cdcgan", "seed0", ["fd", "cond_acc"], 30),
                                 ("tiny_cdcgan", "seed1", ["fd", "cond_acc"], 30),
                                 ("tiny_convdcgan", "seed0", ["fd"], 30), ("tiny_convdcgan", "seed1", ["fd"], 30)]
    assert (out / "report" / "pivot_fd.md").exists() and (out / "report" / "gallery" / "index.html").exists()

    # everything finished: a rerun trains and evaluates nothing
    monkeypatch.setattr("gan_bench.suite.executor.train", lambda *a, **k: pytest.fail("train called"))
    assert S.run_suite(suite, out=out, report=False, say=lambda _: None)["skipped"] == 4
    assert len(fake_eval) == 4
    monkeypatch.undo()
    monkeypatch.setattr("gan_bench.suite.executor.eval_run", lambda *a, **k: None)

    # a run killed after its last checkpoint (no summary) is resumed, not restarted
    run = out / "tiny_convdcgan" / "seed1"
    (run / "summary.json").unlink()
    before = read_jsonl(run / "metrics.jsonl")
    jobs = S.plan(suite, out=out, quick=False)
    assert [j.action for j in jobs] == ["skip", "skip", "skip", "resume"]
    assert S.execute(jobs[3], None, say=lambda _: None) == "completed"
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    assert read_jsonl(run / "metrics.jsonl") == before  # no step logged twice

    # the suite file changed under a finished run: refuse rather than mix two experiments
    monkeypatch.setattr(suite, "set", ["train.epochs=1", "train.lr_g=1e-3"])
    with pytest.raises(ConfigError, match="holds a run of a different config"):
        S.plan(suite, out=out, quick=False)


def test_jobs_two_runs_child_processes(tmp_path: Path, suite_file: Path):
    d = yaml.safe_load(suite_file.read_text())
    d.pop("eval")
    d["seeds"] = [3]
    suite, out = S.load_suite(_write_suite(tmp_path, d)), tmp_path / "par"
    lines: list[str] = []
    counts = S.run_suite(suite, out=out, jobs=2, report=False, say=lines.append)
    assert counts["completed"] == 2, lines
    assert sum("started" in line for line in lines) == 2
    for name in ("tiny_cdcgan", "tiny_convdcgan"):
        assert json.loads((out / name / "seed3" / "summary.json").read_text())["status"] == "completed"
        assert (out / name / "seed3.log").exists()
    # no evaluated metric: the final pivot falls back to throughput
    write_reports(out, title="t", metric=None, eval_metrics=["fd"], say=lines.append)
    assert (out / "report" / "pivot_img_per_sec.md").exists() and "pivot of img_per_sec" in lines[-2]


def test_cli_dry_run_and_errors(suite_file: Path, tmp_path: Path, capsys):
    assert main(["suite", str(suite_file), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[1/4] run" in out and "tiny_convdcgan/seed1" in out
    assert not (tmp_path / "res").exists()
    assert main(["suite", str(tmp_path / "missing.yaml")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["suite", str(suite_file), "--jobs", "0"]) == 2
