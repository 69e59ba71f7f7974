"""The GPU check's run (Check: where it writes, the device, the staged data, the clock) and how it starts
its processes: each part's commands run in their own process group under the part's time limit."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import gpu_check_data as data  # beside this file

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # gan_bench from this checkout, installed or not (the device runs it uninstalled)
    sys.path.insert(1, str(ROOT))


@dataclass
class Check:
    """One run of the check: where it writes, what it runs on, the staged data, its clock and the
    results of the parts done so far (part 6 and 7 read them)."""

    out: Path                  # every JSON and log (the temporary work folder with --pack)
    smoke: bool
    device: str                # "cuda" or "cpu"
    machine: dict[str, Any]
    data_dir: Path
    manifest: Optional[dict[str, Any]]
    budget: float
    configs: list[str]         # glob patterns of config stems (part 2), empty: all
    suite_runs: Optional[int]  # at most this many suite runs (part 6)
    pack: Optional[Path] = None
    started: float = field(default_factory=time.monotonic)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    def path(self, *parts: str) -> Path:
        """A file under out (its folder made)."""
        p = self.out.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def folder(self, *parts: str) -> Path:
        p = self.out.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def datasets(self) -> dict[str, dict[str, Optional[str]]]:
        return data.data_sets(self.data_dir) if self.manifest else {}


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, **extra}
    e["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE)] + ([e["PYTHONPATH"]] if e.get("PYTHONPATH") else []))
    e["PYTHONUNBUFFERED"] = "1"
    return e


def call(cmd: list[str], *, log: Path, timeout: float, extra_env: Optional[dict[str, str]] = None) -> Optional[int]:
    """cmd from the repo root, its output appended to log; its exit status, or None when it ran out of
    time (then its whole process group is killed: loader workers and compile workers too)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"$ {shlex.join(cmd)}\n")
        f.flush()
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env(**(extra_env or {})),
                             start_new_session=True)
        try:
            return p.wait(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            f.write(f"\n[gpu_check] stopped at the part's time limit ({timeout:.0f} s)\n")
            return None


def work(task: str, spec: dict[str, Any], c: Check, *, log: Path, timeout: float) -> Optional[int]:
    """gpu_check_work.py TASK with its spec (written beside the logs)."""
    spec_path = c.path("parts", f"{task}-spec.json")
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    return call([sys.executable, str(HERE / "gpu_check_work.py"), task, str(spec_path)], log=log, timeout=timeout)


def target(value: Any, ok: Optional[bool], text: str) -> dict[str, Any]:
    """One target: the value measured, what it should be, pass (True), miss (False) or not measured (None)."""
    return {"value": value, "target": text, "pass": ok}


def status_of(rc: Optional[int]) -> str:
    return "timeout" if rc is None else ("ok" if rc == 0 else "failed")


def append_line(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
