"""atomic_path, the one way gan-bench writes a file: all of it or none of it."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from gan_bench.atomic import atomic_path
from gan_bench.errors import GanBenchError


def test_the_file_appears_whole_and_only_at_the_end(tmp_path: Path):
    path = tmp_path / "a.npz"
    path.write_bytes(b"old")
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, x=np.arange(3))  # numpy would append .npz to a name without it
        assert path.read_bytes() == b"old" and tmp.name == f".a.npz.tmp-{os.getpid()}.npz"
    assert np.load(path)["x"].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz"]


def test_a_failing_block_leaves_the_previous_version_and_no_temporary_file(tmp_path: Path):
    path = tmp_path / "a.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_a_full_disk_is_one_line_naming_the_file(tmp_path: Path):
    path = tmp_path / "a.txt"
    with pytest.raises(GanBenchError) as e:
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg and "No space left on device" in msg and "free disk space" in msg
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="mine"):  # a caller's own error for its files
        with atomic_path(path, error=lambda err: ValueError(f"mine: {err.strerror}")):
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))


def test_torch_reporting_a_full_disk_as_runtimeerror_is_still_the_one_line_error(tmp_path: Path, monkeypatch):
    """torch's zip writer says "unexpected pos" (a RuntimeError) when the disk fills mid-checkpoint."""
    import torch

    from gan_bench.run.checkpoint import save_checkpoint

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def full(obj, f):
        f.write(b"PK\x03\x04 partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 16832 vs 16726")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(GanBenchError, match=r"could not write checkpoint .*last.pt \(the write stopped part-way, "
                                            r"most likely a full disk\); the previous checkpoint is intact"):
        save_checkpoint(path, {"step": 2})
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_cannot_write_under_says_why_without_making_anything(tmp_path: Path, monkeypatch):
    from gan_bench.atomic import cannot_write_under

    assert cannot_write_under(tmp_path / "a" / "b") is None and not (tmp_path / "a").exists()
    (tmp_path / "f").write_text("x")
    assert cannot_write_under(tmp_path / "f" / "nets") == f"{tmp_path / 'f'} is a file"
    assert list(tmp_path.iterdir()) == [tmp_path / "f"]  # the probe's file is gone again
    locked = tmp_path / "locked"
    real_exists = Path.exists

    def exists(self):  # a folder on the way that cannot be entered (a non-root user's chmod 000)
        if str(self).startswith(str(locked / "inner")):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_exists(self)
    monkeypatch.setattr(Path, "exists", exists)
    assert cannot_write_under(locked / "inner" / "nets") == f"{locked / 'inner' / 'nets'}: Permission denied"
