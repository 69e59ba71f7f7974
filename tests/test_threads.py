"""Trainings side by side share the CPU: the cores shared out among the trainings holding a claim, passive
OpenMP waiting set before torch loads, the user's own settings kept (benchmarks/shared_cpu.py measures it)."""
from __future__ import annotations

import fcntl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from gan_bench import threads
from conftest import cli_env


@pytest.fixture
def claims(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield tmp_path / threads.FOLDER
    torch.set_num_threads(before)


def held_claim(folder: Path, name: str):
    """Another training's claim: a locked file (an open file description of its own, as another process's)."""
    folder.mkdir(exist_ok=True)
    f = open(folder / name, "w")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return f


def test_the_cores_are_shared_evenly_and_never_below_one():
    assert [threads.threads_for(n, 2) for n in range(4)] == [2, 1, 1, 1]
    assert [threads.threads_for(n, 8) for n in (0, 1, 3)] == [8, 4, 2]


def test_a_training_beside_another_takes_its_share_and_gives_it_back(claims: Path):
    other = held_claim(claims, "1-1.claim")
    (claims / "2-2.claim").write_text("")  # a claim nobody holds (its process is gone): dropped
    torch.set_num_threads(2)
    try:
        with threads.share() as n:
            assert n == torch.get_num_threads() == min(2, threads.threads_for(1))
            mine = [p.name for p in claims.iterdir() if p.name not in ("1-1.claim",)]
            assert len(mine) == 1 and mine[0].endswith(".claim")  # ours; the stale one is gone
        assert torch.get_num_threads() == 2 and [p.name for p in claims.iterdir()] == ["1-1.claim"]
    finally:
        other.close()


def test_a_resumed_run_takes_its_checkpoints_threads(claims: Path):
    other = held_claim(claims, "1-1.claim")
    try:
        with threads.share(threads=2) as n:
            assert n == torch.get_num_threads() == 2
    finally:
        other.close()


def test_share_never_raises_the_threads_a_process_was_given(claims: Path):
    torch.set_num_threads(1)
    with threads.share() as n:
        assert n == torch.get_num_threads() == 1


def test_omp_num_threads_wins_and_claims_nothing(claims: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    with threads.share() as n:
        assert n == before == torch.get_num_threads()
    assert not claims.exists()


def test_a_temporary_folder_that_cannot_be_written_trains_as_before(tmp_path: Path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "file"))  # under a file: no folder can be made
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    with threads.share() as n:
        assert n == before
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_passive_waiting_is_set_before_torch_loads_unless_the_user_chose(given, expected):
    env = {k: v for k, v in cli_env().items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", "import gan_bench, os; print(os.environ['OMP_WAIT_POLICY'])"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == expected
