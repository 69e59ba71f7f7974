"""Trainings side by side share the CPU: the cores shared out among the trainings holding a claim, passive
OpenMP waiting set before torch loads, the user's own settings kept (benchmarks/shared_cpu.py measures it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_bench import threads
from conftest import cli_env


@pytest.fixture
def claims(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr(threads, "CLAIMS", tmp_path / "claims")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    return tmp_path / "claims"


def test_the_cores_are_shared_evenly_and_never_below_one():
    assert [threads.threads_for(n, cores=2) for n in range(4)] == [2, 1, 1, 1]
    assert [threads.threads_for(n, cores=8) for n in (0, 1, 3)] == [8, 4, 2]


def test_a_training_beside_another_takes_its_share_and_gives_it_back(claims: Path):
    claims.mkdir()
    (claims / str(os.getppid())).touch()  # a live process holding a claim: another training
    (claims / "999999999").touch()  # a process that is gone: its claim is ignored and dropped
    torch.set_num_threads(2)
    try:
        with threads.share() as n:
            assert n == torch.get_num_threads() == min(2, threads.threads_for(1))  # half the cores, at most 2
            assert (claims / str(os.getpid())).exists() and not (claims / "999999999").exists()
        assert torch.get_num_threads() == 2 and not (claims / str(os.getpid())).exists()
    finally:
        torch.set_num_threads(2)


def test_share_never_raises_the_threads_a_process_was_given(claims: Path):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threads.share() as n:
            assert n == torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_omp_num_threads_wins_and_claims_nothing(claims: Path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    with threads.share() as n:
        assert n == before == torch.get_num_threads()
    assert not claims.exists()


def test_an_unwritable_claims_folder_trains_as_before(tmp_path: Path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(threads, "CLAIMS", tmp_path / "file" / "claims")  # under a file: cannot be made
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
