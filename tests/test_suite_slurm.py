"""Suites on a cluster (`gan-bench suite --executor slurm`) without a cluster.

The submission path runs for real against stand-ins of SLURM's commands (conftest.fake_slurm): the
sbatch script submitit writes (options, the array, the command), job ids, sacct's states, and what a
rerun submits. The jobs themselves run through submitit's own local executor (real processes, the job
pickled and its result or exception handed back) and its debug executor (this process): submitting,
a rerun skipping what is finished, a job killed mid-run resuming from its checkpoint, a preempted job
checkpointing and requeueing, a failed run reported and not submitted again, torchrun inside a job.
The bad `--slurm` inputs are rows of tests/test_bad_inputs.py.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from gan_bench import suite as S
from gan_bench.cli import main
from gan_bench.config import load_config
from gan_bench.run.files import read_jsonl
from gan_bench.suite.cluster_job import ClusterJob
from gan_bench.suite.executors import split_items
from gan_bench.suite.submitted import Ledger
from gan_bench.train.loop import train
from conftest import fake_slurm, records, ROOT, tiny_overrides, write_npz

submitit = pytest.importorskip("submitit", reason="the slurm extra (pip install -e '.[slurm]') is not installed")
from submitit.core.utils import DelayedSubmission, cloudpickle_dump  # noqa: E402

OPTIONS = "partition=gpu,gpus_per_node=1,timeout_min=240,array_parallelism=2,account=lab,setup=[module load cuda]"


@pytest.fixture
def here(tmp_path: Path, monkeypatch) -> Path:
    """tmp_path as the folder the suite runs from; the jobs' processes import this checkout, one thread."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path


def _suite(folder: Path, runs: list, seeds=(0, 1), sets=("train.epochs=1",)) -> Path:
    p = folder / "suite.yaml"
    p.write_text(yaml.safe_dump({"name": "t", "out": str(folder / "res"), "seeds": list(seeds), "set": list(sets),
                                 "runs": runs}))
    return p


def _config(folder: Path, name: str, npz: Path, **train) -> str:
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(tiny_overrides(npz, **train)))
    return str(folder / f"{name}.yaml")


def _broken_npz(folder: Path) -> Path:
    """An .npz that exists (the planner is content) but is cut short (the job's data loading fails)."""
    data = write_npz(folder / "whole.npz").read_bytes()
    (folder / "broken.npz").write_bytes(data[: len(data) // 2])
    return folder / "broken.npz"


# ---- SLURM itself, through stand-ins of its commands ----------------------------------------------

def test_one_array_is_submitted_and_a_rerun_submits_only_what_is_left(here: Path, tiny_npz: Path, monkeypatch,
                                                                      capsys):
    bin_ = fake_slurm(here / "bin")
    monkeypatch.setenv("PATH", f"{bin_}{os.pathsep}{os.environ['PATH']}")
    suite = _suite(here, [_config(here, "a", tiny_npz), _config(here, "b", tiny_npz, model="convdcgan")])
    args = ["suite", str(suite), "--executor", "slurm", "--slurm", OPTIONS]

    # --dry-run prints the script submitit will give sbatch, and writes nothing
    assert main(args + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would submit a job array of 4 jobs" in out and not (here / "res").exists()
    preview = out.split("the sbatch script of the array:\n")[1]

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "4 submitted" in out and "tables and gallery once every run is done" in out
    scripts = sorted((bin_ / "submitted").iterdir())
    assert len(scripts) == 1  # one job array, not four jobs
    script = scripts[0].read_text()
    assert script.rstrip("\n") == preview.rstrip("\n")
    folder = here / "res" / "slurm"
    for flag in ("--array=0-3%2", "--partition=gpu", "--gpus-per-node=1", "--time=240", "--account=lab",
                 "--ntasks-per-node=1", "--nodes=1", "--job-name=gan-bench-t", "--signal=USR2@120",
                 f"--output={folder}/%A_%a/%A_%a_0_log.out"):
        assert f"#SBATCH {flag}\n" in script, flag
    assert "\n# setup\nmodule load cuda\n" in script
    assert f"srun --unbuffered --output {folder}/%A_%a/%A_%a_%t_log.out" in script
    assert f"{sys.executable} -u -m submitit.core._submit {folder}/%j" in script

    # the record of the jobs, and the jobs as pickled for the nodes
    latest = Ledger(here / "res").latest()
    assert sorted(latest) == ["a/seed0", "a/seed1", "b/seed0", "b/seed1"]
    assert sorted(s.job for s in latest.values()) == ["4242_0", "4242_1", "4242_2", "4242_3"]
    job = DelayedSubmission.load(folder / "4242_2" / "4242_2_submitted.pkl").function
    assert isinstance(job, ClusterJob) and Path(job.run_dir) == here / "res" / "b" / "seed0"
    assert job.cwd == str(here) and job._child is None

    # sacct says: running, pending, cancelled (before it trained a step), and failed with its reason
    (bin_ / "sacct.txt").write_text("4242_0|RUNNING|n1\n4242_1|PENDING|\n4242_2|CANCELLED by 1000|n2\n"
                                    "4242_3|FAILED|n3\n")
    cloudpickle_dump(("error", "Traceback (most recent call last):\n  ...\n"
                               "gan_bench.suite.cluster_job.RunFailed: data went missing\n"),
                     folder / "4242_3" / "4242_3_0_result.pkl")
    assert main(["suite", str(suite), "--status"]) == 0
    status = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in status[:4]] == ["running", "queued", "to", "failed"]
    assert "slurm job 4242_0 RUNNING" in status[0] and "CANCELLED" in status[2]
    assert "data went missing" in status[3] and "--retry-failed" in status[3]
    assert status[4] == "4 runs: 1 queued, 1 running, 1 failed, 1 to run"

    # a rerun submits the cancelled run alone; the failed one only when asked
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "[1/4] wait" in out and "[4/4] skip" in out and "failed in slurm job 4242_3: data went missing" in out
    assert len(list((bin_ / "submitted").iterdir())) == 2
    assert "--array" not in (bin_ / "submitted" / "1.sh").read_text()
    assert Ledger(here / "res").latest()["b/seed0"].job == "4243"
    assert main(args + ["--retry-failed"]) == 0
    assert "1 submitted" in capsys.readouterr().out
    assert Ledger(here / "res").latest()["b/seed1"].job == "4244"


@pytest.mark.parametrize("text, items", [
    ("a=1,b=2", ["a=1", "b=2"]),
    ("setup=[module load cuda, source .venv/bin/activate],nodes=2",
     ["setup=[module load cuda, source .venv/bin/activate]", "nodes=2"]),
    ("partition='a,b', qos=high,", ["partition='a,b'", "qos=high"]),
])
def test_options_split_on_the_commas_between_keys(text, items):
    assert split_items(text) == items


def test_options_read_like_config_keys():
    o = S.parse_options("slurm", "mem_gb=32,setup=[module load cuda, source env],account=,array=false")
    assert (o.mem_gb, o.setup, o.account, o.array) == (32.0, ["module load cuda", "source env"], None, False)


def test_a_job_on_several_nodes_runs_torchrun_across_them(monkeypatch):
    class Env:
        job_id, hostnames, node = "4242_7", ["gpu01", "gpu02"], 1

    monkeypatch.setattr(submitit, "JobEnvironment", Env)
    job = ClusterJob(config={}, run_dir="r", ev=None, cwd=".", folder=".", procs_per_node=4, nodes=2)
    cmd = job.command("{}", node=1)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"]
    flags = " ".join(cmd[3:-3])
    assert flags == "--nproc-per-node 4 --nnodes 2 --node-rank 1 --master-addr gpu01 --master-port 29927"
    assert cmd[-3:] == ["-m", "gan_bench.suite.worker", "{}"]
    single = ClusterJob(config={}, run_dir="r", ev=None, cwd=".", folder=".", procs_per_node=2).command("{}")
    assert "--standalone" in single and "--nnodes" not in single


# ---- jobs that run: submitit's local executor (processes) and debug executor (this process) ---------

def test_local_jobs_run_hand_back_results_and_a_rerun_submits_nothing(here: Path, tiny_npz: Path):
    """A good run and one whose data is broken: real job processes, a result and an exception back."""
    suite = S.load_suite(_suite(here, [_config(here, "a", tiny_npz, model="convdcgan"),
                                       _config(here, "bad", _broken_npz(here))], seeds=[0]))
    out, lines = here / "res", []
    counts = S.run_suite(suite, out=out, executor="slurm", options="cluster=local", wait=True, say=lines.append)
    assert (counts["completed"], counts["failed"]) == (1, 1), lines
    assert any("<-- bad seed 0: failed: " in line and "truncated or corrupt" in line for line in lines), lines
    assert json.loads((out / "a" / "seed0" / "summary.json").read_text())["status"] == "completed"
    assert (out / "a" / "seed0.log").exists()  # the run's log beside its folder
    assert (out / "report" / "runs.csv").exists()
    before = (out / "slurm" / "jobs.jsonl").read_text()
    lines.clear()
    counts = S.run_suite(suite, out=out, executor="slurm", options="cluster=local", wait=True, report=False,
                         say=lines.append)
    assert counts == {"completed": 0, "skipped": 2, "failed": 0, "interrupted": 0}, lines
    assert (out / "slurm" / "jobs.jsonl").read_text() == before  # nothing submitted again
    assert "--retry-failed submits it again" in lines[1]


def _children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _wait_for(what, timeout: float = 240.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what.__doc__}")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's processes in /proc")
def test_a_killed_job_resumes_and_a_preempted_one_requeues_with_the_records_of_one_run(here: Path, tiny_npz: Path):
    sets = ("train.epochs=1000", "train.max_steps=600", "train.log_every=1", "train.checkpoint_every=20",
            "train.snapshot_every=1000")
    suite = S.load_suite(_suite(here, [_config(here, "a", tiny_npz)], seeds=[0], sets=sets))
    out, run = here / "res", here / "res" / "a" / "seed0"
    # the same run, uninterrupted, with the jobs' one thread (the thread count changes a CPU's float sums)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = train(load_config(here / "a.yaml", [*sets, f"out={here / 'ref'}"]))
    finally:
        torch.set_num_threads(threads)

    def job() -> int:
        """the job id of the run's latest job"""
        return int(Ledger(out).latest()["a/seed0"].job)

    def logged(n: int):
        def enough() -> bool:
            """the run to log enough steps after a checkpoint"""
            return (run / "checkpoints" / "last.pt").exists() and len(read_jsonl(run / "metrics.jsonl")) >= n
        return enough

    # 1. submitted, then killed outright mid-run (a node lost): job, its process and the run's child
    assert S.run_suite(suite, out=out, executor="slurm", options="cluster=local", report=False,
                       say=lambda _: None)["submitted"] == 1
    _wait_for(logged(100))
    controller = job()
    tree = [controller, *(task := _children(controller)), *(c for t in task for c in _children(t))]
    assert len(tree) == 3
    for pid in tree:
        os.kill(pid, signal.SIGKILL)
    killed_at = len(read_jsonl(run / "metrics.jsonl"))
    assert killed_at < 600

    # 2. the rerun resumes it from its checkpoint, in a new job
    lines: list[str] = []
    S.run_suite(suite, out=out, executor="slurm", options="cluster=local", report=False, say=lines.append)
    assert lines[0].startswith("[1/1] resume") and "from step" in lines[0], lines
    assert job() != controller

    # 3. preempted (the scheduler's USR2): the run checkpoints, the job requeues itself and resumes
    _wait_for(logged(killed_at + 100))
    (task,) = _children(job())
    os.kill(task, signal.SIGUSR2)
    _wait_for(lambda: (run / "summary.json").exists() and json.loads((run / "summary.json").read_text())["status"]
              == "completed")
    log = (out / "slurm" / str(job()) / f"{job()}_0_log.out").read_text()
    assert "Calling checkpoint method" in log and "Requeued job" in log and log.count("resume (from step") == 2
    assert records(run) == records(ref)  # no step lost or logged twice


def test_failed_runs_are_reported_and_not_submitted_again_until_asked(here: Path, tiny_npz: Path):
    """The debug executor (the job in this process, its run in a child): a run whose data is broken (the
    job fails) and one that diverges (the run's summary says failed), each reason handed back."""
    broken = _broken_npz(here)
    suite = S.load_suite(_suite(here, [_config(here, "bad", broken),
                                       _config(here, "nan", tiny_npz, lr_d=1e30, lr_g=1e30, fast=False)], seeds=[0]))
    out, lines = here / "res", []

    def run(**kw) -> dict:
        lines.clear()
        return S.run_suite(suite, out=out, executor="slurm", options="cluster=debug", report=False,
                           say=lines.append, **kw)

    assert run()["failed"] == 2, lines
    assert any("<-- bad seed 0: failed: " in x and "truncated or corrupt" in x for x in lines), lines
    assert any("<-- nan seed 0: failed: " in x and "non-finite loss" in x for x in lines), lines
    ledger = (out / "slurm" / "jobs.jsonl").read_text()
    counts = run()
    assert counts["skipped"] == 2 and "submitted" not in counts, lines
    assert "truncated or corrupt" in lines[0] and "--retry-failed submits it again" in lines[0], lines
    assert "non-finite loss" in lines[1] and "--retry-failed starts it again" in lines[1], lines
    assert (out / "slurm" / "jobs.jsonl").read_text() == ledger  # nothing submitted
    status = S.suite_status(suite, out=out, quick=False, say=lines.append)
    assert status["failed"] == 2

    write_npz(broken)  # mended; --retry-failed submits both again: one now completes, one fails again
    counts = run(retry_failed=True)
    assert (counts["completed"], counts["failed"]) == (1, 1), lines
    assert json.loads((out / "bad" / "seed0" / "summary.json").read_text())["status"] == "completed"
    assert len((out / "slurm" / "jobs.jsonl").read_text().splitlines()) == 8  # 2 x (submitted, ended) more


def test_gpus_per_node_above_one_trains_the_run_under_torchrun_in_the_job(here: Path, tiny_npz: Path):
    """Two processes (gloo on the CPU here; one per GPU on a node) train one run inside the job."""
    suite = S.load_suite(_suite(here, [_config(here, "a", tiny_npz, device="cpu")], seeds=[0]))
    lines: list[str] = []
    counts = S.run_suite(suite, out=here / "res", executor="slurm", options="cluster=debug,gpus_per_node=2",
                         report=False, say=lines.append)
    assert counts["completed"] == 1, lines
    summary = json.loads((here / "res" / "a" / "seed0" / "summary.json").read_text())
    assert (summary["status"], summary["processes"], summary["steps"]) == ("completed", 2, summary["total_steps"])
